//! `filesystem` scraper: bytes and inodes used/free/reserved per mounted filesystem.
//!
//! Mounts come from `/proc/1/mountinfo` under the root (PID 1's view is the host's mount table
//! even when the collector runs in a container), as gopsutil v4 parses it: unless
//! `include_virtual_filesystems` is set, only mounts whose source is a path (`/dev/...`) are
//! kept — which leaves out proc, sysfs, tmpfs, cgroup, overlay and the like — and bind mounts are
//! skipped. Duplicates (same mount point and device) are reported once. Usage comes from
//! `statvfs(2)` on the mount point under the root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::Scraped;
use super::config::FilesystemSettings;
use super::host::{Host, HostRoot, ParseError, ScrapeError};
use super::otlp::{Points, Stamp};

pub use collector_config::hostmetrics::metrics::filesystem::*;

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Source device (`/dev/vda1`), or for virtual filesystems their source name.
    pub device: String,
    /// Mount point as the host sees it.
    pub mountpoint: String,
    /// Filesystem type, e.g. `ext4`.
    pub fstype: String,
    /// Mount options, with the effective `rw`/`ro` (and `bind` for bind mounts).
    pub opts: Vec<String>,
    /// `major:minor` of the mount (mountinfo only), to resolve `/dev/root`.
    pub dev_id: String,
}

impl Partition {
    /// Upstream's `mode` attribute.
    pub fn mode(&self) -> &'static str {
        if self.opts.iter().any(|o| o == "rw") {
            "rw"
        } else if self.opts.iter().any(|o| o == "ro") {
            "ro"
        } else {
            "unknown"
        }
    }
}

/// Space and inode figures of one filesystem (bytes and inodes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Total size.
    pub total: u64,
    /// Available to unprivileged users.
    pub free: u64,
    /// In use.
    pub used: u64,
    /// Inodes in use.
    pub inodes_used: u64,
    /// Inodes free.
    pub inodes_free: u64,
}

impl Usage {
    /// gopsutil's derivation from `statvfs` fields (blocks counted in `block_size` units).
    pub fn from_statvfs(block_size: u64, blocks: u64, bfree: u64, bavail: u64, files: u64, ffree: u64) -> Self {
        Usage {
            total: blocks.saturating_mul(block_size),
            free: bavail.saturating_mul(block_size),
            used: blocks.saturating_sub(bfree).saturating_mul(block_size),
            // Filesystems without inode accounting report files < ffree (or both 0).
            inodes_used: files.saturating_sub(ffree),
            inodes_free: ffree,
        }
    }

    /// Blocks reserved for root: neither used nor available to users.
    pub fn reserved(&self) -> u64 {
        self.total.saturating_sub(self.used).saturating_sub(self.free)
    }
}

/// Undoes the kernel's octal escapes in mount paths (`\040` for a space); paths with other
/// backslashes are kept as they are.
pub fn unescape(path: &str) -> String {
    if !path.contains('\\') {
        return path.to_owned();
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let oct = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
            let Some(d) = oct else { return path.to_owned() };
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| path.to_owned())
}

/// The effective read/write mode: read-only if either the mount or the superblock is.
fn effective_opts(mut mount_opts: Vec<String>, super_opts: &[&str]) -> Vec<String> {
    let mode = if mount_opts.iter().any(|o| o == "ro") || super_opts.contains(&"ro") {
        "ro"
    } else if mount_opts.iter().any(|o| o == "rw") && super_opts.contains(&"rw") {
        "rw"
    } else {
        return mount_opts;
    };
    mount_opts.retain(|o| o != "ro" && o != "rw");
    mount_opts.insert(0, mode.to_owned());
    mount_opts
}

