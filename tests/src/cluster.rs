//! The shared control planes, one of each kind per test binary, and per-test namespaces.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::supervise::spawn_tied_to_this_process;
use crate::tools::repo_root;

/// A running control plane started by `tools/cluster.sh`.
#[derive(Debug)]
pub struct Cluster {
    kind: &'static str,
    kubeconfig: PathBuf,
    /// Held so the script (and with it the cluster) lives until the process exits.
    _script: Child,
}

/// A namespace created for one test, and a client for the cluster it lives in.
///
/// Namespaces are not deleted afterwards: the whole cluster is thrown away when the test
/// process exits, and the API-server-only cluster has no namespace controller to finish
/// a deletion anyway.
#[derive(Clone)]
pub struct TestNamespace {
    pub client: Client,
    pub name: String,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The etcd + kube-apiserver control plane of this test binary, started on first use.
pub async fn apiserver() -> &'static Cluster {
    static APISERVER: OnceLock<Cluster> = OnceLock::new();
    shared(&APISERVER, "apiserver").await
}

/// The kwok cluster (controllers, scheduler, fake nodes) of this test binary, started
/// on first use.
pub async fn kwok() -> &'static Cluster {
    static KWOK: OnceLock<Cluster> = OnceLock::new();
    shared(&KWOK, "kwok").await
}

/// The real single-node cluster of this test binary (`tools/cluster.sh node`: containerd,
/// kubelet, kube-proxy, CNI bridge and CoreDNS, with our images imported), started on first
/// use. Pods really run; the kubeconfig works from the host, and pod and Service IPs are
/// routed from the host to the node. Needs root.
pub async fn node() -> &'static Cluster {
    static NODE: OnceLock<Cluster> = OnceLock::new();
    shared(&NODE, "node").await
}

/// An etcd + kube-apiserver control plane of one test's own, for tests whose subject acts on every
/// namespace (a cluster-wide operator) and so cannot share the binary's control plane with tests
/// running beside it. Stopped when dropped (and, like every cluster, when the process exits).
pub async fn private_apiserver() -> Cluster {
    tokio::task::spawn_blocking(|| Cluster::start("apiserver")).await.expect("the cluster start-up task does not panic")
}

async fn shared(cell: &'static OnceLock<Cluster>, kind: &'static str) -> &'static Cluster {
    // Starting blocks on the script's output; tests of other runtimes wait on the lock.
    tokio::task::spawn_blocking(move || cell.get_or_init(|| Cluster::start(kind)))
        .await
        .expect("the cluster start-up task does not panic")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGTERM, so tools/cluster.sh stops its processes and removes its state (only private
        // clusters are ever dropped; the shared ones live in statics).
        let _ = Command::new("kill").arg("-TERM").arg(self._script.id().to_string()).status();
        let _ = self._script.wait();
    }
}

impl Cluster {
    fn start(kind: &'static str) -> Cluster {
        let script = repo_root().join("tools/cluster.sh");
        let mut command = Command::new("bash");
        command.arg(&script).arg(kind).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child =
            spawn_tied_to_this_process(command).unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        // The script prints exactly one line, `READY <kubeconfig>`, once /readyz is ok; it
        // exits (closing stdout) if the cluster fails to start, with the reason on stderr.
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reading tools/cluster.sh output");
        let kubeconfig = match line.trim().strip_prefix("READY ") {
            Some(path) => PathBuf::from(path),
            None => panic!("tools/cluster.sh {kind} failed to start (see its log above); it printed {line:?}"),
        };
        Cluster { kind, kubeconfig, _script: child }
    }

    /// The admin kubeconfig written for this cluster, for `kubectl` and `helm`.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A new admin client. A `kube::Client` runs a background task on the runtime that
    /// created it, and every `#[tokio::test]` has its own runtime, so clients are not shared.
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|err| panic!("reading {}: {err}", self.kubeconfig.display()));
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|err| panic!("kubeconfig of the {} cluster: {err}", self.kind));
        Client::try_from(config).unwrap_or_else(|err| panic!("client for the {} cluster: {err}", self.kind))
    }

    /// Creates a namespace with a unique generated name for one test.
    pub async fn namespace(&self) -> TestNamespace {
        let client = self.client().await;
        let namespace = Namespace {
            metadata: ObjectMeta { generate_name: Some("test-".into()), ..ObjectMeta::default() },
            ..Namespace::default()
        };
        let created = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|err| panic!("creating a test namespace in the {} cluster: {err}", self.kind));
        let name = created.metadata.name.expect("the API server names generated namespaces");
        TestNamespace { client, name }
    }
}
