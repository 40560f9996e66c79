//! Where the Go-built binaries (`tools/build.sh`) and the Python virtualenv live.

use std::path::{Path, PathBuf};

/// The repository root (the workspace this crate belongs to).
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The folder holding kube-apiserver, etcd, kubectl, kwok, kwokctl, helm, otelcol:
/// `$TELEMETRY_TOOLS_BIN`, else `$TELEMETRY_TOOLS_DIR/bin`, else the default cache.
pub fn tools_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TELEMETRY_TOOLS_BIN") {
        return bin.into();
    }
    let dir = std::env::var_os("TELEMETRY_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        Path::new(&home).join(".cache/thereview-telemetry")
    });
    dir.join("bin")
}

/// The path of a built tool such as `"kubectl"`, `"helm"` or `"otelcol"`.
///
/// # Panics
/// When the tool has not been built, with the command that builds it.
pub fn tool(name: &str) -> PathBuf {
    let path = tools_bin().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `tools/build.sh` (or run the tests through `tools/test.sh`)",
        path.display()
    );
    path
}

/// The Python interpreter of the test virtualenv (`tools/requirements.txt` installed):
/// `$TELEMETRY_PYTHON`, else the one `tools/test.sh` creates in the default cache.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("TELEMETRY_PYTHON") {
        return python.into();
    }
    let venv_python = tools_bin().join("../venv/bin/python");
    assert!(
        venv_python.exists(),
        "{} is missing: run the tests through `tools/test.sh`, which creates it",
        venv_python.display()
    );
    venv_python
}
