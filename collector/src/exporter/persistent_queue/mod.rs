//! The persistent sending queue (`sending_queue.storage: file_storage[/name]`): an exporter's
//! queue kept in an append-only segment log, so data acknowledged to a client survives a crash
//! or an OOM kill and is sent after the restart.
//!
//! Layout, in `<file_storage directory>/exporter_<id>/`:
//! - `<position>.seg`: segments of records ([`record`]); a position is a logical byte offset
//!   that only grows, and a segment is named by the position of its first byte;
//! - `ack`: the position of the oldest record not yet done (sent, or failed for good);
//! - `lock`: held (`flock`) while a collector uses the directory, so two cannot share it.
//!
//! A push appends the record to the newest segment (and `fdatasync`s it when `fsync: true`)
//! before it returns, so the receiver acknowledges only what is in the file. With
//! `fsync: false` (upstream's default) the record is in the kernel's page cache when the client
//! is acknowledged: it survives the collector's crash, `kill -9` and OOM kills, not a kernel
//! crash or power loss. Workers take records in order; when one is done the `ack` pointer moves
//! to the oldest record still pending, and segments wholly before it are deleted, so the disk
//! holds what is pending plus at most one partly done segment. After a restart reading resumes
//! at `ack`: records that were being sent when the process died are sent again (at least once,
//! as upstream's persistent queue; at most `num_consumers` batches are repeated).
//!
//! Build vs buy: the crates that are disk queues (`disk-queue`, `disk_backed_queue` over a
//! bundled SQLite, `persistent-queue` over sled/redb) are 0.1 releases of one author each;
//! upstream's choice, a B-tree store (bbolt; in Rust, redb), never shrinks its file without the
//! compaction machinery upstream then needs, while here deleting a finished segment frees its
//! bytes, so "bounded by bytes on disk" is the file sizes themselves. The format is a few pure
//! functions ([`record`]), unit-tested and fuzzed.

pub mod record;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::id::Signal;
use crate::pdata::Data;
use collector_config::shared::Sizer;

/// Largest segment: big enough that rotation (a file create) is rare, small enough that a
/// partly done head segment wastes little disk.
const MAX_SEGMENT: u64 = 16 << 20;
/// Smallest segment when the bound is in bytes.
const MIN_SEGMENT: u64 = 64 << 10;

/// How a queue is opened.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// The queue's own directory (created if missing).
    pub dir: PathBuf,
    /// `fdatasync` every append and pointer update.
    pub fsync: bool,
    /// How long to wait for another process's lock on `dir` (file_storage `timeout`).
    pub lock_timeout: Duration,
    /// Rewrite the partly done head segment at open (`compaction.on_start`).
    pub compact_on_start: bool,
    /// Start a new segment whenever the queue empties, so the old one is deleted at once
    /// (`compaction.on_rebound`).
    pub compact_on_rebound: bool,
    /// What `capacity` counts.
    pub sizer: Sizer,
    /// The bound (`queue_size`).
    pub capacity: u64,
}

/// Why a push was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The queue holds `queue_size` already (counted by its sizer).
    #[error("sending queue is full")]
    Full,
    /// The exporter is shutting down.
    #[error("exporter is shutting down")]
    Closed,
    /// The record could not be written (disk full, I/O error); nothing was acknowledged.
    #[error("cannot write to the persistent queue: {0}")]
    Io(String),
}

/// A record handed to a worker; give it back to [`PersistentQueue::done`].
#[derive(Debug)]
pub struct Ticket(u64);

/// What [`PersistentQueue::next`] yields.
#[derive(Debug)]
pub enum Next {
    /// A record to send.
    Item(Ticket, Data),
    /// A record that could not be read back (damaged on disk); it has been dropped.
    Lost(Signal, usize, String),
    /// Closed and empty, or `stop` fired.
    Done,
}

/// What was found on disk at open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Batches waiting to be sent.
    pub records: usize,
    /// Items in them.
    pub items: u64,
    /// Bytes of damaged records dropped (torn tails, checksum mismatches).
    pub damaged_bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u64,
    end: u64,
    items: u32,
    signal: Signal,
}

/// A record found at open: start, end, and signal and items (`None`: not one of ours).
type Found = (u64, u64, Option<(Signal, u32)>);

#[derive(Debug)]
struct Segment {
    start: u64,
    end: u64,
}

