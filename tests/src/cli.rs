//! `kubectl` and `helm` against a test cluster, run the way a user runs them.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::cluster::Cluster;
use crate::tools::tool;

impl Cluster {
    /// Runs `kubectl ARGS` against this cluster and returns its stdout.
    ///
    /// # Panics
    /// When kubectl fails, with its stderr.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.run_cli("kubectl", args, "")
    }

    /// Runs `kubectl ARGS` with `input` on stdin (e.g. `apply -f -`) and returns its stdout.
    ///
    /// # Panics
    /// When kubectl fails, with its stderr.
    pub fn kubectl_with_input(&self, args: &[&str], input: &str) -> String {
        self.run_cli("kubectl", args, input)
    }

    /// Runs `helm ARGS` against this cluster and returns its stdout.
    ///
    /// # Panics
    /// When helm fails, with its stderr.
    pub fn helm(&self, args: &[&str]) -> String {
        self.run_cli("helm", args, "")
    }

    fn run_cli(&self, program: &str, args: &[&str], input: &str) -> String {
        let mut child = Command::new(tool(program))
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("{program} does not start: {err}"));
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(input.as_bytes()).unwrap_or_else(|err| panic!("writing {program}'s stdin: {err}"));
        drop(stdin);
        let output = child.wait_with_output().unwrap_or_else(|err| panic!("waiting for {program}: {err}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}
