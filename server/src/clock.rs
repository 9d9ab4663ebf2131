//! Time, read through an injected clock so tests can move it.

use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;

    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A test clock: frozen at creation and moved with [`ManualClock::advance_ms`], or
/// following the system time plus any advances once [`ManualClock::follow_system_time`] is
/// called (for tests where a peer outside the process reads real time).
#[derive(Debug)]
pub struct ManualClock {
    frozen_at: AtomicI64,
    offset: AtomicI64,
    follow: std::sync::atomic::AtomicBool,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            frozen_at: AtomicI64::new(SystemClock.now_ms()),
            offset: AtomicI64::new(0),
            follow: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl ManualClock {
    pub fn advance_ms(&self, ms: i64) {
        self.offset.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves a frozen clock to `unix_ms` (for tests of time-of-day rules).
    pub fn set_ms(&self, unix_ms: i64) {
        self.frozen_at.store(unix_ms, Ordering::SeqCst);
        self.offset.store(0, Ordering::SeqCst);
    }

    pub fn follow_system_time(&self) {
        self.follow.store(true, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        let base = if self.follow.load(Ordering::SeqCst) {
            SystemClock.now_ms()
        } else {
            self.frozen_at.load(Ordering::SeqCst)
        };
        base + self.offset.load(Ordering::SeqCst)
    }
}

/// RFC 3339 UTC timestamp (`2026-11-22T10:00:00Z`) of a Unix time in seconds.
pub fn rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_346_026), "2026-11-22T11:13:46Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
