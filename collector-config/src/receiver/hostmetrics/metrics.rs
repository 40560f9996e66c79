//! The hostmetrics receiver's metric tables: every metric each scraper emits, declared once as
//! a [`MetricDef`] (name, description, unit, Sum/Gauge, monotonic, value type — copied from the
//! upstream receiver's `metadata.yaml`), and the upstream metrics each scraper does not implement.
//! They live in the config crate because validation needs them (a `metrics:` entry must name a
//! metric the scraper knows); the scrapers in the collector fill points for them.

/// Sum or Gauge, as upstream declares the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A cumulative Sum.
    Sum {
        /// Whether the sum only ever grows (counters) or may go down (usage).
        monotonic: bool,
    },
    /// A Gauge.
    Gauge,
}

/// Integer or floating point data points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `asInt`.
    Int,
    /// `asDouble`.
    Double,
}

/// One metric as the upstream receiver declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Metric name, e.g. `system.cpu.time`.
    pub name: &'static str,
    /// Description, verbatim from upstream.
    pub description: &'static str,
    /// UCUM unit, e.g. `s`, `By`, `{operations}`.
    pub unit: &'static str,
    /// Sum or Gauge.
    pub shape: Shape,
    /// Int or Double points.
    pub value: ValueType,
}

/// Shorthand for a cumulative Sum definition.
pub const fn sum(
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    monotonic: bool,
    value: ValueType,
) -> MetricDef {
    MetricDef { name, description, unit, shape: Shape::Sum { monotonic }, value }
}

/// Shorthand for a Gauge definition.
pub const fn gauge(name: &'static str, description: &'static str, unit: &'static str, value: ValueType) -> MetricDef {
    MetricDef { name, description, unit, shape: Shape::Gauge, value }
}

/// The `cpu` scraper's metrics.
pub mod cpu {
    use super::*;

    /// `system.cpu.time`.
    pub static CPU_TIME: MetricDef =
        sum("system.cpu.time", "Total seconds each logical CPU spent on each mode.", "s", true, ValueType::Double);

    /// Metrics this scraper emits by default.
    pub static METRICS: &[&MetricDef] = &[&CPU_TIME];

    /// Upstream metrics that are off by default and not implemented here.
    pub const NOT_IMPLEMENTED: &[&str] =
        &["system.cpu.frequency", "system.cpu.logical.count", "system.cpu.physical.count", "system.cpu.utilization"];
}

/// The `disk` scraper's metrics.
pub mod disk {
    use super::*;

    /// `system.disk.io`.
    pub static IO: MetricDef = sum("system.disk.io", "Disk bytes transferred.", "By", true, ValueType::Int);

    /// `system.disk.io_time`.
    pub static IO_TIME: MetricDef = sum(
        "system.disk.io_time",
        "Time disk spent activated. On Windows, this is calculated as the inverse of disk idle time.",
        "s",
        true,
        ValueType::Double,
    );

    /// `system.disk.merged`.
    pub static MERGED: MetricDef = sum(
        "system.disk.merged",
        "The number of disk reads/writes merged into single physical disk access operations.",
        "{operations}",
        true,
        ValueType::Int,
    );

    /// `system.disk.operation_time`.
    pub static OPERATION_TIME: MetricDef =
        sum("system.disk.operation_time", "Time spent in disk operations.", "s", true, ValueType::Double);

    /// `system.disk.operations`.
    pub static OPERATIONS: MetricDef =
        sum("system.disk.operations", "Disk operations count.", "{operations}", true, ValueType::Int);

    /// `system.disk.pending_operations`.
    pub static PENDING_OPERATIONS: MetricDef = sum(
        "system.disk.pending_operations",
        "The queue size of pending I/O operations.",
        "{operations}",
        false,
        ValueType::Int,
    );

    /// `system.disk.weighted_io_time`.
    pub static WEIGHTED_IO_TIME: MetricDef = sum(
        "system.disk.weighted_io_time",
        "Time disk spent activated multiplied by the queue length.",
        "s",
        true,
        ValueType::Double,
    );

    /// Metrics this scraper emits by default.
    pub static METRICS: &[&MetricDef] =
        &[&IO, &IO_TIME, &MERGED, &OPERATION_TIME, &OPERATIONS, &PENDING_OPERATIONS, &WEIGHTED_IO_TIME];
}

/// The `filesystem` scraper's metrics.
pub mod filesystem {
    use super::*;

    /// `system.filesystem.inodes.usage`.
    pub static INODES_USAGE: MetricDef =
        sum("system.filesystem.inodes.usage", "FileSystem inodes used.", "{inodes}", false, ValueType::Int);

    /// `system.filesystem.usage`.
    pub static USAGE: MetricDef = sum("system.filesystem.usage", "Filesystem bytes used.", "By", false, ValueType::Int);

    /// Metrics this scraper emits by default.
    pub static METRICS: &[&MetricDef] = &[&INODES_USAGE, &USAGE];

    /// Upstream metrics that are off by default and not implemented here.
    pub const NOT_IMPLEMENTED: &[&str] = &["system.filesystem.utilization"];
}