#[derive(Debug)]
struct Inner {
    opts: QueueOptions,
    segment_size: u64,
    /// Oldest first; the last one is the one being appended to.
    segments: VecDeque<Segment>,
    writer: File,
    /// The segment file last read from (by its start), kept open for the next read.
    reader: Option<(u64, File)>,
    ack_file: File,
    ack_pos: u64,
    write_pos: u64,
    /// Written, not yet handed to a worker.
    waiting: VecDeque<Entry>,
    /// Handed to a worker, not yet done; by start position.
    in_flight: BTreeMap<u64, Entry>,
    pending_items: u64,
    _lock: File,
}

/// A persistent, bounded queue of [`Data`] for one exporter.
#[derive(Debug)]
pub struct PersistentQueue {
    inner: Mutex<Inner>,
    /// Wakes a worker when a record arrives (or all of them at close).
    data: Notify,
    /// Wakes blocked pushers when a record is done.
    room: Notify,
    closed: AtomicBool,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err("cannot sync directory", dir, e))
}

/// Takes the directory's lock, waiting up to `timeout` for another holder to let go.
fn lock(dir: &Path, timeout: Duration) -> Result<File, String> {
    let path = dir.join("lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_err("cannot open", &path, e))?;
    let started = Instant::now();
    loop {
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(f),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK && started.elapsed() < timeout => {
                // Another process holds it; flock has no timed wait, so poll until `timeout`.
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(format!("{} is in use by another collector (waited {timeout:?}): {e}", dir.display()));
            }
        }
    }
}

impl PersistentQueue {
    /// Opens (or creates) the queue in `opts.dir` and resumes what is there. Blocking: call it
    /// from a blocking context. Errors name the file and the operation that failed.
    pub fn open(opts: QueueOptions) -> Result<(Arc<Self>, Resumed), String> {
        let dir = opts.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| io_err("cannot create", &dir, e))?;
        let lock = lock(&dir, opts.lock_timeout)?;
        let mut resumed = Resumed::default();

        let (mut segments, records) = scan_segments(&dir, &mut resumed)?;

        let ack_path = dir.join("ack");
        let ack = std::fs::read(&ack_path).ok().and_then(|b| record::decode_ack(&b));
        let ranges: Vec<_> = segments.iter().map(|s| s.start..s.end).collect();
        let resume = record::resume_position(&ranges, ack);
        let write_pos = segments.back().map_or(resume, |s| s.end).max(resume);

        // Done and empty segments go; a new segment is started for this run's appends, so a
        // file that had a torn tail is never appended to.
        while let Some(s) = segments.front() {
            if s.end <= resume || s.start == s.end {
                let path = dir.join(record::segment_name(s.start));
                std::fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
                segments.pop_front();
            } else {
                break;
            }
        }
        segments.retain(|s| {
            let keep = s.start != s.end;
            if !keep {
                let _ = std::fs::remove_file(dir.join(record::segment_name(s.start)));
            }
            keep
        });
        if opts.compact_on_start
            && let Some(head) = segments.front_mut()
            && head.start < resume
        {
            compact_head(&dir, head, resume, opts.fsync)?;
        }

        let (waiting, pending_items) = unsent(records, resume, &mut resumed);
        resumed.records = waiting.len();
        resumed.items = pending_items;

