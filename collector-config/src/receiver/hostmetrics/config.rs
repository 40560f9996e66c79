//! The receiver's config and its settings, typed: [`HostMetricsConfig`] keeps each scraper's body
//! as raw YAML (serde only knows the receiver's own fields), and [`Settings`] turns those bodies into
//! per-scraper settings — filters and metric toggles — or path-named errors. Pure; the config
//! validator and the receiver's start both call [`Settings::from_config`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::metrics::MetricDef;
use super::metrics::{cpu, disk, filesystem, load, memory, network, paging, processes, system};
use crate::check::{Check, Validate};
use crate::duration::de_opt_duration;

/// `hostmetrics` receiver (alias `host_metrics`). Scraper bodies stay raw YAML here and are typed
/// by [`Settings::from_config`].
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HostMetricsConfig {
    /// How often to collect (default 1m).
    #[serde(deserialize_with = "de_opt_duration")]
    pub collection_interval: Option<Duration>,
    /// Delay before the first collection.
    #[serde(deserialize_with = "de_opt_duration")]
    pub initial_delay: Option<Duration>,
    /// Host root mount when running in a container (e.g. `/hostfs`).
    pub root_path: Option<String>,
    /// Scrapers to run (cpu, disk, filesystem, load, memory, network, paging, processes, system), each
    /// with its options; typed and validated by [`Settings::from_config`].
    pub scrapers: BTreeMap<String, Option<serde_yaml::Value>>,
}

/// Upstream's default `collection_interval`.
pub const DEFAULT_COLLECTION_INTERVAL: Duration = Duration::from_secs(60);
/// Upstream's default `initial_delay`.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_secs(1);

/// Everything the receiver needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time between collections.
    pub collection_interval: Duration,
    /// Time before the first collection.
    pub initial_delay: Duration,
    /// Where the host's `/` is mounted (`/` unless `root_path` is set).
    pub root_path: PathBuf,
    /// The configured scrapers, in name order.
    pub scrapers: Vec<ScraperSettings>,
}

/// One configured scraper.
#[derive(Debug, Clone)]
pub struct ScraperSettings {
    /// Which scraper, with its own options.
    pub scraper: Scraper,
    /// Default metrics switched off with `metrics: {<name>: {enabled: false}}`.
    pub disabled: BTreeSet<&'static str>,
}

/// A scraper and its options.
#[derive(Debug, Clone)]
pub enum Scraper {
    /// `cpu`.
    Cpu,
    /// `disk`, with its device filter.
    Disk(NameFilter),
    /// `filesystem`, with its partition filters.
    Filesystem(FilesystemSettings),
    /// `load`.
    Load {
        /// Divide the load averages by the number of CPUs.
        cpu_average: bool,
    },
    /// `memory`.
    Memory,
    /// `network`, with its interface filter.
    Network(NameFilter),
    /// `paging`.
    Paging,
    /// `processes`.
    Processes,
    /// `system`.
    System,
}

impl Scraper {
    /// The scraper's config key (and the scope name's stem).
    pub fn name(&self) -> &'static str {
        match self {
            Scraper::Cpu => "cpu",
            Scraper::Disk(_) => "disk",
            Scraper::Filesystem(_) => "filesystem",
            Scraper::Load { .. } => "load",
            Scraper::Memory => "memory",
            Scraper::Network(_) => "network",
            Scraper::Paging => "paging",
            Scraper::Processes => "processes",
            Scraper::System => "system",
        }
    }

    /// The metrics it emits by default.
    pub fn metrics(&self) -> &'static [&'static MetricDef] {
        match self {
            Scraper::Cpu => cpu::METRICS,
            Scraper::Disk(_) => disk::METRICS,
            Scraper::Filesystem(_) => filesystem::METRICS,
            Scraper::Load { .. } => load::METRICS,
            Scraper::Memory => memory::METRICS,
            Scraper::Network(_) => network::METRICS,
            Scraper::Paging => paging::METRICS,
            Scraper::Processes => processes::METRICS,
            Scraper::System => system::METRICS,
        }
    }

    /// Upstream metrics that are off by default there and not implemented here.
    fn not_implemented(&self) -> &'static [&'static str] {
        match self {
            Scraper::Cpu => cpu::NOT_IMPLEMENTED,
            Scraper::Filesystem(_) => filesystem::NOT_IMPLEMENTED,
            Scraper::Memory => memory::NOT_IMPLEMENTED,
            Scraper::Network(_) => network::NOT_IMPLEMENTED,
            Scraper::Paging => paging::NOT_IMPLEMENTED,
            Scraper::Disk(_) | Scraper::Load { .. } | Scraper::Processes | Scraper::System => &[],
        }
    }
}

