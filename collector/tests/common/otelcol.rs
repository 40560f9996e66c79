//! The upstream OpenTelemetry Collector (`otelcol`, built by tools/build.sh) as a peer process:
//! started from a config written into a directory, its stderr in `otelcol.log` beside it, killed
//! on drop.
//!
//! Its listeners take port 0 too. Upstream logs an endpoint as configured, not the port it bound
//! (the otlp receiver logs "Starting GRPC server" before it listens), so its log cannot say; the
//! ports are read where the kernel lists them instead: the listening sockets of
//! `/proc/<pid>/net/tcp` whose inodes are among the process's open files.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `st` of a listening socket in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// A running upstream collector; killed on drop.
pub struct Otelcol {
    child: Child,
    log: PathBuf,
}

impl Otelcol {
    /// Writes `yaml` to `dir/otelcol.yaml` and starts `otelcol` with it, stderr to `dir/otelcol.log`.
    pub fn start(dir: &Path, yaml: &str) -> Self {
        let cfg = dir.join("otelcol.yaml");
        std::fs::write(&cfg, yaml).expect("write otelcol config");
        let log = dir.join("otelcol.log");
        let child = Command::new(super::tool("otelcol"))
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("otelcol log"))
            .spawn()
            .expect("start otelcol");
        Self { child, log }
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the process listens on `n` IPv4 TCP sockets and returns their addresses.
    pub fn listening(&mut self, n: usize, timeout: Duration) -> Vec<SocketAddr> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("otelcol exited with {status}: {}", self.log());
            }
            let found = listening_sockets(self.child.id());
            if found.len() >= n {
                assert_eq!(found.len(), n, "otelcol listens on more sockets than configured: {found:?}");
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "otelcol not listening on {n} sockets after {timeout:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Otelcol {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The IPv4 TCP sockets process `pid` listens on.
fn listening_sockets(pid: u32) -> Vec<SocketAddr> {
    // `socket:[12345]` links in its fd table name the inodes of its sockets.
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    // Lines: `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`,
    // the address as the kernel's 32-bit value in hex (native byte order) and the port in hex.
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (*fields.get(1)?, *fields.get(3)?, *fields.get(9)?);
            if state != TCP_LISTEN || !inodes.contains(inode) {
                return None;
            }
            let (ip, port) = local.split_once(':')?;
            let ip = Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.to_ne_bytes());
            Some(SocketAddr::from((ip, u16::from_str_radix(port, 16).ok()?)))
        })
        .collect()
}
