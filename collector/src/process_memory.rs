//! This process's resident memory, read from `/proc`: what the memory limiter limits and what own
//! telemetry reports. A leaf both depend on.

/// Resident set size of this process from `/proc/self/statm`.
pub fn current_rss_bytes() -> Option<u64> {
    parse_statm_rss(&std::fs::read_to_string("/proc/self/statm").ok()?, page_size())
}

/// The kernel's page size: `rustix::param::page_size` reads `AT_PAGESZ` from the auxiliary
/// vector, the value `sysconf(_SC_PAGESIZE)` returns, without `unsafe` here. 4 KiB is wrong on
/// arm64 kernels built with 16 KiB or 64 KiB pages.
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// RSS in bytes from the text of `/proc/<pid>/statm` (second field, in pages).
pub fn parse_statm_rss(statm: &str, page_size: u64) -> Option<u64> {
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(page_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_uses_the_given_page_size() {
        assert_eq!(parse_statm_rss("1000 250 30 1 0 200 0\n", 4096), Some(250 * 4096));
        assert_eq!(parse_statm_rss("1000 250 30 1 0 200 0\n", 65536), Some(250 * 65536));
        assert_eq!(parse_statm_rss("", 4096), None);
        let p = page_size();
        assert!(p.is_power_of_two() && p >= 4096, "page size {p}");
    }
}
