//! The persistent queue against a real temporary directory: resume after reopen, redelivery of
//! what was in flight, the byte bound, segment deletion, torn tails, the lock and compaction.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::pdata::Payload;
use crate::pdata::tests::{names, traces};

fn opts(dir: &Path, sizer: Sizer, capacity: u64) -> QueueOptions {
    QueueOptions {
        dir: dir.to_owned(),
        fsync: true,
        lock_timeout: Duration::from_millis(100),
        compact_on_start: false,
        compact_on_rebound: false,
        sizer,
        capacity,
    }
}

/// A batch of `n` spans whose names start with `tag`.
fn batch(tag: &str, n: usize) -> Data {
    let mut p = traces(1, 1, n);
    if let Payload::Traces(r) = &mut p {
        for s in r.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans) {
            s.name = format!("{tag}-{}", s.name);
            s.trace_id = vec![1; 16];
            s.span_id = vec![2; 8];
        }
    }
    Data::from(p)
}

fn open(o: QueueOptions) -> (Arc<PersistentQueue>, Resumed) {
    PersistentQueue::open(o).expect("open queue")
}

async fn take(q: &Arc<PersistentQueue>) -> (Ticket, Data) {
    match q.next(&CancellationToken::new()).await {
        Next::Item(t, d) => (t, d),
        other => panic!("expected a record, got {other:?}"),
    }
}

fn first_name(d: Data) -> String {
    names(&d.decode().expect("decodes"))[0].clone()
}

fn segments(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn what_was_pushed_is_read_back_in_order_after_a_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, resumed) = open(opts(tmp.path(), Sizer::Requests, 100));
    assert_eq!(resumed, Resumed::default(), "empty directory");
    for tag in ["a", "b", "c"] {
        q.push(&batch(tag, 2), false).await.expect("push");
    }
    drop(q);
    let (q, resumed) = open(opts(tmp.path(), Sizer::Requests, 100));
    assert_eq!((resumed.records, resumed.items), (3, 6));
    for tag in ["a", "b", "c"] {
        let (t, d) = take(&q).await;
        assert_eq!(d.item_count(), 2);
        assert!(first_name(d).starts_with(tag));
        q.done(t).await.expect("done");
    }
    assert_eq!(q.pending(), (0, 0));
}

#[tokio::test]
async fn records_in_flight_at_a_crash_are_delivered_again_and_done_ones_are_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, _) = open(opts(tmp.path(), Sizer::Requests, 100));
    for tag in ["a", "b", "c", "d"] {
        q.push(&batch(tag, 1), false).await.expect("push");
    }
    let (ta, _) = take(&q).await;
    let (_tb, _) = take(&q).await;
    let (tc, _) = take(&q).await;
    q.done(ta).await.expect("done a");
    // c finishes before b: the pointer cannot pass b, so b and c come back (c is a duplicate).
    q.done(tc).await.expect("done c");
    drop(q);
    let (q, resumed) = open(opts(tmp.path(), Sizer::Requests, 100));
    assert_eq!(resumed.records, 3);
    let mut again = Vec::new();
    for _ in 0..3 {
        let (t, d) = take(&q).await;
        again.push(first_name(d));
        q.done(t).await.expect("done");
    }
    assert!(again[0].starts_with('b') && again[1].starts_with('c') && again[2].starts_with('d'), "{again:?}");
}

#[tokio::test]
async fn the_byte_bound_refuses_and_frees_room_as_batches_finish() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let one = record::encode(Signal::Traces, 0, &[&batch("x", 50).to_protobuf()[0]]).len() as u64;
    let (q, _) = open(opts(tmp.path(), Sizer::Bytes, one * 3));
    for _ in 0..3 {
        q.push(&batch("x", 50), false).await.expect("room for three");
    }
    assert_eq!(q.push(&batch("x", 50), false).await, Err(PushError::Full));
    assert_eq!(q.disk_bytes(), one * 3);
    // A blocked pusher waits for room instead of failing.
    let blocked = {
        let q = q.clone();
        tokio::spawn(async move { q.push(&batch("y", 50), true).await })
    };
    let (t, _) = take(&q).await;
    q.done(t).await.expect("done");
    // The head segment is still partly pending, so its bytes are still on disk: the bound
    // counts files, not records, and only a deleted segment frees room.
    assert_eq!(q.disk_bytes(), one * 3);
    assert!(!blocked.is_finished());
    for _ in 0..2 {
        let (t, _) = take(&q).await;
        q.done(t).await.expect("done");
    }
    let r = tokio::time::timeout(Duration::from_secs(5), blocked).await.expect("pusher woke").expect("join");
    assert_eq!(r, Ok(()), "the finished segment was deleted, making room");
    assert_eq!(q.disk_bytes(), one);
}

