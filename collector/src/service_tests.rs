//! The service wires every HTTP listener through [`crate::listener::serve`] with the configured
//! timeouts: a slowloris client is cut off on each of them, in-process on port 0.

use std::time::Duration;

use super::*;
use crate::listener::tests::{get_ok, slowloris};

const CONFIG: &str = r#"
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
        read_header_timeout: 300ms
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
    read_header_timeout: 300ms
extensions:
  health_check:
    endpoint: 127.0.0.1:0
    read_header_timeout: 300ms
    idle_timeout: 0
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
"#;

#[tokio::test]
async fn every_configured_listener_cuts_off_a_slowloris_client() {
    let config = Config::from_yaml_str(CONFIG, &|_| None).expect("valid config");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let run = tokio::spawn(run(config, async move { stopped.cancelled().await }, Duration::from_secs(5), move |a| {
        let _ = ready_tx.send(a.clone());
    }));
    let addrs = ready_rx.await.expect("service started");
    for key in ["receivers.otlp.http", "exporters.prometheus", "extensions.health_check"] {
        let addr = addrs[key];
        let took = slowloris(addr, Duration::from_secs(20)).await;
        let took = took.unwrap_or_else(|| panic!("{key}: slowloris connection never closed"));
        assert!(took < Duration::from_secs(5), "{key}: closed after {took:?}");
    }
    // The health check still answers after being attacked.
    assert!(get_ok(addrs["extensions.health_check"]).await);
    stop.cancel();
    run.await.expect("join").expect("clean shutdown");
}
