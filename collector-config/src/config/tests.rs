//! Unit tests for config loading: the configs the operator renders, aliases, and error paths.

use super::*;

fn load(yaml: &str) -> Result<Config, ConfigError> {
    Config::from_yaml_str(yaml, &|name| match name {
        "GC_USER" => Some("12345".into()),
        "GC_TOKEN" => Some("secret".into()),
        "LIMIT" => Some("400".into()),
        _ => None,
    })
}

fn errors(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Err(ConfigError::Invalid(e)) => e,
        other => panic!("expected invalid config, got {other:?}"),
    }
}

const FULL: &str = r#"
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
  basicauth/grafana:
    client_auth:
      username: ${env:GC_USER}
      password: ${GC_TOKEN}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
  prometheus:
    config:
      scrape_configs:
        - job_name: kubernetes-pods
          scrape_interval: 30s
          kubernetes_sd_configs:
            - role: pod
              namespaces:
                names: [shop]
          relabel_configs:
            - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
              action: keep
              regex: "true"
            - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
              action: replace
              regex: ([^:]+)(?::\d+)?;(\d+)
              replacement: $$1:$$2
              target_label: __address__
  hostmetrics:
    collection_interval: 30s
    root_path: /hostfs
    scrapers:
      cpu:
      memory:
      filesystem:
        exclude_mount_points:
          mount_points: [/dev/*]
          match_type: regexp
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: ${env:LIMIT}
    spike_limit_mib: 100
  batch:
    send_batch_size: 1024
    send_batch_max_size: 2048
    timeout: 200ms
  resource:
    attributes:
      - key: k8s.cluster.name
        value: prod
        action: upsert
  attributes/strip:
    actions:
      - key: http.request.header.authorization
        action: delete
      - key: user.email
        action: hash
    include:
      match_type: strict
      services: [reviews]
  span:
    name:
      from_attributes: [http.method, http.route]
      separator: " "
  metricstransform:
    transforms:
      - include: old_name
        action: update
        new_name: new_name
exporters:
  otlp/alloy:
    endpoint: alloy:4317
    tls:
      insecure: true
    sending_queue:
      queue_size: 500
    retry_on_failure:
      initial_interval: 1s
  otlphttp/grafana:
    endpoint: https://otlp-gateway.example.net/otlp
    auth:
      authenticator: basicauth/grafana
  otlp_http/two:
    endpoint: http://localhost:4318
  logging:
    loglevel: debug
  prometheus:
    endpoint: 0.0.0.0:8889
    resource_to_telemetry_conversion:
      enabled: true
service:
  extensions: [health_check, basicauth/grafana]
  telemetry:
    logs:
      level: info
    metrics:
      address: 0.0.0.0:8888
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, resource, attributes/strip, span, batch]
      exporters: [otlp/alloy, otlphttp/grafana, logging]
    metrics:
      receivers: [otlp, prometheus, hostmetrics]
      processors: [memory_limiter, metricstransform, batch]
      exporters: [prometheus, otlp_http/two]
    logs/2:
      receivers: [otlp]
      exporters: [otlp/alloy]
"#;

#[test]
fn accepts_operator_style_config() {
    let cfg = load(FULL).unwrap();
    assert_eq!(cfg.pipelines.len(), 3);
    assert!(cfg.warnings.iter().any(|w| w.contains("exporters.logging") && w.contains("deprecated")));
    match &cfg.extensions["basicauth/grafana"] {
        ExtensionConfig::BasicAuth(b) => {
            let c = b.client_auth.as_ref().unwrap();
            assert_eq!((c.username.as_str(), c.password.as_str()), ("12345", "secret"));
        }
        other => panic!("{other:?}"),
    }
    match &cfg.processors["memory_limiter"] {
        ProcessorConfig::MemoryLimiter(m) => {
            assert_eq!(m.limit_mib, 400);
            assert_eq!(m.check_interval, std::time::Duration::from_secs(1));
        }
        other => panic!("{other:?}"),
    }
    match &cfg.exporters["logging"] {
        ExporterConfig::Debug(d) => assert_eq!(d.verbosity, crate::exporter::debug::Verbosity::Detailed),
        other => panic!("{other:?}"),
    }
    match &cfg.receivers["prometheus"] {
        ReceiverConfig::Prometheus(p) => {
            assert_eq!(p.config.scrape_configs[0].relabel_configs[1].replacement.as_deref(), Some("$1:$2"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(cfg.exporters["otlp_http/two"], ExporterConfig::OtlpHttp(_)));
    assert_eq!(cfg.telemetry.metrics_address().as_deref(), Some("0.0.0.0:8888"));
}

#[test]
fn unknown_field_names_the_path() {
    let errs = errors(&FULL.replace("endpoint: alloy:4317", "endpont: alloy:4317"));
    assert!(errs.iter().any(|e| e.starts_with("exporters.otlp/alloy.endpont: unknown field")), "{errs:?}");
}

#[test]
fn a_component_that_fails_to_parse_is_reported_once_not_again_where_it_is_referenced() {
    let e = errors(
        "receivers: {otlp: {protocols: {grpc: {}}}}\nexporters: {debug: {verbosty: detailed}}\n\
         extensions: {health_check: {endpoit: x}}\n\
         service: {extensions: [health_check], pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("exporters.debug.verbosty: unknown field"), "{e:?}");
    assert!(e[1].starts_with("extensions.health_check.endpoit: unknown field"), "{e:?}");
    // A component that is not in the file at all is still a reference error.
    let e = errors(
        "receivers: {otlp: {protocols: {grpc: {}}}}\nservice: {pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}",
    );
    assert!(e.iter().any(|m| m.contains("references exporter \"debug\" which is not configured")), "{e:?}");
}

#[test]
fn nested_unknown_field_names_the_path() {
    let errs = errors(&FULL.replace("      insecure: true", "      insecur: true"));
    assert!(errs.iter().any(|e| e.starts_with("exporters.otlp/alloy.tls.insecur: unknown field")), "{errs:?}");
}

#[test]
fn unknown_type_is_an_error() {
    let errs = errors(&FULL.replace("otlp/alloy:", "kafka/alloy:"));
    assert!(errs.iter().any(|e| e.starts_with("exporters.kafka/alloy: unknown type \"kafka\"")), "{errs:?}");
}

#[test]
fn undefined_pipeline_component_is_an_error() {
    let errs = errors(&FULL.replace("exporters: [otlp/alloy]", "exporters: [otlp/tempo]"));
    assert!(
        errs.iter().any(|e| e
            == "service.pipelines.logs/2.exporters[0]: references exporter \"otlp/tempo\" which is not configured"),
        "{errs:?}"
    );
}

#[test]
fn signal_mismatch_is_an_error() {
    let errs = errors(&FULL.replace("exporters: [otlp/alloy]", "exporters: [prometheus]"));
    assert!(errs.iter().any(|e| e.contains("logs/2.exporters[0]") && e.contains("does not support logs")), "{errs:?}");
}

#[test]
fn bad_duration_names_the_path() {
    let errs = errors(&FULL.replace("timeout: 200ms", "timeout: 200"));
    assert!(errs.iter().any(|e| e.starts_with("processors.batch.timeout:") && e.contains("missing unit")), "{errs:?}");
}

#[test]
fn minimal_config_with_defaults() {
    let cfg = load(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n",
    )
    .unwrap();
    match &cfg.receivers["otlp"] {
        ReceiverConfig::Otlp(o) => {
            assert_eq!(o.protocols.grpc.as_ref().unwrap().endpoint, "localhost:4317");
            assert!(o.protocols.http.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_pipelines_and_missing_service_are_errors() {
    let errs = errors("receivers:\n  otlp:\n    protocols:\n      grpc:\n");
    assert!(errs.iter().any(|e| e.starts_with("service:")), "{errs:?}");
}

#[test]
fn authenticator_must_exist() {
    let errs = errors(&FULL.replace("authenticator: basicauth/grafana", "authenticator: basicauth/nope"));
    assert!(errs.iter().any(|e| e.starts_with("exporters.otlphttp/grafana.auth.authenticator:")), "{errs:?}");
}

#[test]
fn invalid_yaml_is_reported() {
    assert!(matches!(load("receivers: [\n"), Err(ConfigError::Yaml(_))));
}

#[test]
fn bad_relabel_regex_is_reported() {
    let errs = errors(&FULL.replace("regex: \"true\"", "regex: \"(\""));
    assert!(errs.iter().any(|e| e.contains("relabel_configs[0].regex: invalid regex")), "{errs:?}");
}

#[test]
fn receiver_auth_is_rejected_rather_than_ignored() {
    let errs = errors(&FULL.replace(
        "        endpoint: 0.0.0.0:4318\n",
        "        endpoint: 0.0.0.0:4318\n        auth:\n          authenticator: basicauth/grafana\n",
    ));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("receivers.otlp.protocols.http.auth: server authentication is not supported")),
        "{errs:?}"
    );
}

#[test]
fn telemetry_readers_set_the_metrics_address() {
    let cfg = load(&FULL.replace(
        "      address: 0.0.0.0:8888\n",
        "      readers:\n        - pull:\n            exporter:\n              prometheus:\n                host: 127.0.0.1\n                port: 9999\n",
    ))
    .unwrap();
    assert_eq!(cfg.telemetry.metrics_address().as_deref(), Some("127.0.0.1:9999"));
}

#[test]
fn prometheus_exporter_is_implemented_but_rejects_open_metrics_and_tls() {
    let cfg = load(FULL).unwrap();
    assert!(!cfg.warnings.iter().any(|w| w.contains("exporters.prometheus")), "{:?}", cfg.warnings);
    let errs = errors(
        &FULL.replace("    endpoint: 0.0.0.0:8889\n", "    endpoint: 0.0.0.0:8889\n    enable_open_metrics: true\n"),
    );
    assert!(errs.iter().any(|e| e.starts_with("exporters.prometheus.enable_open_metrics:")), "{errs:?}");
}

const KEEPALIVE: &str = r#"
receivers:
  otlp:
    protocols:
      grpc:
        keepalive:
          server_parameters:
            time: 30s
            timeout: 5s
            max_connection_age: 10m
            max_connection_age_grace: 30s
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
"#;

#[test]
fn grpc_keepalive_server_parameters_are_typed_and_applied() {
    let c = load(KEEPALIVE).expect("valid");
    let ReceiverConfig::Otlp(o) = &c.receivers["otlp"] else { panic!("otlp") };
    let p = o.protocols.grpc.as_ref().and_then(|g| g.keepalive.as_ref()).and_then(|k| k.server_parameters.as_ref());
    let p = p.expect("server_parameters");
    assert_eq!(p.time, Some(std::time::Duration::from_secs(30)));
    assert_eq!(p.max_connection_age, Some(std::time::Duration::from_secs(600)));
}

#[test]
fn grpc_keepalive_settings_we_cannot_enforce_are_refused_by_path() {
    let yaml = KEEPALIVE.replace(
        "            time: 30s\n",
        "            time: 30s\n            max_connection_idle: 1m\n          enforcement_policy:\n            min_time: 5s\n",
    );
    let e = errors(&yaml);
    assert_eq!(e.len(), 1, "max_connection_idle is applied, enforcement_policy refused: {e:?}");
    assert!(e[0].starts_with("receivers.otlp.protocols.grpc.keepalive.enforcement_policy:"), "{e:?}");
    let e = errors(&KEEPALIVE.replace("time: 30s", "pings: 30s"));
    assert!(e.iter().any(|e| e.contains("keepalive.server_parameters") && e.contains("pings")), "{e:?}");
}

#[test]
fn http_server_timeouts_follow_upstream_names_and_defaults() {
    let yaml = KEEPALIVE.replace(
        "      grpc:\n",
        "      http:\n        read_header_timeout: 5s\n        idle_timeout: 0\n      grpc:\n",
    );
    let c = load(&yaml).expect("valid");
    let ReceiverConfig::Otlp(o) = &c.receivers["otlp"] else { panic!("otlp") };
    let l = o.protocols.http.as_ref().expect("http").limits();
    assert_eq!(l.read_header_timeout, Some(std::time::Duration::from_secs(5)));
    assert_eq!(l.idle_timeout, None, "0 disables, as in Go");
    assert_eq!(l.read_timeout, Some(crate::limits::DEFAULT_TIMEOUT));
}

#[test]
fn queue_sizers_other_than_requests_are_refused_by_path() {
    let yaml = |sizer: &str| {
        format!(
            "receivers: {{otlp: {{protocols: {{grpc: {{}}}}}}}}\nexporters:\n  otlp:\n    endpoint: x:4317\n    sending_queue: {{sizer: {sizer}}}\nservice: {{pipelines: {{traces: {{receivers: [otlp], exporters: [otlp]}}}}}}\n"
        )
    };
    assert!(load(&yaml("requests")).is_ok());
    for sizer in ["items", "bytes"] {
        // Without storage: the in-memory queue counts requests only.
        let e = errors(&yaml(sizer));
        assert!(e.iter().any(|e| e.starts_with("exporters.otlp.sending_queue.sizer:")), "{e:?}");
    }
}

#[test]
fn file_storage_and_a_persistent_queue_are_accepted_as_upstream_writes_them() {
    let yaml = "extensions:\n  file_storage/q:\n    directory: /var/lib/q\n    timeout: 2s\n    fsync: true\n    compaction: {on_start: true, on_rebound: true, directory: /var/lib/q}\nreceivers: {otlp: {protocols: {grpc: {}}}}\nexporters:\n  otlp:\n    endpoint: x:4317\n    sending_queue: {storage: file_storage/q, sizer: bytes, queue_size: 1000000}\nservice: {extensions: [file_storage/q], pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}}\n";
    let c = load(yaml).expect("valid");
    let ExporterConfig::Otlp(o) = &c.exporters["otlp"] else { panic!("otlp exporter") };
    assert_eq!(o.sending_queue.storage.as_deref(), Some("file_storage/q"));
    assert_eq!(o.sending_queue.sizer, crate::shared::Sizer::Bytes);
    let ExtensionConfig::FileStorage(f) = &c.extensions["file_storage/q"] else { panic!("file_storage") };
    assert!(f.fsync && f.compaction.on_start && f.compaction.on_rebound);
    assert_eq!(f.timeout, std::time::Duration::from_secs(2));
}

#[test]
fn file_storage_settings_that_are_not_implemented_are_refused_by_path() {
    let yaml = |ext: &str, storage: &str, enabled: &str| {
        format!(
            "extensions:\n  file_storage:\n{ext}\n  health_check: {{}}\nreceivers: {{otlp: {{protocols: {{grpc: {{}}}}}}}}\nexporters:\n  otlp:\n    endpoint: x:4317\n    sending_queue: {{storage: {storage}}}\nservice: {{extensions: [{enabled}], pipelines: {{traces: {{receivers: [otlp], exporters: [otlp]}}}}}}\n"
        )
    };
    let cases = [
        (
            "    compaction: {max_transaction_size: 100}",
            "file_storage",
            "file_storage",
            "extensions.file_storage.compaction.max_transaction_size:",
        ),
        (
            "    compaction: {directory: /tmp/elsewhere}",
            "file_storage",
            "file_storage",
            "extensions.file_storage.compaction.directory:",
        ),
        ("    recreate: true", "file_storage", "file_storage", "extensions.file_storage.recreate:"),
        ("    directory: /d", "file_storage/other", "file_storage", "exporters.otlp.sending_queue.storage:"),
        ("    directory: /d", "health_check", "file_storage, health_check", "exporters.otlp.sending_queue.storage:"),
        ("    directory: /d", "file_storage", "health_check", "exporters.otlp.sending_queue.storage:"),
    ];
    for (ext, storage, enabled, want) in cases {
        let e = errors(&yaml(ext, storage, enabled));
        assert!(e.iter().any(|e| e.starts_with(want)), "{ext} / {storage}: {e:?}");
    }
}

#[test]
fn span_status_is_typed_and_a_description_needs_code_error() {
    let yaml = |status: &str| {
        format!(
            "receivers: {{otlp: {{protocols: {{grpc: {{}}}}}}}}\nprocessors:\n  span:\n    status: {status}\nexporters: {{debug: {{}}}}\nservice: {{pipelines: {{traces: {{receivers: [otlp], processors: [span], exporters: [debug]}}}}}}\n"
        )
    };
    assert!(load(&yaml("{code: Error, description: boom}")).is_ok());
    assert!(load(&yaml("{code: Ok}")).is_ok());
    let e = errors(&yaml("{code: Ok, description: boom}"));
    assert!(e.iter().any(|e| e.starts_with("processors.span.status.description:")), "{e:?}");
    let e = errors(&yaml("{code: Fine}"));
    assert!(e.iter().any(|e| e.starts_with("processors.span.status.code")), "{e:?}");
}

#[test]
fn from_context_is_refused_by_path() {
    let e = errors(
        "receivers: {otlp: {protocols: {grpc: {}}}}\nprocessors:\n  attributes:\n    actions: [{key: tenant, from_context: metadata.x-tenant, action: insert}]\nexporters: {debug: {}}\nservice: {pipelines: {traces: {receivers: [otlp], processors: [attributes], exporters: [debug]}}}\n",
    );
    assert!(e.iter().any(|e| e.starts_with("processors.attributes.actions[0].from_context:")), "{e:?}");
}

/// Choices are serde enums: a value outside the set fails at parse time, at the field's path,
/// listing the accepted spellings; a missing required choice is named by its own check.
#[test]
fn choices_outside_their_set_are_refused_by_path() {
    let with = |components: &str, pipeline: &str| {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n{components}\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n{pipeline}"
        )
    };
    let e = errors(&with(
        "processors:\n  attributes:\n    actions: [{key: a, value: b, action: insrt}]\nexporters:\n  debug:\n    verbosity: loud\n  otlphttp:\n    endpoint: http://x\n    encoding: xml",
        "      processors: [attributes]\n      exporters: [debug, otlphttp]\n",
    ));
    let starts = |prefix: &str| e.iter().any(|m| m.starts_with(prefix));
    assert!(
        starts("processors.attributes.actions[0].action: unknown variant `insrt`, expected one of `insert`"),
        "{e:?}"
    );
    assert!(
        starts("exporters.debug.verbosity: unknown variant `loud`, expected one of `basic`, `normal`, `detailed`"),
        "{e:?}"
    );
    assert!(starts("exporters.otlphttp.encoding: unknown variant `xml`, expected `proto` or `json`"), "{e:?}");

    let e = errors(&with(
        "processors:\n  attributes:\n    include: {services: [a]}\n    actions: [{key: a, value: b}, {key: c, action: convert}]\nexporters:\n  debug:",
        "      processors: [attributes]\n      exporters: [debug]\n",
    ));
    assert!(e.contains(&"processors.attributes.include.match_type: required (strict or regexp)".to_owned()), "{e:?}");
    assert!(e.contains(&"processors.attributes.actions[0].action: required".to_owned()), "{e:?}");
    assert!(
        e.contains(&"processors.attributes.actions[1].converted_type: must be one of int, double, string".to_owned()),
        "{e:?}"
    );
}