        let active = dir.join(record::segment_name(write_pos));
        let writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&active)
            .map_err(|e| io_err("cannot create", &active, e))?;
        segments.push_back(Segment { start: write_pos, end: write_pos });
        let ack_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&ack_path)
            .map_err(|e| io_err("cannot open", &ack_path, e))?;
        let segment_size = match opts.sizer {
            Sizer::Bytes => (opts.capacity / 8).clamp(MIN_SEGMENT, MAX_SEGMENT),
            Sizer::Requests | Sizer::Items => MAX_SEGMENT,
        };
        let mut inner = Inner {
            opts,
            segment_size,
            segments,
            writer,
            reader: None,
            ack_file,
            ack_pos: resume,
            write_pos,
            waiting,
            in_flight: BTreeMap::new(),
            pending_items,
            _lock: lock,
        };
        inner.write_ack(resume)?;
        if inner.opts.fsync {
            sync_dir(&dir)?;
        }
        let q = Arc::new(Self {
            inner: Mutex::new(inner),
            data: Notify::new(),
            room: Notify::new(),
            closed: AtomicBool::new(false),
        });
        Ok((q, resumed))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters, not files, half updated; go on.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `data`; returns once it is in the file (and synced, with `fsync`). With
    /// `blocking`, waits for room instead of refusing when full.
    pub async fn push(self: &Arc<Self>, data: &Data, blocking: bool) -> Result<(), PushError> {
        let chunks = data.to_protobuf();
        let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_ref()).collect();
        let items = u32::try_from(data.item_count()).unwrap_or(u32::MAX);
        let signal = data.signal();
        let mut rec = record::encode(signal, items, &parts);
        loop {
            let room = self.room.notified();
            if self.closed.load(Ordering::SeqCst) {
                return Err(PushError::Closed);
            }
            let q = self.clone();
            let (back, res) = tokio::task::spawn_blocking(move || {
                let r = q.lock().append(&rec, signal, items);
                (rec, r)
            })
            .await
            .map_err(|e| PushError::Io(format!("append task failed: {e}")))?;
            rec = back;
            match res {
                Ok(()) => {
                    self.data.notify_one();
                    return Ok(());
                }
                Err(PushError::Full) if blocking => room.await,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next record to send, in order. Waits while the queue is empty; [`Next::Done`] once
    /// it is closed and nothing is waiting, or when `stop` fires.
    pub async fn next(self: &Arc<Self>, stop: &CancellationToken) -> Next {
        loop {
            let wake = self.data.notified();
            let q = self.clone();
            let taken = match tokio::task::spawn_blocking(move || q.lock().take()).await {
                Ok(t) => t,
                Err(e) => Some(Err((Signal::Traces, 0, format!("read task failed: {e}")))),
            };
            match taken {
                Some(Ok((ticket, data, more))) => {
                    if more {
                        // Pass the wake-up on: one notify may stand for several records.
                        self.data.notify_one();
                    }
                    return Next::Item(ticket, data);
                }
                Some(Err((signal, items, why))) => return Next::Lost(signal, items, why),
                None if self.closed.load(Ordering::SeqCst) => return Next::Done,
                None => {}
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => return Next::Done,
                () = wake => {}
            }
        }
    }

    /// Marks a record done (sent, or failed for good): the pointer moves past it once every
    /// older record is done too, and segments wholly behind the pointer are deleted.
    pub async fn done(self: &Arc<Self>, ticket: Ticket) -> Result<(), String> {
        let q = self.clone();
        let r = tokio::task::spawn_blocking(move || q.lock().done(ticket.0))
            .await
            .map_err(|e| format!("acknowledge task failed: {e}"))?;
        self.room.notify_waiters();
        r
    }

    /// No more pushes; workers finish what is waiting (or leave it for the next start).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.data.notify_waiters();
        self.room.notify_waiters();
    }

    /// Batches and items not yet done.
    pub fn pending(&self) -> (usize, u64) {
        let i = self.lock();
        (i.waiting.len() + i.in_flight.len(), i.pending_items)
    }

    /// Bytes the queue's segments take on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.lock().disk_bytes()
    }
}

