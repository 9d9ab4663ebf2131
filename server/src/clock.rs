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
