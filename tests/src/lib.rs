//! Real-cluster test fixtures shared by every crate's integration and end-to-end tests.
//!
//! Each test binary gets at most one control plane of each kind, started on first use by
//! `tools/cluster.sh` and stopped when the test process exits (however it exits), and each
//! test takes a fresh namespace in it:
//!
//! ```no_run
//! # async fn example() {
//! let ns = telemetry_tests::apiserver().await.namespace().await;
//! // ns.client is a kube::Client, ns.name a namespace no other test uses.
//! # }
//! ```
//!
//! - [`apiserver()`]: etcd + kube-apiserver only. Real schemas, validation, server-side
//!   apply, watches; no controllers, so no garbage collection and no ReplicaSets.
//! - [`kwok()`]: a kwok cluster with controller-manager, scheduler and fake nodes, so
//!   Deployments roll out and become Available and owner references are collected.
//! - [`node()`]: a real node (containerd, kubelet, kube-proxy, CNI, CoreDNS) in a network
//!   namespace of its own, with our images imported: pods really run, Services and cluster
//!   DNS work, and the host reaches pod and Service IPs.

mod cli;
mod cluster;
mod dashboards;
mod examples;
mod supervise;
mod tools;
mod wait;

pub use cluster::{Cluster, TestNamespace, apiserver, kwok, node, private_apiserver};
pub use dashboards::{DashboardQuery, dashboard_queries, dashboards, metric_names};
pub use examples::local_only_example_pipeline;
pub use tools::{python, repo_root, tool, tools_bin};
pub use wait::wait_for;
