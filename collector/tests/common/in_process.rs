//! The collector inside the test process, for component tests: [`service::run`] from YAML whose
//! endpoints are `127.0.0.1:0`, the addresses it bound read back from its `on_ready` hook, its
//! log captured, and shutdown through the service's own path (on [`Collector::shutdown`], and on
//! drop). Nothing is reserved beforehand, so nothing can be taken in between.
//!
//! Each collector gets its own runtime on its own threads, as in the binary: a synchronous test
//! can use it, a test's runtime is never blocked by it, and its log can be told apart from other
//! collectors' in the same test binary. Its threads log to its own buffer (a thread-local tracing
//! dispatcher set as each starts), with the level the config asks for, as the binary would on
//! stderr; a panic on one of them is written there too, as the binary's stderr would show it.
//!
//! What needs a process (a signal, `kill -9`, the process's memory, the command line) uses
//! [`super::process`] instead.

use std::cell::RefCell;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use telemetry_collector::config::Config;
use telemetry_collector::service::{self, BoundAddrs, ServiceError};
use telemetry_collector::telemetry::Telemetry;
use tokio_util::sync::CancellationToken;
use tracing::dispatcher::{self, DefaultGuard, Dispatch};

/// How long shutdown may take to flush batches and drain queues: a short budget, since tests
/// that measure shutdown budgets run the binary.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// How long `run` may take past the drain deadline to return (its phases give up at the
/// deadline, then allow a second each for cancelled sends and for listeners to close).
const SHUTDOWN_SLACK: Duration = Duration::from_secs(5);
/// How long startup may take (a persistent queue is read back, a kube client is built).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A collector's log: what the binary would have written to stderr.
type Log = Arc<Mutex<Vec<u8>>>;

thread_local! {
    /// On a collector's threads: its log, and the guard that makes its dispatcher the thread's default.
    static COLLECTOR_LOG: RefCell<Option<(Log, DefaultGuard)>> = const { RefCell::new(None) };
}

/// Writes into a [`Log`]; one is made per event by the fmt layer.
struct LogWriter(Log);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("log poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The binary's log format and level (`service.telemetry.logs.level`, `RUST_LOG` first), into `log`.
fn log_dispatch(config: &Config, log: &Log) -> Dispatch {
    let level = config.telemetry.logs.level.clone().unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let log = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || LogWriter(log.clone()))
        .finish();
    Dispatch::new(subscriber)
}

/// Makes the current thread a collector thread: its events and panics go to `log`.
fn enter_collector_thread(log: &Log, dispatch: &Dispatch) {
    let guard = dispatcher::set_default(dispatch);
    COLLECTOR_LOG.with(|c| *c.borrow_mut() = Some((log.clone(), guard)));
}

fn leave_collector_thread() {
    COLLECTOR_LOG.with(|c| c.borrow_mut().take());
}

/// Chains a panic hook (once per test binary) that also writes a collector thread's panics into
/// its log, so `!log.contains("panicked")` means what it means for the binary.
fn capture_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // `try_with`: a panic while the thread's locals are being torn down must still be reported.
            let _ = COLLECTOR_LOG.try_with(|c| {
                if let Ok(entry) = c.try_borrow()
                    && let Some((log, _)) = entry.as_ref()
                {
                    let thread = std::thread::current();
                    let line = format!("thread '{}' {info}\n", thread.name().unwrap_or("<unnamed>"));
                    let _ = LogWriter(log.clone()).write_all(line.as_bytes());
                }
            });
            previous(info);
        }));
    });
}

