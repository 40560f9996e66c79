//! `telemetry-operator`: Kubernetes operator reconciling TelemetryPipeline and InstrumentedService resources.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};
use telemetry_operator::context::Config;
use telemetry_operator::discovery::DiscoveryRole;
use telemetry_operator::error::Error;
use telemetry_operator::guardrails::TenantPolicy;
use telemetry_operator::http::{AppState, app};
use telemetry_operator::leader::{self, LeaseConfig};
use telemetry_operator::{crdgen, run_controllers};
use tracing::{error, info};

/// Kubernetes operator reconciling TelemetryPipeline and InstrumentedService resources.
#[derive(Debug, Parser)]
#[command(name = "telemetry-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controllers (default).
    Run(RunArgs),
    /// Print the CRDs as YAML; with --write, (re)write them under the workspace.
    Crdgen {
        /// Write `crds/*.yaml` and the Helm chart's copy instead of printing.
        #[arg(long)]
        write: bool,
        /// Workspace root to write into.
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Take every injection back and release every InstrumentedService (the chart's pre-delete hook).
    Uninstall {
        /// Only this namespace (default: all).
        #[arg(long, env = "WATCH_NAMESPACE")]
        watch_namespace: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Collector image for pipelines that do not name one.
    #[arg(long, env = "COLLECTOR_IMAGE", default_value = telemetry_operator::resources::DEFAULT_IMAGE)]
    collector_image: String,
    /// Images pipelines may name in spec.image (repositories or exact references, comma-separated;
    /// default: our collector and the upstream OpenTelemetry Collector images).
    #[arg(long, env = "ALLOWED_COLLECTOR_IMAGES", value_delimiter = ',')]
    allowed_collector_images: Option<Vec<String>>,
    /// Whether pipelines may set env vars from Secrets, ConfigMaps or fields (spec.env[].valueFrom).
    #[arg(long, env = "ALLOW_ENV_VALUE_FROM", default_value_t = true, action = clap::ArgAction::Set)]
    allow_env_value_from: bool,
    /// Whether pipelines may set spec.tolerations.
    #[arg(long, env = "ALLOW_TOLERATIONS", default_value_t = true, action = clap::ArgAction::Set)]
    allow_tolerations: bool,
    /// Whether pipelines may set spec.nodeSelector.
    #[arg(long, env = "ALLOW_NODE_SELECTOR", default_value_t = true, action = clap::ArgAction::Set)]
    allow_node_selector: bool,
    /// Whether daemonset pipelines may mount the node's / for host metrics (a hostPath volume).
    #[arg(long, env = "ALLOW_HOST_PATH", default_value_t = true, action = clap::ArgAction::Set)]
    allow_host_path: bool,
    /// Whether daemonset pipelines may open their OTLP ports on the nodes' IPs (spec.agent.hostPort).
    #[arg(long, env = "ALLOW_HOST_PORT", default_value_t = true, action = clap::ArgAction::Set)]
    allow_host_port: bool,
    /// The role bound to each pipeline's collector for pod discovery, wherever it scrapes:
    /// `ClusterRole/<name>` (bound per namespace by RoleBindings) or `Role/<name>` (a namespaced
    /// install). The operator needs RBAC `bind` on it, not what it grants.
    #[arg(
        long,
        env = "COLLECTOR_DISCOVERY_ROLE",
        default_value = "ClusterRole/telemetry-operator-collector-discovery"
    )]
    collector_discovery_role: DiscoveryRole,
    /// Whether each pipeline gets a NetworkPolicy admitting OTLP only from the namespaces that may send to it.
    #[arg(long, env = "NETWORK_POLICIES", default_value_t = true, action = clap::ArgAction::Set)]
    network_policies: bool,
    /// Disable leader election (single replica, or tests).
    #[arg(long, env = "DISABLE_LEADER_ELECTION")]
    disable_leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "telemetry-operator")]
    lease_name: String,
    /// Identity of this replica.
    #[arg(long, env = "POD_NAME", default_value = "telemetry-operator")]
    identity: String,
}

