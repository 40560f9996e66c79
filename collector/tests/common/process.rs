//! The `telemetry-collector` binary as a child process, for what only a process shows: signals
//! (SIGTERM's drain and exit code), `kill -9`, resident memory, and what depends on the process
//! environment (`KUBECONFIG`). Its config's endpoints are `127.0.0.1:0`; the binary writes the
//! addresses it bound to `--bound-addresses-file` once ready, and that file is what starting
//! waits for. Component behaviour is tested in-process ([`super::in_process`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use telemetry_collector::service::BoundAddrs;

/// How long the binary may take to bind everything (it may be reading back a persistent queue).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often to look for the addresses file, and for an early exit, while starting; and for the
/// exit after a signal.
const POLL: Duration = Duration::from_millis(50);

/// A running `telemetry-collector` process; killed on drop.
pub struct Collector {
    pub child: Child,
    dir: tempfile::TempDir,
    addrs: BoundAddrs,
}

impl Collector {
    /// Writes `yaml` to a temp dir and starts the binary; waits until it has bound every
    /// listener. `{DIR}` in `yaml` is replaced by the temp dir; endpoints should be `127.0.0.1:0`
    /// (including `service.telemetry.metrics.address`, for [`Collector::metrics`]).
    pub fn start(yaml: &str) -> Self {
        Self::spawn(yaml, &[], &[])
    }

    /// [`Collector::start`] with extra environment variables (e.g. `KUBECONFIG`).
    pub fn start_with_env(yaml: &str, env: &[(&str, &std::ffi::OsStr)]) -> Self {
        Self::spawn(yaml, env, &[])
    }

    /// [`Collector::start`] with extra command-line arguments (e.g. `--shutdown-timeout`).
    pub fn start_with_args(yaml: &str, args: &[&str]) -> Self {
        Self::spawn(yaml, &[], args)
    }

    fn spawn(yaml: &str, env: &[(&str, &std::ffi::OsStr)], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = yaml.replace("{DIR}", &dir.path().display().to_string());
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, yaml).expect("write config");
        let addrs_file = dir.path().join("bound-addresses.json");
        let log = std::fs::File::create(dir.path().join("collector.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_telemetry-collector"))
            .arg("--config")
            .arg(&cfg)
            .arg("--bound-addresses-file")
            .arg(&addrs_file)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .spawn()
            .expect("spawn telemetry-collector");
        let mut c = Self { child, dir, addrs: BoundAddrs::new() };
        let started = Instant::now();
        // The binary renames the file into place complete, so it is whole once it exists.
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&addrs_file) {
                break text;
            }
            if let Ok(Some(status)) = c.child.try_wait() {
                panic!("collector exited early with {status}: {}", c.log());
            }
            assert!(started.elapsed() < START_TIMEOUT, "collector did not start: {}", c.log());
            std::thread::sleep(POLL);
        };
        c.addrs = serde_json::from_str(&text).unwrap_or_else(|e| panic!("bound addresses {text:?}: {e}"));
        c
    }

    /// The address the listener at config path `key` bound (see `service::BoundAddrs`).
    pub fn addr(&self, key: &str) -> SocketAddr {
        super::bound_addr(&self.addrs, key)
    }

    /// The collector's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collector.log")).unwrap_or_default()
    }

    /// Path inside the temp dir (`{DIR}` in its config).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Resident memory of the process in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    /// Sends SIGTERM and waits for exit, returning the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(POLL);
        }
        panic!("collector did not exit within {timeout:?} after SIGTERM: {}", self.log());
    }
}

impl super::Listening for Collector {
    fn addr(&self, key: &str) -> SocketAddr {
        Collector::addr(self, key)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
