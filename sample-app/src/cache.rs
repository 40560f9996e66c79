//! A small in-process read cache with a TTL and a hard size bound.
//!
//! Time is passed in (`now`) so expiry is testable without sleeping. A
//! generation counter stops a slow read that started before a write from
//! re-inserting stale data after the write invalidated the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bounded TTL cache keyed by string.
#[derive(Debug)]
pub struct TtlCache<V> {
    ttl: Duration,
    max_entries: usize,
    generation: AtomicU64,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    /// A cache whose entries live `ttl`; `ttl == 0` or `max_entries == 0`
    /// disables caching entirely.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self { ttl, max_entries, generation: AtomicU64::new(0), entries: Mutex::new(HashMap::new()) }
    }

    /// Whether the cache stores anything at all.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_entries > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every mutation is a single insert/remove), so poison is ignored.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value for `key` if present and not older than the TTL.
    pub fn get(&self, key: &str, now: Instant) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let mut map = self.lock();
        match map.get(key) {
            Some((at, v)) if now.saturating_duration_since(*at) < self.ttl => Some(v.clone()),
            Some(_) => {
                map.remove(key);
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
        let mut map = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= self.max_entries && !map.contains_key(&key) {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            if map.len() >= self.max_entries {
                return;
            }
        }
        map.insert(key, (now, value));
    }

    /// Drops one entry and bumps the generation.
    pub fn invalidate(&self, key: &str) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.remove(key);
    }

    /// Drops everything and bumps the generation.
    pub fn clear(&self) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }

    /// Number of stored entries (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