impl Default for RunArgs {
    fn default() -> Self {
        // Parsing no flags yields the documented defaults (and env overrides).
        match Cli::try_parse_from(["telemetry-operator", "run"]) {
            Ok(Cli { command: Some(Command::Run(a)) }) => a,
            _ => Self {
                metrics_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
                watch_namespace: None,
                collector_image: telemetry_operator::resources::DEFAULT_IMAGE.into(),
                allowed_collector_images: None,
                allow_env_value_from: true,
                allow_tolerations: true,
                allow_node_selector: true,
                allow_host_path: true,
                allow_host_port: true,
                collector_discovery_role: DiscoveryRole::default(),
                network_policies: true,
                disable_leader_election: false,
                lease_namespace: "default".into(),
                lease_name: "telemetry-operator".into(),
                identity: "telemetry-operator".into(),
            },
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The tenant policy the flags describe; unset flags keep the defaults.
fn tenant_policy(args: &RunArgs) -> TenantPolicy {
    let defaults = TenantPolicy::default();
    TenantPolicy {
        allowed_images: args
            .allowed_collector_images
            .clone()
            .map(|v| v.into_iter().map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect())
            .unwrap_or(defaults.allowed_images),
        allow_env_value_from: args.allow_env_value_from,
        allow_tolerations: args.allow_tolerations,
        allow_node_selector: args.allow_node_selector,
        allow_host_path: args.allow_host_path,
        allow_host_port: args.allow_host_port,
    }
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_default().await?;
    let state = AppState::default();
    let listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    info!(addr = %args.metrics_addr, "serving /metrics, /healthz, /readyz");
    let server = axum::serve(listener, app(state.clone())).with_graceful_shutdown(shutdown_signal());
    let server = tokio::spawn(async move { server.await.map_err(Error::Http) });

    client.apiserver_version().await?;
    state.ready.store(true, Ordering::Relaxed);
    let config = Config {
        namespace: args.watch_namespace.clone(),
        collector_image: args.collector_image.clone(),
        identity: args.identity.clone(),
        tenant_policy: tenant_policy(&args),
        discovery_role: args.collector_discovery_role.clone(),
        network_policies: args.network_policies,
    };
    let lease = LeaseConfig {
        namespace: args.lease_namespace.clone(),
        name: args.lease_name.clone(),
        identity: args.identity.clone(),
        duration: Duration::from_secs(15),
    };
    let result: Result<(), Error> = tokio::select! {
        _ = shutdown_signal() => { info!("shutting down"); Ok(()) }
        r = async {
            if !args.disable_leader_election {
                leader::acquire(client.clone(), &lease).await?;
                tokio::select! {
                    e = leader::hold(client.clone(), &lease) => Err(e),
                    () = run_controllers(client.clone(), config, state.metrics.clone()) => Ok(()),
                }
            } else {
                run_controllers(client.clone(), config, state.metrics.clone()).await;
                Ok(())
            }
        } => r,
    };
    if !args.disable_leader_election
        && let Err(e) = leader::release(client.clone(), &lease).await
    {
        error!(error = %e, "releasing the lease failed");
    }
    server.abort();
    result.map_err(Into::into)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or_else(|| Command::Run(RunArgs::default()));
    match command {
        Command::Crdgen { write, root } => {
            if write {
                for dir in crdgen::OUTPUT_DIRS {
                    if let Err(e) = crdgen::write(&root.join(dir)) {
                        eprintln!("writing {dir}: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                }
                return std::process::ExitCode::SUCCESS;
            }
            match crdgen::stream() {
                Ok(y) => {
                    #[allow(clippy::print_stdout)]
                    {
                        print!("{y}");
                    }
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rendering CRDs: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Uninstall { watch_namespace } => {
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info,kube=warn"))
                .init();
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("starting runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let result = rt.block_on(async {
                let client = kube::Client::try_default().await.map_err(Error::Kube)?;
                telemetry_operator::uninstall::uninstall(&client, watch_namespace.as_deref()).await
            });
            match result {
                Ok(n) => {
                    info!(released = n, "uninstall complete");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    error!(error = %e, "uninstall failed");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => {
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn")),
                )
                .init();
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("starting runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match rt.block_on(run(args)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    error!(error = %e, "operator failed");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