/// The `filesystem` scraper's options.
#[derive(Debug, Clone, Default)]
pub struct FilesystemSettings {
    /// `include_virtual_filesystems`: also report tmpfs, proc, overlay and other mounts without a
    /// device path.
    pub include_virtual: bool,
    /// `include_devices` / `exclude_devices`.
    pub devices: NameFilter,
    /// `include_fs_types` / `exclude_fs_types`.
    pub fs_types: NameFilter,
    /// `include_mount_points` / `exclude_mount_points` (host paths, without `root_path`).
    pub mount_points: NameFilter,
}

/// An include list and an exclude list over names (devices, interfaces, mount points, types).
#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    include: Option<Matcher>,
    exclude: Option<Matcher>,
}

impl NameFilter {
    /// Whether `name` passes: matched by the include list (when there is one) and not by the
    /// exclude list.
    pub fn allows(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|m| m.matches(name)) && self.exclude.as_ref().is_none_or(|m| !m.matches(name))
    }
}

/// One compiled list, with upstream's `match_type` semantics.
#[derive(Debug, Clone)]
enum Matcher {
    /// `match_type: strict`: exact names.
    Strict(BTreeSet<String>),
    /// `match_type: regexp`: any pattern matching anywhere in the name (Go's `MatchString`).
    Regexp(regex::RegexSet),
}

impl Matcher {
    fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Strict(names) => names.contains(name),
            Matcher::Regexp(set) => set.is_match(name),
        }
    }
}

/// One include or exclude list, whatever its names are called in the config (`devices`,
/// `interfaces`, `fs_types`, `mount_points`).
#[derive(Debug)]
struct List {
    names: Vec<String>,
    match_type: Option<String>,
}

/// Compiles one list; an empty list means "no filter", as upstream.
fn compile(list: List, path: &str) -> Result<Option<Matcher>, String> {
    if list.names.is_empty() {
        return Ok(None);
    }
    match list.match_type.as_deref() {
        Some("strict") => Ok(Some(Matcher::Strict(list.names.into_iter().collect()))),
        Some("regexp") => regex::RegexSet::new(&list.names)
            .map(|s| Some(Matcher::Regexp(s)))
            .map_err(|e| format!("{path}: invalid regexp: {e}")),
        other => Err(format!("{path}.match_type: must be \"strict\" or \"regexp\", got {:?}", other.unwrap_or(""))),
    }
}

/// An include and an exclude list under `path`, each with its config key.
fn filter(path: &str, (inc_key, inc): (&str, List), (exc_key, exc): (&str, List)) -> Result<NameFilter, String> {
    Ok(NameFilter {
        include: compile(inc, &format!("{path}.{inc_key}"))?,
        exclude: compile(exc, &format!("{path}.{exc_key}"))?,
    })
}

/// `metrics: {<name>: {enabled: bool}}`, accepted by every scraper.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricToggle {
    enabled: bool,
}