/// The `load` scraper's metrics.
pub mod load {
    use super::*;

    /// `system.cpu.load_average.1m`.
    pub static LOAD_1M: MetricDef =
        gauge("system.cpu.load_average.1m", "Average CPU Load over 1 minute.", "{thread}", ValueType::Double);

    /// `system.cpu.load_average.5m`.
    pub static LOAD_5M: MetricDef =
        gauge("system.cpu.load_average.5m", "Average CPU Load over 5 minutes.", "{thread}", ValueType::Double);

    /// `system.cpu.load_average.15m`.
    pub static LOAD_15M: MetricDef =
        gauge("system.cpu.load_average.15m", "Average CPU Load over 15 minutes.", "{thread}", ValueType::Double);

    /// Metrics this scraper emits by default.
    pub static METRICS: &[&MetricDef] = &[&LOAD_1M, &LOAD_5M, &LOAD_15M];
}

/// The `memory` scraper's metrics.
pub mod memory {
    use super::*;

    /// `system.memory.usage`.
    pub static USAGE: MetricDef = sum("system.memory.usage", "Bytes of memory in use.", "By", false, ValueType::Int);

    /// Metrics this scraper emits by default.
    pub static METRICS: &[&MetricDef] = &[&USAGE];

    /// Upstream metrics that are off by default and not implemented here.
    pub const NOT_IMPLEMENTED: &[&str] = &[
        "system.linux.memory.available",
        "system.linux.memory.dirty",
        "system.memory.limit",
        "system.memory.linux.hugepages.limit",
        "system.memory.linux.hugepages.page_size",
        "system.memory.linux.hugepages.reserved",
        "system.memory.linux.hugepages.surplus",
        "system.memory.linux.hugepages.usage",
        "system.memory.linux.hugepages.utilization",
        "system.memory.linux.shared",
        "system.memory.page_size",
        "system.memory.utilization",
    ];
}

/// The `network` scraper's metrics.
pub mod network {
    use super::*;

    /// `system.network.connections`.
    pub static CONNECTIONS: MetricDef =
        sum("system.network.connections", "The number of connections.", "{connections}", false, ValueType::Int);

    /// `system.network.dropped`.
    pub static DROPPED: MetricDef =
        sum("system.network.dropped", "The number of packets dropped.", "{packets}", true, ValueType::Int);

    /// `system.network.errors`.
    pub static ERRORS: MetricDef =
        sum("system.network.errors", "The number of errors encountered.", "{errors}", true, ValueType::Int);

    /// `system.network.io`.
    pub static IO: MetricDef =
        sum("system.network.io", "The number of bytes transmitted and received.", "By", true, ValueType::Int);

    /// `system.network.packets`.
    pub static PACKETS: MetricDef =
        sum("system.network.packets", "The number of packets transferred.", "{packets}", true, ValueType::Int);

    /// Metrics this scraper emits by default.
    pub static METRICS: &[&MetricDef] = &[&CONNECTIONS, &DROPPED, &ERRORS, &IO, &PACKETS];

    /// Upstream metrics that are off by default and not implemented here.
    pub const NOT_IMPLEMENTED: &[&str] = &["system.network.conntrack.count", "system.network.conntrack.max"];
}

/// The `paging` scraper's metrics.
pub mod paging {
    use super::*;

    /// `system.paging.faults`.
    pub static FAULTS: MetricDef =
        sum("system.paging.faults", "The number of page faults.", "{faults}", true, ValueType::Int);

    /// `system.paging.operations`.
    pub static OPERATIONS: MetricDef =
        sum("system.paging.operations", "The number of paging operations.", "{operations}", true, ValueType::Int);

    /// `system.paging.usage`.
    pub static USAGE: MetricDef =
        sum("system.paging.usage", "Swap (unix) or pagefile (windows) usage.", "By", false, ValueType::Int);

    /// Metrics this scraper emits by default.
    pub static METRICS: &[&MetricDef] = &[&FAULTS, &OPERATIONS, &USAGE];

    /// Upstream metrics that are off by default and not implemented here.
    pub const NOT_IMPLEMENTED: &[&str] = &["system.paging.utilization"];
}

/// The `processes` scraper's metrics.
pub mod processes {
    use super::*;

    /// `system.processes.count`.
    pub static COUNT: MetricDef =
        sum("system.processes.count", "Total number of processes in each state.", "{processes}", false, ValueType::Int);

    /// `system.processes.created`.
    pub static CREATED: MetricDef = sum(
        "system.processes.created",
        "Total number of created processes. Supported on Linux and OpenBSD.",
        "{processes}",
        true,
        ValueType::Int,
    );

    /// Metrics this scraper emits by default.
    pub static METRICS: &[&MetricDef] = &[&COUNT, &CREATED];
}

/// The `system` scraper's metrics.
pub mod system {
    use super::*;

    /// `system.uptime`.
    pub static UPTIME: MetricDef =
        gauge("system.uptime", "The time the system has been running", "s", ValueType::Double);

    /// Metrics this scraper emits by default.
    pub static METRICS: &[&MetricDef] = &[&UPTIME];
}