/// Parses a `mountinfo` file (`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`).
/// `all` keeps virtual filesystems and bind mounts.
pub fn parse_mountinfo(text: &str, all: bool) -> Result<Vec<Partition>, ParseError> {
    let mut out = Vec::new();
    let mut first_device: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = |what: &str| ParseError(format!("invalid mountinfo line ({what}): {line:?}"));
        let (head, tail) = line.split_once(" - ").ok_or_else(|| bad("no ' - ' separator"))?;
        let f: Vec<&str> = head.split_whitespace().collect();
        if f.len() < 5 {
            return Err(bad("fewer than 5 fields before the separator"));
        }
        let (dev_id, root_dir, mountpoint) = (f[2], f[3], f[4]);
        let mount_opts: Vec<String> = f.get(5).map_or_else(Vec::new, |o| o.split(',').map(str::to_owned).collect());
        let t: Vec<&str> = tail.split_whitespace().collect();
        if t.len() < 2 {
            return Err(bad("no filesystem type and source"));
        }
        let (fstype, source) = (t[0], t[1]);
        let super_opts: Vec<&str> = t.get(2).map_or_else(Vec::new, |o| o.split(',').collect());
        let mut opts = effective_opts(mount_opts, &super_opts);
        let is_path = source.starts_with('/');
        if !all && !is_path {
            continue;
        }
        let mut device = if is_path || root_dir == "/" { source } else { root_dir }.to_owned();
        if let Some(first) = first_device.get(dev_id) {
            device = first.clone();
        } else {
            first_device.insert(dev_id.to_owned(), device.clone());
        }
        let is_bind = is_path && root_dir != "/";
        if is_bind {
            if !all {
                continue;
            }
            opts.push("bind".to_owned());
        }
        out.push(Partition {
            device,
            mountpoint: unescape(mountpoint),
            fstype: fstype.to_owned(),
            opts,
            dev_id: dev_id.to_owned(),
        });
    }
    Ok(out)
}

/// Parses a `mounts` file (kernels without mountinfo): `device mountpoint type opts 0 0`. Without
/// `all`, only types `/proc/filesystems` lists as device-backed are kept.
pub fn parse_mounts(text: &str, all: bool, device_fs: &BTreeSet<String>) -> Result<Vec<Partition>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            return Err(ParseError(format!("invalid mounts line (fewer than 4 fields): {line:?}")));
        }
        if !all && (f[0] == "none" || !device_fs.contains(f[2])) {
            continue;
        }
        out.push(Partition {
            device: f[0].to_owned(),
            mountpoint: unescape(f[1]),
            fstype: f[2].to_owned(),
            opts: f[3].split(',').map(str::to_owned).collect(),
            dev_id: String::new(),
        });
    }
    Ok(out)
}