/// A collector running in this process; shut down (through the service's own path) on drop.
pub struct Collector {
    addrs: BoundAddrs,
    dir: tempfile::TempDir,
    log: Log,
    stop: CancellationToken,
    /// What `run` returned, once it has; `None` once received.
    finished: Option<Receiver<Result<Arc<Telemetry>, ServiceError>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    /// Starts the collector with `yaml` and waits until every listener is bound. `{DIR}` in
    /// `yaml` is replaced by a temp dir of this collector; endpoints should be `127.0.0.1:0`
    /// (including `service.telemetry.metrics.address`, for [`Collector::metrics`]).
    /// Panics with the log if the config is invalid or the service fails to start.
    pub fn start(yaml: &str) -> Self {
        capture_panics();
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = yaml.replace("{DIR}", &dir.path().display().to_string());
        let config = Config::from_yaml_str(&yaml, &|name| std::env::var(name).ok())
            .unwrap_or_else(|e| panic!("invalid collector config: {e}\n{yaml}"));
        let log: Log = Arc::default();
        for w in &config.warnings {
            let _ = writeln!(LogWriter(log.clone()), "WARN {w}");
        }
        let dispatch = log_dispatch(&config, &log);
        let stop = CancellationToken::new();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (finished_tx, finished) = std::sync::mpsc::channel();
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::Builder::new()
                .name("collector".into())
                .spawn(move || {
                    enter_collector_thread(&log, &dispatch);
                    let (start_log, start_dispatch) = (log.clone(), dispatch.clone());
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("collector-worker")
                        .enable_all()
                        .on_thread_start(move || enter_collector_thread(&start_log, &start_dispatch))
                        .on_thread_stop(leave_collector_thread)
                        .build()
                        .expect("collector runtime");
                    let on_ready = move |addrs: &BoundAddrs| {
                        let _ = ready_tx.send(addrs.clone());
                    };
                    let result =
                        runtime.block_on(service::run(config, stop.cancelled_owned(), DRAIN_DEADLINE, on_ready));
                    // Blocking tasks (a persistent queue's file I/O) get a moment; the service is done.
                    runtime.shutdown_timeout(Duration::from_secs(1));
                    let _ = finished_tx.send(result);
                    leave_collector_thread();
                })
                .expect("spawn the collector thread")
        };
        let mut c = Self { addrs: BoundAddrs::new(), dir, log, stop, finished: Some(finished), thread: Some(thread) };
        match ready.recv_timeout(START_TIMEOUT) {
            Ok(addrs) => c.addrs = addrs,
            // `run` dropped `on_ready` without calling it: it returned an error.
            Err(RecvTimeoutError::Disconnected) => {
                let error = match c.finished.take().map(|f| f.recv_timeout(START_TIMEOUT)) {
                    Some(Ok(Err(e))) => e.to_string(),
                    _ => "the collector thread ended".to_owned(),
                };
                panic!("collector did not start: {error}\n{}", c.log());
            }
            Err(RecvTimeoutError::Timeout) => panic!("collector not ready after {START_TIMEOUT:?}:\n{}", c.log()),
        }
        c
    }

    /// The address the listener at config path `key` bound (see [`service::BoundAddrs`]).
    pub fn addr(&self, key: &str) -> SocketAddr {
        super::bound_addr(&self.addrs, key)
    }

    /// The collector's log so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().expect("log")).into_owned()
    }

    /// Path inside the collector's temp dir (`{DIR}` in its config).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Shuts the service down the way SIGTERM does in the binary (receivers stop, batches flush,
    /// queues drain) and returns what `run` returned, with the run's own metrics. Panics if it
    /// takes longer than its drain deadline allows.
    pub fn shutdown(&mut self) -> Result<Arc<Telemetry>, ServiceError> {
        self.stop.cancel();
        let finished = self.finished.take().expect("the collector was already shut down");
        let result = finished
            .recv_timeout(DRAIN_DEADLINE + SHUTDOWN_SLACK)
            .unwrap_or_else(|e| panic!("collector did not shut down ({e}):\n{}", self.log()));
        if let Some(t) = self.thread.take() {
            t.join().expect("collector thread");
        }
        result
    }
}

impl super::Listening for Collector {
    fn addr(&self, key: &str) -> SocketAddr {
        Collector::addr(self, key)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed: its output is shown, so show what the collector said too.
            eprintln!("--- in-process collector log ---\n{}", self.log());
        }
        self.stop.cancel();
        let Some(finished) = self.finished.take() else { return };
        // Bounded: a collector that does not stop is left behind rather than hanging the test.
        match finished.recv_timeout(DRAIN_DEADLINE + SHUTDOWN_SLACK) {
            Ok(_) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            Err(e) => eprintln!("in-process collector did not shut down ({e}):\n{}", self.log()),
        }
    }
}
