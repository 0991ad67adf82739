//! The scheduler's clock: the wall clock, or for tests the wall clock run
//! `scale` times faster from a fixed origin (`--schedule-clock-scale`).
//!
//! Scaled time is `origin + (now - origin) * scale`, its origin the first
//! start of the data directory with that scale (kept in the rules
//! database), so it runs on across restarts and counts downtime as
//! schedules would: a test sees a minute pass in a second, a controller
//! stopped for "three minutes" miss three slots. With scale 1 it is the
//! wall clock, and every other line of the scheduler is the same.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    scale: u32,
    origin_ms: i64,
}

impl Clock {
    /// The wall clock.
    pub fn wall() -> Clock {
        Clock { scale: 1, origin_ms: 0 }
    }

    /// The wall clock `scale` times faster since `origin_ms` (Unix ms).
    pub fn scaled(scale: u32, origin_ms: i64) -> Clock {
        Clock { scale: scale.max(1), origin_ms }
    }

    /// Now, on this clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.at(Utc::now())
    }

    /// What this clock reads when the wall clock reads `wall`.
    fn at(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        if self.scale == 1 {
            return wall;
        }
        let since = wall.timestamp_millis() - self.origin_ms;
        DateTime::from_timestamp_millis(self.origin_ms + since * i64::from(self.scale)).unwrap_or(wall)
    }

    /// How long to wait on the wall clock until this clock reads `then`.
    pub fn until(&self, then: DateTime<Utc>) -> Duration {
        let ahead = (then - self.now()).max(TimeDelta::zero());
        let ahead_ms = u64::try_from(ahead.num_milliseconds()).unwrap_or(0);
        Duration::from_millis(ahead_ms.div_ceil(u64::from(self.scale)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_time_runs_faster_from_its_origin() {
        let origin = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let clock = Clock::scaled(60, origin.timestamp_millis());
        assert_eq!(clock.at(origin + TimeDelta::seconds(2)), origin + TimeDelta::minutes(2));
        let wall = Clock::wall();
        let t = Utc::now();
        assert_eq!(wall.at(t), t);
        let soon = clock.now() + TimeDelta::minutes(1);
        assert!(clock.until(soon) <= Duration::from_millis(1000));
    }
}