/// Rewrites the head segment without its done prefix (`compaction.on_start`): the records from
/// `resume` on go to a new file named for `resume`, which replaces the old one.
fn compact_head(dir: &Path, head: &mut Segment, resume: u64, fsync: bool) -> Result<(), String> {
    let old = dir.join(record::segment_name(head.start));
    let new = dir.join(record::segment_name(resume));
    let tmp = dir.join(format!("{}.tmp", record::segment_name(resume)));
    let bytes = std::fs::read(&old).map_err(|e| io_err("cannot read", &old, e))?;
    let keep = bytes.get((resume - head.start) as usize..).unwrap_or_default();
    let mut f = File::create(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
    f.write_all(keep).map_err(|e| io_err("cannot write", &tmp, e))?;
    if fsync {
        f.sync_data().map_err(|e| io_err("cannot sync", &tmp, e))?;
    }
    std::fs::rename(&tmp, &new).map_err(|e| io_err("cannot rename", &tmp, e))?;
    std::fs::remove_file(&old).map_err(|e| io_err("cannot remove", &old, e))?;
    if fsync {
        sync_dir(dir)?;
    }
    head.start = resume;
    Ok(())
}

impl Inner {
    fn disk_bytes(&self) -> u64 {
        self.segments.front().map_or(0, |s| self.write_pos - s.start)
    }

    fn path(&self, start: u64) -> PathBuf {
        self.opts.dir.join(record::segment_name(start))
    }

    fn full(&self, len: u64, items: u32) -> bool {
        let cap = self.opts.capacity;
        match self.opts.sizer {
            Sizer::Requests => (self.waiting.len() + self.in_flight.len()) as u64 >= cap,
            Sizer::Items => self.pending_items + u64::from(items) > cap,
            Sizer::Bytes => self.disk_bytes() + len > cap,
        }
    }

    fn append(&mut self, rec: &[u8], signal: Signal, items: u32) -> Result<(), PushError> {
        let len = rec.len() as u64;
        if self.full(len, items) && self.opts.sizer == Sizer::Bytes && self.ack_pos > self.write_pos_segment() {
            // Finished records in the segment being written count against the byte bound
            // until their file goes: start a new segment so the old one can be deleted.
            self.rotate().map_err(PushError::Io)?;
            self.reclaim().map_err(PushError::Io)?;
        }
        if self.full(len, items) {
            return Err(PushError::Full);
        }
        let active = self.path(self.write_pos_segment());
        let written =
            self.writer.write_all(rec).and_then(|()| if self.opts.fsync { self.writer.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // Cut off whatever part was written, so the next record starts on a boundary; if
            // that fails too, the next start drops it as a damaged tail.
            let seg_len = self.write_pos - self.write_pos_segment();
            let _ = self.writer.set_len(seg_len);
            return Err(PushError::Io(io_err("cannot append to", &active, e)));
        }
        let start = self.write_pos;
        self.write_pos += len;
        if let Some(s) = self.segments.back_mut() {
            s.end = self.write_pos;
        }
        self.waiting.push_back(Entry { start, end: self.write_pos, items, signal });
        self.pending_items += u64::from(items);
        if self.write_pos - self.write_pos_segment() >= self.segment_size {
            // The record is safely written; a failure to start the next segment only means
            // this one keeps growing until the next attempt.
            if let Err(e) = self.rotate() {
                tracing::warn!(error = %e, "persistent queue: cannot start a new segment");
            }
        }
        Ok(())
    }

    fn write_pos_segment(&self) -> u64 {
        self.segments.back().map_or(self.write_pos, |s| s.start)
    }

    fn rotate(&mut self) -> Result<(), String> {
        let path = self.path(self.write_pos);
        self.writer =
            OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io_err("cannot create", &path, e))?;
        if self.opts.fsync {
            sync_dir(&self.opts.dir)?;
        }
        self.segments.push_back(Segment { start: self.write_pos, end: self.write_pos });
        Ok(())
    }

    /// Reads the oldest waiting record: (ticket, data, more waiting), or the items of a record
    /// that cannot be read back (it is then done, so it is not read again).
    #[allow(clippy::type_complexity)]
    fn take(&mut self) -> Option<Result<(Ticket, Data, bool), (Signal, usize, String)>> {
        let e = self.waiting.pop_front()?;
        self.in_flight.insert(e.start, e);
        match self.read(e) {
            Ok(data) => Some(Ok((Ticket(e.start), data, !self.waiting.is_empty()))),
            Err(why) => {
                if let Err(ack) = self.done(e.start) {
                    tracing::warn!(error = %ack, "persistent queue: cannot move the pointer past a damaged record");
                }
                Some(Err((e.signal, e.items as usize, why)))
            }
        }
    }

    fn read(&mut self, e: Entry) -> Result<Data, String> {
        let Some(seg) = self.segments.iter().find(|s| s.start <= e.start && e.end <= s.end).map(|s| s.start) else {
            return Err(format!("record at {} is in no segment", e.start));
        };
        if self.reader.as_ref().is_none_or(|(s, _)| *s != seg) {
            let path = self.path(seg);
            let f = File::open(&path).map_err(|err| io_err("cannot open", &path, err))?;
            self.reader = Some((seg, f));
        }
        let Some((_, f)) = &self.reader else { return Err("no segment open for reading".into()) };
        let mut buf = vec![0; (e.end - e.start) as usize];
        f.read_exact_at(&mut buf, e.start - seg).map_err(|err| format!("cannot read record at {}: {err}", e.start))?;
        record::decode_one(&buf).map_err(|d| format!("record at {} is damaged ({d:?})", e.start))?;
        let (signal, _, proto) =
            record::payload(&buf).ok_or_else(|| format!("record at {} names no signal", e.start))?;
        Data::from_protobuf(signal, Bytes::copy_from_slice(proto))
            .map_err(|why| format!("record at {} does not decode: {why}", e.start))
    }

    fn done(&mut self, start: u64) -> Result<(), String> {
        if let Some(e) = self.in_flight.remove(&start) {
            self.pending_items = self.pending_items.saturating_sub(u64::from(e.items));
        }
        let oldest = self.in_flight.keys().next().copied().or_else(|| self.waiting.front().map(|e| e.start));
        let new_ack = oldest.unwrap_or(self.write_pos);
        if new_ack > self.ack_pos {
            self.write_ack(new_ack)?;
            self.ack_pos = new_ack;
        }
        if self.opts.compact_on_rebound && oldest.is_none() && self.write_pos > self.write_pos_segment() {
            self.rotate()?;
        }
        self.reclaim()
    }

    /// Deletes the segments wholly behind the pointer (never the one being written).
    fn reclaim(&mut self) -> Result<(), String> {
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.end <= self.ack_pos) {
            if let Some(s) = self.segments.pop_front() {
                if self.reader.as_ref().is_some_and(|(r, _)| *r == s.start) {
                    self.reader = None;
                }
                let path = self.path(s.start);
                std::fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
            }
        }
        Ok(())
    }

    fn write_ack(&mut self, pos: u64) -> Result<(), String> {
        let path = self.opts.dir.join("ack");
        // 12 bytes written in place: a torn write fails its checksum and resumes from the
        // oldest segment (duplicates, no loss), so no rename dance is needed per update.
        self.ack_file.write_all_at(&record::encode_ack(pos), 0).map_err(|e| io_err("cannot write", &path, e))?;
        if self.opts.fsync {
            self.ack_file.sync_data().map_err(|e| io_err("cannot sync", &path, e))?;
        }
        Ok(())
    }
}

