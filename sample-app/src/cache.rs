//! A small in-process read cache with a TTL and two hard bounds: entries and bytes.
//!
//! The byte bound matters more: a list page holds up to 100 reviews of up to ~5.5 KB of text
//! each, so 10 000 entries alone allowed ~5 GB per cache. Each value reports its approximate
//! heap size ([`Weight`]); an insert that would exceed the budget after purging expired entries
//! is not cached (the bound wins, as for entries).
//!
//! Time is passed in (`now`) so expiry is testable without sleeping. A
//! generation counter stops a slow read that started before a write from
//! re-inserting stale data after the write invalidated the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Default byte budget of one cache.
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

/// Approximate heap bytes a cached value holds (string contents plus fixed overhead).
pub trait Weight {
    /// The approximate size in bytes.
    fn weight(&self) -> usize;
}

impl Weight for crate::model::Review {
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.entity_type.len()
            + self.entity_id.len()
            + self.title.as_ref().map_or(0, String::len)
            + self.comment.as_ref().map_or(0, String::len)
            + self.author.len()
            + self.created_at.len()
            + self.updated_at.len()
    }
}

impl Weight for crate::model::Page {
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>() + self.items.iter().map(Weight::weight).sum::<usize>()
    }
}

/// Entries and the bytes they weigh, under one lock.
#[derive(Debug)]
struct Store<V> {
    map: HashMap<String, (Instant, V, usize)>,
    bytes: usize,
}

/// Bounded TTL cache keyed by string.
#[derive(Debug)]
pub struct TtlCache<V> {
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
    generation: AtomicU64,
    entries: Mutex<Store<V>>,
}

impl<V: Clone + Weight> TtlCache<V> {
    /// A cache whose entries live `ttl`, with [`DEFAULT_MAX_BYTES`]; `ttl == 0` or
    /// `max_entries == 0` disables caching entirely.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            max_bytes: DEFAULT_MAX_BYTES,
            generation: AtomicU64::new(0),
            entries: Mutex::new(Store { map: HashMap::new(), bytes: 0 }),
        }
    }

    /// Replaces the byte budget (`0` disables caching).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Bytes currently accounted to stored entries (keys included).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Whether the cache stores anything at all.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_entries > 0 && self.max_bytes > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store<V>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every mutation is a single insert/remove), so poison is ignored.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value for `key` if present and not older than the TTL.
    pub fn get(&self, key: &str, now: Instant) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let mut store = self.lock();
        match store.map.get(key) {
            Some((at, v, _)) if now.saturating_duration_since(*at) < self.ttl => Some(v.clone()),
            Some(_) => {
                store.remove(key);
                None
            }
            None => None,
        }
    }

    /// Current generation; take it before reading the source of truth.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores `value` unless the cache was invalidated since `generation`
    /// was taken. When full, expired entries are purged first; if it is
    /// still full the value is simply not cached (the bound wins).
    pub fn insert(&self, key: String, value: V, generation: u64, now: Instant) {
        if !self.enabled() {
            return;
        }
        let weight = key.len() + value.weight();
        if weight > self.max_bytes {
            return;
        }
        let mut store = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        store.remove(&key);
        if store.map.len() >= self.max_entries || store.bytes + weight > self.max_bytes {
            let ttl = self.ttl;
            store.map.retain(|_, (at, _, _)| now.saturating_duration_since(*at) < ttl);
            store.bytes = store.map.values().map(|(_, _, w)| *w).sum();
            if store.map.len() >= self.max_entries || store.bytes + weight > self.max_bytes {
                return;
            }
        }
        store.bytes += weight;
        store.map.insert(key, (now, value, weight));
    }

    /// Drops one entry and bumps the generation.
    pub fn invalidate(&self, key: &str) {
        let mut store = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        store.remove(key);
    }

    /// Drops everything and bumps the generation.
    pub fn clear(&self) {
        let mut store = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        store.map.clear();
        store.bytes = 0;
    }

    /// Number of stored entries (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V> Store<V> {
    fn remove(&mut self, key: &str) {
        if let Some((_, _, w)) = self.map.remove(key) {
            self.bytes -= w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Weight for usize {
        fn weight(&self) -> usize {
            8
        }
    }

    impl Weight for String {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    #[test]
    fn bytes_are_bounded_and_accounted() {
        let c = TtlCache::new(Duration::from_secs(5), 1000).with_max_bytes(100);
        let t0 = Instant::now();
        c.insert("a".into(), "x".repeat(60), c.generation(), t0);
        assert_eq!(c.bytes(), 61);
        c.insert("b".into(), "y".repeat(60), c.generation(), t0);
        assert_eq!(c.get("b", t0), None, "over the byte budget: not cached");
        c.insert("c".into(), "z".repeat(200), c.generation(), t0);
        assert_eq!(c.get("c", t0), None, "larger than the whole budget");
        c.insert("a".into(), "x".repeat(10), c.generation(), t0);
        assert_eq!(c.bytes(), 11, "replacing an entry releases its old weight");
        c.invalidate("a");
        assert_eq!(c.bytes(), 0);
        // Expired entries make room.
        c.insert("d".into(), "x".repeat(90), c.generation(), t0);
        let later = t0 + Duration::from_secs(6);
        c.insert("e".into(), "y".repeat(90), c.generation(), later);
        assert_eq!(c.get("e", later).map(|s| s.len()), Some(90));
        assert_eq!(c.bytes(), 91);
    }

    #[test]
    fn a_full_page_weighs_its_text() {
        let r = crate::model::Review {
            id: 1,
            entity_type: "book".into(),
            entity_id: "b".into(),
            rating: 5,
            title: None,
            comment: Some("c".repeat(5000)),
            author: "a".into(),
            created_at: String::new(),
            updated_at: String::new(),
        };
        let page = crate::model::Page { items: vec![r; 100], total: 100, limit: 100, offset: 0 };
        assert!(page.weight() > 500_000, "{}", page.weight());
    }

    #[test]
    fn hit_until_ttl_then_miss() {
        let c = TtlCache::new(Duration::from_secs(5), 10);
        let t0 = Instant::now();
        c.insert("a".into(), 1, c.generation(), t0);
        assert_eq!(c.get("a", t0 + Duration::from_secs(4)), Some(1));
        assert_eq!(c.get("a", t0 + Duration::from_secs(5)), None);
        assert!(c.is_empty(), "expired entry is removed on access");
    }

    #[test]
    fn size_is_bounded() {
        let c = TtlCache::new(Duration::from_secs(5), 2);
        let t0 = Instant::now();
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            c.insert((*k).into(), i, c.generation(), t0);
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("c", t0), None);
        // Once old entries expire there is room again.
        let later = t0 + Duration::from_secs(6);
        c.insert("c".into(), 2, c.generation(), later);
        assert_eq!(c.get("c", later), Some(2));
    }

    #[test]
    fn stale_insert_after_invalidation_is_ignored() {
        let c = TtlCache::new(Duration::from_secs(5), 10);
        let t0 = Instant::now();
        let gen_before_read = c.generation();
        c.invalidate("a");
        c.insert("a".into(), 1, gen_before_read, t0);
        assert_eq!(c.get("a", t0), None);
    }

    #[test]
    fn zero_ttl_disables() {
        let c = TtlCache::new(Duration::ZERO, 10);
        let t0 = Instant::now();
        c.insert("a".into(), 1, c.generation(), t0);
        assert_eq!(c.get("a", t0), None);
    }
}
