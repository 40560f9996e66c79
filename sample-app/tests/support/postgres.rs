//! A throwaway PostgreSQL 15 server: `initdb` into a temp dir, `postgres`
//! on a free loopback port, stopped (SIGTERM, then kill) on drop.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (as on the
//! CI machine) the data dir is chowned to `nobody` and both `initdb` and
//! `postgres` run through `runuser -u nobody`; as any other user they run
//! directly.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
#[derive(Debug)]
pub struct Postgres {
    child: Child,
    data: PathBuf,
    as_nobody: bool,
    _dir: tempfile::TempDir,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
}

fn find_bin(name: &str) -> PathBuf {
    for dir in ["/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("PostgreSQL binary `{name}` not found (install PostgreSQL 15: apt-get install postgresql-15)");
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn command(bin: &Path, as_nobody: bool) -> Command {
    if as_nobody {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port")
}

impl Postgres {
    /// Initialises and starts a server, waiting until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir data");
        let as_nobody = is_root();
        if as_nobody {
            let ok = Command::new("chown").args(["-R", "nobody"]).arg(dir.path()).status().expect("chown").success();
            assert!(ok, "chown of the PostgreSQL temp dir to nobody failed");
        }
        let out = command(&find_bin("initdb"), as_nobody)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let child = command(&find_bin("postgres"), as_nobody)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-k")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let pg =
            Self { child, data, as_nobody, _dir: dir, url: format!("postgres://postgres@127.0.0.1:{port}/postgres") };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start listening on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        pg
    }

    /// Waits until the server accepts SQL, not just TCP.
    pub async fn ready(&self) {
        let url = self.url.clone();
        super::wait_for("PostgreSQL to accept queries", Duration::from_secs(30), || {
            let url = url.clone();
            async move {
                use sqlx::Connection;
                sqlx::PgConnection::connect(&url).await.ok().map(|_| ())
            }
        })
        .await;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown through pg_ctl (as the server's user), which does not
        // wait for clients; then make sure the wrapper process is gone.
        let _ = command(&find_bin("pg_ctl"), self.as_nobody)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "10", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