#[tokio::test]
async fn finished_segments_are_deleted_and_the_disk_holds_only_what_is_pending() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 512 KiB bound: 64 KiB segments; 30 batches of ~4.5 KiB fill three.
    let (q, _) = open(opts(tmp.path(), Sizer::Bytes, 512 << 10));
    for i in 0..30 {
        q.push(&batch(&format!("s{i}"), 200), false).await.expect("push");
    }
    assert!(segments(tmp.path()).len() > 2, "{:?}", segments(tmp.path()));
    for _ in 0..30 {
        let (t, _) = take(&q).await;
        q.done(t).await.expect("done");
    }
    assert_eq!(segments(tmp.path()).len(), 1, "only the segment being written remains");
    assert!(q.disk_bytes() < 64 << 10);
}

#[tokio::test]
async fn on_rebound_an_empty_queue_deletes_its_last_segment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, _) = open(QueueOptions { compact_on_rebound: true, ..opts(tmp.path(), Sizer::Requests, 10) });
    q.push(&batch("a", 3), false).await.expect("push");
    let (t, _) = take(&q).await;
    q.done(t).await.expect("done");
    assert_eq!(q.disk_bytes(), 0);
    let files = segments(tmp.path());
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::metadata(tmp.path().join(&files[0])).expect("stat").len(), 0);
}

#[tokio::test]
async fn a_torn_tail_is_dropped_and_the_records_before_it_resume() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, _) = open(opts(tmp.path(), Sizer::Requests, 100));
    q.push(&batch("a", 1), false).await.expect("push");
    q.push(&batch("b", 1), false).await.expect("push");
    drop(q);
    // The crash: half of a third record reached the file.
    let seg = tmp.path().join(&segments(tmp.path())[0]);
    let third = record::encode(Signal::Traces, 1, &[&batch("c", 1).to_protobuf()[0]]);
    let mut f = OpenOptions::new().append(true).open(&seg).expect("open segment");
    f.write_all(&third[..third.len() / 2]).expect("write half");
    drop(f);
    let (q, resumed) = open(opts(tmp.path(), Sizer::Requests, 100));
    assert_eq!((resumed.records, resumed.damaged_bytes), (2, (third.len() / 2) as u64));
    let (_, a) = take(&q).await;
    let (_, b) = take(&q).await;
    assert!(first_name(a).starts_with('a') && first_name(b).starts_with('b'));
    // Appends after a restart go to a new segment, never after the damaged one.
    q.push(&batch("d", 1), false).await.expect("push after restart");
    let (_, d) = take(&q).await;
    assert!(first_name(d).starts_with('d'));
}

#[tokio::test]
async fn a_lost_ack_pointer_resumes_from_the_oldest_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, _) = open(opts(tmp.path(), Sizer::Requests, 100));
    q.push(&batch("a", 1), false).await.expect("push");
    q.push(&batch("b", 1), false).await.expect("push");
    let (t, _) = take(&q).await;
    q.done(t).await.expect("done");
    drop(q);
    std::fs::write(tmp.path().join("ack"), b"torn").expect("damage the pointer");
    let (_, resumed) = open(opts(tmp.path(), Sizer::Requests, 100));
    assert_eq!(resumed.records, 2, "a is sent again rather than b lost");
}

#[tokio::test]
async fn compaction_on_start_rewrites_the_head_segment_without_its_done_part() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, _) = open(opts(tmp.path(), Sizer::Requests, 100));
    for tag in ["a", "b", "c"] {
        q.push(&batch(tag, 10), false).await.expect("push");
    }
    let (t, _) = take(&q).await;
    q.done(t).await.expect("done");
    let before = q.disk_bytes();
    drop(q);
    let (q, resumed) = open(QueueOptions { compact_on_start: true, ..opts(tmp.path(), Sizer::Requests, 100) });
    assert_eq!(resumed.records, 2);
    assert!(q.disk_bytes() < before, "{} !< {before}", q.disk_bytes());
    let (_, b) = take(&q).await;
    assert!(first_name(b).starts_with('b'));
}

#[tokio::test]
async fn a_second_collector_cannot_open_a_queue_in_use() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_q, _) = open(opts(tmp.path(), Sizer::Requests, 10));
    let err = PersistentQueue::open(opts(tmp.path(), Sizer::Requests, 10)).expect_err("locked");
    assert!(err.contains("in use by another collector"), "{err}");
}

#[tokio::test]
async fn the_item_bound_counts_items() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (q, _) = open(opts(tmp.path(), Sizer::Items, 10));
    q.push(&batch("a", 6), false).await.expect("6 of 10");
    assert_eq!(q.push(&batch("b", 6), false).await, Err(PushError::Full));
    q.push(&batch("c", 4), false).await.expect("10 of 10");
}
