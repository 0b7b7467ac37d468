//! The one source of "now" for every time decision, injectable so tests
//! can run a day in seconds.

/// The source of "now" for promotion logic.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
    /// Milliseconds, for webhook retry times.
    fn now_ms(&self) -> i64 {
        self.now() * 1000
    }
    /// Waits `secs` seconds of this clock's time.
    fn sleep(&self, secs: u64);
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        now()
    }
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
    fn sleep(&self, secs: u64) {
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
}

/// A clock that moves only when told to (tests, simulations).
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(start: i64) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicI64::new(start))
    }
    pub fn set(&self, t: i64) {
        self.0.store(t, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn sleep(&self, secs: u64) {
        self.advance(secs as i64);
    }
}

/// Wall time, for the system clock only: every decision asks `Ctx.clock`.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
