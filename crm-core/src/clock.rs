//! Time and id sources, injected so tests move a fake clock instead of sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Duration, DurationRound, Utc};
use uuid::{ContextV7, Timestamp, Uuid};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, truncated to whole milliseconds (the precision every backend keeps).
    fn now(&self) -> DateTime<Utc>;
}

/// Truncates to whole milliseconds.
pub fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::milliseconds(1)).unwrap_or(t)
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_ms(Utc::now())
    }
}

/// A clock that stands still until told to move.
#[derive(Debug)]
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    /// A clock at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(truncate_ms(start)))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }

    /// Sets the time.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = truncate_ms(to);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A source of new record ids.
pub trait IdSource: Send + Sync + 'static {
    /// A new id for a record created at `at`.
    fn new_id(&self, at: DateTime<Utc>) -> Uuid;
}

/// UUIDv7 ids stamped with the injected clock's time; a shared counter keeps ids made
/// within one millisecond in order.
#[derive(Debug, Default)]
pub struct V7Ids {
    context: Mutex<ContextV7>,
}

impl V7Ids {
    /// A new source.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdSource for V7Ids {
    fn new_id(&self, at: DateTime<Utc>) -> Uuid {
        let secs = u64::try_from(at.timestamp()).unwrap_or(0);
        let context = self.context.lock().unwrap_or_else(|p| p.into_inner());
        Uuid::new_v7(Timestamp::from_unix(&*context, secs, at.timestamp_subsec_nanos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_ids_are_ordered_within_one_millisecond() {
        let ids = V7Ids::new();
        let t = SystemClock.now();
        let made: Vec<Uuid> = (0..1000).map(|_| ids.new_id(t)).collect();
        let mut sorted = made.clone();
        sorted.sort();
        assert_eq!(made, sorted);
        assert_eq!(made[0].get_version_num(), 7);
    }

    #[test]
    fn fake_clock_moves_only_when_told() {
        let c = FakeClock::new(SystemClock.now());
        let a = c.now();
        c.advance(Duration::seconds(5));
        assert_eq!(c.now() - a, Duration::seconds(5));
    }
}
