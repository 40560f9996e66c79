//! The `reviews-service` binary as a child process with a clean
//! environment, its listen address read from its own "listening" log line
//! (it binds port 0, so there is no port race).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// A running service.
#[derive(Debug)]
pub struct Service {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stdout (JSON log lines) so far.
    pub logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts the service on a fresh SQLite file with extra `env`.
    pub fn spawn(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}", dir.path().join("reviews.db").display());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reviews-service"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", db)
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "json");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn reviews-service");
        let stdout = child.stdout.take().expect("stdout");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let logs2 = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"message\":\"listening\"") {
                    let v: serde_json::Value = serde_json::from_str(&line).expect("json log");
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                logs2.lock().expect("lock").push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("reviews-service did not log its listen address within 30s")
            .parse()
            .expect("listen address");
        Self { child, addr, logs, _dir: dir }
    }

    /// `http://addr`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill").success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for exit (polling with a deadline, yielding to the test's
    /// runtime so in-test servers such as the OTLP receiver keep answering).
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "service did not exit within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