/// The device-backed filesystem types of `/proc/filesystems` (lines without `nodev`, plus zfs).
pub fn parse_filesystems(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| match l.split_once('\t') {
            Some(("nodev", t)) if t.trim() == "zfs" => Some("zfs".to_owned()),
            Some(("nodev", _)) => None,
            _ => Some(l.trim().to_owned()),
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// Drops repeated (mount point, device) pairs and what the filters exclude, keeping order.
pub fn select(partitions: Vec<Partition>, s: &FilesystemSettings) -> Vec<Partition> {
    let mut seen = BTreeSet::new();
    partitions
        .into_iter()
        .filter(|p| p.mountpoint.is_empty() || seen.insert((p.mountpoint.clone(), p.device.clone())))
        .filter(|p| s.devices.allows(&p.device) && s.fs_types.allows(&p.fstype) && s.mount_points.allows(&p.mountpoint))
        .collect()
}

fn clean(p: &Path) -> PathBuf {
    p.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}

/// Where a host mount point is visible to the collector. Mount points read from the collector's
/// own mountinfo already carry the root prefix and are used as they are (upstream's rule).
pub fn translate_mountpoint(root: &Path, mountpoint: &str) -> PathBuf {
    let mp = Path::new(mountpoint);
    if root != Path::new("/") && clean(mp).starts_with(clean(root)) {
        return mp.to_path_buf();
    }
    root.join(mountpoint.trim_start_matches('/'))
}

/// Both metrics for the given filesystems.
pub fn metrics(usages: &[(Partition, Usage)], stamp: Stamp) -> Vec<Metric> {
    let mut bytes = Points::new(&USAGE, stamp);
    let mut inodes = Points::new(&INODES_USAGE, stamp);
    for (p, u) in usages {
        let attrs = |state| {
            [
                ("device", p.device.as_str()),
                ("mode", p.mode()),
                ("mountpoint", &p.mountpoint),
                ("type", &p.fstype),
                ("state", state),
            ]
        };
        bytes.push(&attrs("used"), u.used);
        bytes.push(&attrs("free"), u.free);
        bytes.push(&attrs("reserved"), u.reserved());
        inodes.push(&attrs("used"), u.inodes_used);
        inodes.push(&attrs("free"), u.inodes_free);
    }
    [bytes, inodes].into_iter().filter_map(Points::finish).collect()
}

/// The first readable mount table under the root: PID 1's, then the collector's own.
fn read_partitions(root: &HostRoot, all: bool) -> Result<Vec<Partition>, ScrapeError> {
    // gopsutil requires /proc/filesystems unless virtual filesystems are included, even when
    // mountinfo (which does not need it) is read; failing the same way keeps the two in step.
    let device_fs = if all { BTreeSet::new() } else { parse_filesystems(&root.read("/proc/filesystems")?) };
    let mut first_err = None;
    for pid in ["1", "self"] {
        let info = format!("/proc/{pid}/mountinfo");
        match root.parse(&info, |t| parse_mountinfo(t, all)) {
            Err(e @ ScrapeError::Read { .. }) => first_err = first_err.or(Some(e)),
            other => return other,
        }
        let mounts = format!("/proc/{pid}/mounts");
        if let Ok(text) = root.read(&mounts) {
            return parse_mounts(&text, all, &device_fs)
                .map_err(|source| ScrapeError::Parse { path: root.join(&mounts), source });
        }
    }
    Err(first_err.unwrap_or_else(|| ScrapeError::Parse {
        path: root.join("/proc/1/mountinfo"),
        source: ParseError("no mount table".into()),
    }))
}

/// Resolves device names the way gopsutil does: `/dev/mapper/x` to its target, and `/dev/root`
/// to the real device through `/sys/dev/block/<major:minor>`. Unlike gopsutil, a mapper target
/// is reported as the host path (`/dev/dm-0`), without the `root_path` prefix.
fn resolve_device(root: &HostRoot, p: &mut Partition) {
    if p.device.starts_with("/dev/mapper/") {
        if let Ok(target) = std::fs::canonicalize(root.join(&p.device))
            && let Ok(root_dir) = std::fs::canonicalize(root.path())
            && let Ok(host_path) = target.strip_prefix(&root_dir)
        {
            p.device = Path::new("/").join(host_path).to_string_lossy().into_owned();
        }
    } else if p.device == "/dev/root"
        && let Ok(link) = std::fs::read_link(root.join(&format!("/sys/dev/block/{}", p.dev_id)))
        && let Some(name) = link.file_name()
    {
        p.device = format!("/dev/{}", name.to_string_lossy());
    }
}

/// Reads the mount table and `statvfs`es every selected mount under the host root. A mount that
/// cannot be read is reported and skipped; the others are still emitted.
pub fn scrape(host: &Host, s: &FilesystemSettings) -> Scraped {
    let stamp = host.stamp();
    let mut partitions = match read_partitions(&host.root, s.include_virtual) {
        Ok(p) => p,
        Err(e) => return Scraped::failed(e, METRICS.len()),
    };
    // Before de-duplication and filtering, as gopsutil resolves them while listing partitions.
    for p in &mut partitions {
        resolve_device(&host.root, p);
    }
    let mut usages = Vec::new();
    let mut errors = Vec::new();
    for p in select(partitions, s) {
        let path = translate_mountpoint(host.root.path(), &p.mountpoint);
        match rustix::fs::statvfs(&path) {
            Ok(v) => {
                // gopsutil counts blocks in f_bsize units (equal to f_frsize on local filesystems).
                let u = Usage::from_statvfs(v.f_bsize, v.f_blocks, v.f_bfree, v.f_bavail, v.f_files, v.f_ffree);
                usages.push((p, u));
            }
            Err(e) => errors.push(ScrapeError::Statvfs { path, source: e.into() }),
        }
    }
    let failed_metrics = if usages.is_empty() && !errors.is_empty() { METRICS.len() } else { 0 };
    Scraped { metrics: metrics(&usages, stamp), errors, failed_metrics }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{PROC_1_MOUNTINFO, PROC_FILESYSTEMS};
    use super::super::otlp::{Num, read};
    use super::*;

    fn p(device: &str, mountpoint: &str, fstype: &str, opts: &[&str]) -> Partition {
        Partition {
            device: device.into(),
            mountpoint: mountpoint.into(),
            fstype: fstype.into(),
            opts: opts.iter().map(|s| (*s).to_owned()).collect(),
            dev_id: String::new(),
        }
    }

    #[test]
    fn keeps_only_device_backed_mounts_by_default() {
        let parts = parse_mountinfo(PROC_1_MOUNTINFO, false).expect("parse");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0], Partition { dev_id: "254:0".into(), ..p("/dev/vda", "/", "ext4", &["rw", "relatime"]) });
        let all = parse_mountinfo(PROC_1_MOUNTINFO, true).expect("parse");
        assert_eq!(all.len(), 20);
        assert_eq!((all[3].device.as_str(), all[3].fstype.as_str()), ("tmpfs", "tmpfs"));
        assert_eq!(all[6].mode(), "ro");
    }

    #[test]
    fn bind_mounts_read_only_superblocks_and_escapes() {
        let text = "\
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
60 27 8:1 /var/lib/kubelet /var/lib/kubelet rw,relatime shared:1 - ext4 /dev/sda1 rw
61 27 8:2 / /mnt/my\\040disk rw,relatime - xfs /dev/sdb ro,attr2
62 27 0:50 / /run/containerd/x rw - overlay overlay rw,lowerdir=/a
";
        let parts = parse_mountinfo(text, false).expect("parse");
        assert_eq!(parts.iter().map(|p| p.mountpoint.as_str()).collect::<Vec<_>>(), ["/", "/mnt/my disk"]);
        assert_eq!(parts[1].mode(), "ro", "read-only superblock wins over a rw mount");
        let all = parse_mountinfo(text, true).expect("parse");
        assert_eq!(all[1].device, "/dev/sda1");
        assert!(all[1].opts.contains(&"bind".to_owned()));
        assert_eq!(all[3].device, "overlay");
        assert!(parse_mountinfo("1 2 3 / /x rw\n", false).unwrap_err().0.contains("no ' - ' separator"));
        assert!(parse_mountinfo("1 2 - ext4\n", false).unwrap_err().0.contains("fewer than 5 fields"));
        assert_eq!(unescape("/a\\011b"), "/a\tb");
        assert_eq!(unescape("/a\\xb"), "/a\\xb");
    }

    #[test]
    fn mounts_fallback_uses_proc_filesystems() {
        let fs = parse_filesystems(PROC_FILESYSTEMS);
        assert!(fs.contains("ext4") && fs.contains("xfs") && !fs.contains("tmpfs") && !fs.contains("proc"));
        let text = "/dev/vda / ext4 rw,relatime 0 0\ntmpfs /dev/shm tmpfs rw 0 0\nnone /x ext4 rw 0 0\n";
        assert_eq!(parse_mounts(text, false, &fs).expect("parse"), [p("/dev/vda", "/", "ext4", &["rw", "relatime"])]);
        assert_eq!(parse_mounts(text, true, &fs).expect("parse").len(), 3);
        assert!(parse_mounts("/dev/vda /\n", false, &fs).is_err());
    }

    #[test]
    fn duplicates_and_filters_are_dropped() {
        let c: collector_config::receiver::hostmetrics::config::HostMetricsConfig = serde_yaml::from_str(
            "scrapers: {filesystem: {exclude_mount_points: {mount_points: ['^/boot'], match_type: regexp}}}",
        )
        .expect("yaml");
        let s = super::super::config::Settings::from_config(&c).expect("valid");
        let super::super::config::Scraper::Filesystem(fs) = &s.scrapers[0].scraper else { panic!("fs") };
        let parts = vec![
            p("/dev/sda1", "/", "ext4", &["rw"]),
            p("/dev/sda1", "/", "ext4", &["rw"]),
            p("/dev/sda2", "/boot/efi", "vfat", &["rw"]),
            p("/dev/sdb", "/data", "xfs", &["rw"]),
        ];
        let kept: Vec<String> = select(parts, fs).into_iter().map(|p| p.mountpoint).collect();
        assert_eq!(kept, ["/", "/data"]);
    }

    #[test]
    fn mount_points_are_found_under_the_root() {
        let root = Path::new("/hostfs");
        assert_eq!(translate_mountpoint(root, "/"), PathBuf::from("/hostfs/"));
        assert_eq!(translate_mountpoint(root, "/var/lib"), PathBuf::from("/hostfs/var/lib"));
        assert_eq!(translate_mountpoint(root, "/hostfs/boot"), PathBuf::from("/hostfs/boot"));
        assert_eq!(translate_mountpoint(root, "/hostfsx"), PathBuf::from("/hostfs/hostfsx"));
        assert_eq!(translate_mountpoint(Path::new("/"), "/boot"), PathBuf::from("/boot"));
    }

    #[test]
    fn dev_root_and_mapper_names_are_resolved_under_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        for d in ["sys/dev/block", "dev/mapper"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        std::fs::write(dir.path().join("dev/dm-0"), "").expect("touch");
        let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, dir.path().join(at)).expect("symlink");
        link("../../devices/pci0000:00/virtio1/block/vda", "sys/dev/block/254:0");
        link("../dm-0", "dev/mapper/vg-root");
        let mut r = Partition { dev_id: "254:0".into(), ..p("/dev/root", "/", "ext4", &["rw"]) };
        resolve_device(&root, &mut r);
        assert_eq!(r.device, "/dev/vda");
        let mut m = p("/dev/mapper/vg-root", "/", "xfs", &["rw"]);
        resolve_device(&root, &mut m);
        assert_eq!(m.device, "/dev/dm-0");
        let mut gone = p("/dev/mapper/missing", "/x", "xfs", &["rw"]);
        resolve_device(&root, &mut gone);
        assert_eq!(gone.device, "/dev/mapper/missing", "kept when it cannot be resolved");
    }

    #[test]
    fn usage_and_inodes_like_gopsutil() {
        let u = Usage::from_statvfs(4096, 1000, 300, 250, 500, 400);
        assert_eq!(u, Usage { total: 4_096_000, free: 1_024_000, used: 2_867_200, inodes_used: 100, inodes_free: 400 });
        assert_eq!(u.reserved(), 204_800);
        assert_eq!(Usage::from_statvfs(4096, 10, 10, 10, 0, 5).inodes_used, 0);
        let part = Partition { dev_id: "254:0".into(), ..p("/dev/vda", "/", "ext4", &["rw", "relatime"]) };
        let m = metrics(&[(part, u)], Stamp { start_unix_nano: 1, time_unix_nano: 2 });
        let keys = ["device", "mode", "mountpoint", "type", "state"];
        read::assert_shape(read::metric(&m, "system.filesystem.usage"), &USAGE, &keys);
        read::assert_shape(read::metric(&m, "system.filesystem.inodes.usage"), &INODES_USAGE, &keys);
        let at =
            |state| [("device", "/dev/vda"), ("mode", "rw"), ("mountpoint", "/"), ("type", "ext4"), ("state", state)];
        assert_eq!(read::value(&m, "system.filesystem.usage", &at("reserved")), Num::Int(204_800));
        assert_eq!(read::value(&m, "system.filesystem.inodes.usage", &at("used")), Num::Int(100));
        assert!(metrics(&[], Stamp { start_unix_nano: 1, time_unix_nano: 2 }).is_empty());
    }
}