type Toggles = BTreeMap<String, MetricToggle>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PlainConfig {
    metrics: Toggles,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LoadConfig {
    metrics: Toggles,
    cpu_average: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DiskConfig {
    metrics: Toggles,
    include: DevicesMatch,
    exclude: DevicesMatch,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NetworkConfig {
    metrics: Toggles,
    include: InterfacesMatch,
    exclude: InterfacesMatch,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FilesystemConfig {
    metrics: Toggles,
    include_virtual_filesystems: bool,
    include_devices: DevicesMatch,
    exclude_devices: DevicesMatch,
    include_fs_types: FsTypesMatch,
    exclude_fs_types: FsTypesMatch,
    include_mount_points: MountPointsMatch,
    exclude_mount_points: MountPointsMatch,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DevicesMatch {
    devices: Vec<String>,
    match_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct InterfacesMatch {
    interfaces: Vec<String>,
    match_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FsTypesMatch {
    fs_types: Vec<String>,
    match_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MountPointsMatch {
    mount_points: Vec<String>,
    match_type: Option<String>,
}

impl From<DevicesMatch> for List {
    fn from(m: DevicesMatch) -> Self {
        List { names: m.devices, match_type: m.match_type }
    }
}

impl From<InterfacesMatch> for List {
    fn from(m: InterfacesMatch) -> Self {
        List { names: m.interfaces, match_type: m.match_type }
    }
}

impl From<FsTypesMatch> for List {
    fn from(m: FsTypesMatch) -> Self {
        List { names: m.fs_types, match_type: m.match_type }
    }
}

impl From<MountPointsMatch> for List {
    fn from(m: MountPointsMatch) -> Self {
        List { names: m.mount_points, match_type: m.match_type }
    }
}

/// Deserializes a scraper body (`cpu:` with nothing after it means defaults).
fn body<T: DeserializeOwned + Default>(value: Option<&serde_yaml::Value>, path: &str) -> Result<T, String> {
    match value {
        None | Some(serde_yaml::Value::Null) => Ok(T::default()),
        Some(v) => serde_path_to_error::deserialize(v.clone()).map_err(|e| {
            let at = e.path().to_string();
            let msg = e.into_inner().to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            if at == "." { format!("{path}: {msg}") } else { format!("{path}.{at}: {msg}") }
        }),
    }
}

/// One scraper's typed settings and metric toggles from its config body at `path`.
fn scraper(name: &str, value: Option<&serde_yaml::Value>, path: &str) -> Result<(Scraper, Toggles), String> {
    let plain = |s: Scraper| body::<PlainConfig>(value, path).map(|b| (s, b.metrics));
    match name {
        "cpu" => plain(Scraper::Cpu),
        "memory" => plain(Scraper::Memory),
        "paging" => plain(Scraper::Paging),
        "processes" => plain(Scraper::Processes),
        "system" => plain(Scraper::System),
        "load" => body::<LoadConfig>(value, path).map(|b| (Scraper::Load { cpu_average: b.cpu_average }, b.metrics)),
        "disk" => {
            let b: DiskConfig = body(value, path)?;
            let f = filter(path, ("include", b.include.into()), ("exclude", b.exclude.into()))?;
            Ok((Scraper::Disk(f), b.metrics))
        }
        "network" => {
            let b: NetworkConfig = body(value, path)?;
            let f = filter(path, ("include", b.include.into()), ("exclude", b.exclude.into()))?;
            Ok((Scraper::Network(f), b.metrics))
        }
        "filesystem" => {
            let b: FilesystemConfig = body(value, path)?;
            let fs = FilesystemSettings {
                include_virtual: b.include_virtual_filesystems,
                devices: filter(
                    path,
                    ("include_devices", b.include_devices.into()),
                    ("exclude_devices", b.exclude_devices.into()),
                )?,
                fs_types: filter(
                    path,
                    ("include_fs_types", b.include_fs_types.into()),
                    ("exclude_fs_types", b.exclude_fs_types.into()),
                )?,
                mount_points: filter(
                    path,
                    ("include_mount_points", b.include_mount_points.into()),
                    ("exclude_mount_points", b.exclude_mount_points.into()),
                )?,
            };
            Ok((Scraper::Filesystem(fs), b.metrics))
        }
        // Per-process metrics are one resource per process: a cardinality the pipelines this
        // collector feeds are not sized for, and they need the host's PID namespace and privileged
        // reads of /proc/<pid>/io. Refusing beats accepting and silently producing nothing;
        // `processes` gives the system-wide counts.
        "process" => Err(format!(
            "{path}: the per-process scraper is not implemented; remove it (the `processes` scraper reports system-wide process counts)"
        )),
        _ => Err(format!(
            "{path}: unknown scraper (expected one of cpu, disk, filesystem, load, memory, network, paging, processes, system)"
        )),
    }
}

/// Turns the metric toggles into the set of disabled default metrics.
fn toggles(scraper: &Scraper, toggles: Toggles, path: &str, errors: &mut Vec<String>) -> BTreeSet<&'static str> {
    let mut disabled = BTreeSet::new();
    for (name, t) in toggles {
        if let Some(def) = scraper.metrics().iter().find(|d| d.name == name) {
            if !t.enabled {
                disabled.insert(def.name);
            }
        } else if scraper.not_implemented().contains(&name.as_str()) {
            if t.enabled {
                errors.push(format!(
                    "{path}.metrics.{name}: not implemented; only the metrics upstream enables by default are"
                ));
            }
        } else {
            errors.push(format!("{path}.metrics.{name}: unknown metric for the {} scraper", scraper.name()));
        }
    }
    disabled
}

impl Settings {
    /// Typed settings from the receiver's config; errors are relative to the receiver
    /// (`scrapers.disk.include.match_type: ...`).
    pub fn from_config(c: &HostMetricsConfig) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let collection_interval = c.collection_interval.unwrap_or(DEFAULT_COLLECTION_INTERVAL);
        if collection_interval.is_zero() {
            errors.push("collection_interval: must be greater than zero".to_owned());
        }
        if c.root_path.as_deref().is_some_and(|p| !p.starts_with('/')) {
            errors.push("root_path: must be an absolute path".to_owned());
        }
        if c.scrapers.is_empty() {
            errors.push("scrapers: must specify at least one scraper".to_owned());
        }
        let mut scrapers = Vec::new();
        for (name, value) in &c.scrapers {
            let path = format!("scrapers.{name}");
            match scraper(name, value.as_ref(), &path) {
                Ok((scraper, t)) => {
                    let disabled = toggles(&scraper, t, &path, &mut errors);
                    scrapers.push(ScraperSettings { scraper, disabled });
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Settings {
            collection_interval,
            initial_delay: c.initial_delay.unwrap_or(DEFAULT_INITIAL_DELAY),
            root_path: PathBuf::from(c.root_path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/")),
            scrapers,
        })
    }
}

impl Validate for HostMetricsConfig {
    /// The same typing the receiver does at start, so what passes here starts.
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        if let Err(e) = Settings::from_config(self) {
            check.errors.extend(e.into_iter().map(|e| format!("{p}.{e}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Result<Settings, Vec<String>> {
        let c: HostMetricsConfig = serde_yaml::from_str(yaml).expect("yaml");
        Settings::from_config(&c)
    }

    fn errors(yaml: &str) -> Vec<String> {
        settings(yaml).expect_err("invalid")
    }

    #[test]
    fn defaults_follow_upstream() {
        let s = settings("scrapers: {cpu: , memory: {}}").expect("valid");
        assert_eq!(s.collection_interval, Duration::from_secs(60));
        assert_eq!(s.initial_delay, Duration::from_secs(1));
        assert_eq!(s.root_path, PathBuf::from("/"));
        let names: Vec<&str> = s.scrapers.iter().map(|s| s.scraper.name()).collect();
        assert_eq!(names, ["cpu", "memory"]);
    }

    #[test]
    fn the_operators_rendering_is_valid() {
        let s = settings(
            "collection_interval: 30s\nroot_path: /hostfs\nscrapers: {cpu: {}, memory: {}, load: {}, filesystem: {}, network: {}}",
        )
        .expect("valid");
        assert_eq!(s.root_path, PathBuf::from("/hostfs"));
        assert_eq!(s.collection_interval, Duration::from_secs(30));
    }

    #[test]
    fn filters_follow_match_type() {
        let s = settings(
            "scrapers:\n  disk:\n    exclude: {devices: ['^loop', 'zram'], match_type: regexp}\n  network:\n    include: {interfaces: [eth0], match_type: strict}\n  filesystem:\n    exclude_mount_points: {mount_points: ['/dev/*'], match_type: regexp}\n    exclude_fs_types: {fs_types: [tmpfs], match_type: strict}",
        )
        .expect("valid");
        let Scraper::Disk(d) = &s.scrapers[0].scraper else { panic!("disk first") };
        assert!(!d.allows("loop0") && !d.allows("zram0") && d.allows("vda") && d.allows("sdloop"));
        let Scraper::Filesystem(f) = &s.scrapers[1].scraper else { panic!("filesystem second") };
        assert!(!f.mount_points.allows("/dev/shm") && f.mount_points.allows("/"));
        assert!(!f.fs_types.allows("tmpfs") && f.fs_types.allows("ext4") && f.devices.allows("/dev/vda"));
        let Scraper::Network(n) = &s.scrapers[2].scraper else { panic!("network third") };
        assert!(n.allows("eth0") && !n.allows("eth1") && !n.allows("lo"));
    }

    #[test]
    fn metric_toggles_disable_defaults_and_refuse_the_rest() {
        let s = settings(
            "scrapers: {disk: {metrics: {system.disk.merged: {enabled: false}, system.disk.io: {enabled: true}}}}",
        )
        .expect("valid");
        assert_eq!(s.scrapers[0].disabled, BTreeSet::from(["system.disk.merged"]));
        assert_eq!(
            errors(
                "scrapers: {memory: {metrics: {system.memory.utilization: {enabled: true}, system.memory.nope: {enabled: false}}}}"
            ),
            [
                "scrapers.memory.metrics.system.memory.nope: unknown metric for the memory scraper",
                "scrapers.memory.metrics.system.memory.utilization: not implemented; only the metrics upstream enables by default are",
            ]
        );
        settings("scrapers: {cpu: {metrics: {system.cpu.utilization: {enabled: false}}}}")
            .expect("disabling is a no-op");
    }

    #[test]
    fn bad_input_names_the_field() {
        assert_eq!(errors("scrapers: {}"), ["scrapers: must specify at least one scraper"]);
        assert_eq!(
            errors("collection_interval: 0s\nroot_path: hostfs\nscrapers: {cpu: {}}"),
            ["collection_interval: must be greater than zero", "root_path: must be an absolute path"]
        );
        assert_eq!(errors("scrapers: {gpu: {}}")[0].split(" (").next(), Some("scrapers.gpu: unknown scraper"));
        assert!(
            errors("scrapers: {process: {}}")[0]
                .starts_with("scrapers.process: the per-process scraper is not implemented")
        );
        assert_eq!(
            errors("scrapers: {disk: {include: {devices: [sda]}}}"),
            ["scrapers.disk.include.match_type: must be \"strict\" or \"regexp\", got \"\""]
        );
        assert!(
            errors("scrapers: {network: {exclude: {interfaces: ['('], match_type: regexp}}}")[0]
                .starts_with("scrapers.network.exclude: invalid regexp")
        );
        let e = errors("scrapers: {load: {cpu_avg: true}}");
        assert!(e[0].starts_with("scrapers.load.cpu_avg: unknown field"), "{e:?}");
        let e = errors("scrapers: {filesystem: {include_devices: {devices: [a], match_type: strict, regexp: {}}}}");
        assert!(e[0].starts_with("scrapers.filesystem.include_devices.regexp: unknown field"), "{e:?}");
    }
}
