//! `promtool check metrics` as a test helper: Prometheus's own parser and linter judge what a
//! producer writes, instead of our reading of the format judging our writing of it.
//!
//! A missing `promtool` is an error, never a skipped check, so a test cannot pass on a machine
//! that did not check anything. It comes with the Debian package `prometheus`
//! (`tools/apt-packages.txt` lists it; `tools/packages.sh` installs it).

use std::io::{ErrorKind, Write as _};
use std::process::{Command, Stdio};

/// Runs `promtool check metrics` (found on `PATH`) on `text`. `Err` explains why: promtool
/// missing, a parse error (exit status 1) or lint problems (exit status 3, e.g. a counter without
/// `_total` or a family without HELP), with promtool's output and the text checked.
pub fn check_metrics(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => {
                "promtool not found on PATH: install the Debian package `prometheus` (tools/apt-packages.txt)"
                    .to_owned()
            }
            _ => format!("could not run promtool: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // promtool reads all of stdin before it writes, so writing everything first cannot block on
        // a full stdout pipe. A broken pipe means promtool stopped reading early (a parse error);
        // its exit status says so below. Dropping `stdin` closes it: promtool sees the end.
        match stdin.write_all(text.as_bytes()) {
            Err(e) if e.kind() != ErrorKind::BrokenPipe => return Err(format!("could not write to promtool: {e}")),
            _ => {}
        }
    }
    let output = child.wait_with_output().map_err(|e| format!("could not wait for promtool: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "promtool check metrics failed ({}):\n{}{}--- checked text ---\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    ))
}