/// Reads the segments in `dir` in order, one at a time (a large queue costs its index at start,
/// not its size in memory), cuts off damaged tails (counted in `resumed`) and lists every record
/// found as (start, end, signal and items if its payload is readable).
fn scan_segments(dir: &Path, resumed: &mut Resumed) -> Result<(VecDeque<Segment>, Vec<Found>), String> {
    let mut found: Vec<u64> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_err("cannot list", dir, e))? {
        let e = e.map_err(|e| io_err("cannot list", dir, e))?;
        found.extend(e.file_name().to_str().and_then(record::parse_segment_name));
    }
    found.sort_unstable();
    let mut segments = VecDeque::new();
    let mut records: Vec<Found> = Vec::new();
    for start in &found {
        let path = dir.join(record::segment_name(*start));
        let bytes = std::fs::read(&path).map_err(|e| io_err("cannot read", &path, e))?;
        let scanned = record::scan(&bytes);
        if let Some(damage) = scanned.damage {
            let dropped = (bytes.len() - scanned.valid_end) as u64;
            resumed.damaged_bytes += dropped;
            tracing::warn!(segment = %path.display(), ?damage, dropped_bytes = dropped, "persistent queue: dropping the damaged end of a segment");
            let f = OpenOptions::new().write(true).open(&path).map_err(|e| io_err("cannot open", &path, e))?;
            f.set_len(scanned.valid_end as u64).map_err(|e| io_err("cannot truncate", &path, e))?;
        }
        for r in &scanned.records {
            let items = record::payload(&bytes[r.clone()]).map(|(signal, items, _)| (signal, items));
            records.push((start + r.start as u64, start + r.end as u64, items));
        }
        segments.push_back(Segment { start: *start, end: start + scanned.valid_end as u64 });
    }
    Ok((segments, records))
}

/// The records at or after `resume`, the position after the last acknowledged one, as queue
/// entries with their item total; unreadable ones are counted as damaged in `resumed`.
fn unsent(records: Vec<Found>, resume: u64, resumed: &mut Resumed) -> (VecDeque<Entry>, u64) {
    let mut waiting = VecDeque::new();
    let mut pending_items = 0u64;
    for (start, end, items) in records {
        if start < resume {
            continue;
        }
        match items {
            Some((signal, items)) => {
                waiting.push_back(Entry { start, end, items, signal });
                pending_items += u64::from(items);
            }
            None => resumed.damaged_bytes += end - start,
        }
    }
    (waiting, pending_items)
}

#[cfg(test)]
mod tests;
