//! Schedule expressions as EventBridge takes them, `rate(…)` and the
//! six-field `cron(…)` ([`cron`]), and the times they name, in UTC.
//!
//! A rate counts from an anchor (the rule's creation, or the last change
//! of its expression): `rate(5 minutes)` fires 5, 10, 15… minutes after it.
//! A cron names wall-clock minutes. Either way a schedule answers one
//! question, [`Schedule::next_after`]: the first slot strictly after a time.

pub mod cron;

use chrono::{DateTime, TimeDelta, Utc};

pub use cron::Cron;

/// EventBridge's one answer to any malformed expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Parameter ScheduleExpression is not valid.")]
pub struct InvalidSchedule;

/// A parsed `ScheduleExpression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every `period`, counted from the rule's anchor.
    Rate(TimeDelta),
    Cron(Box<Cron>),
}

impl Schedule {
    /// `rate(N unit)` or `cron(…)`, as EventBridge accepts them.
    pub fn parse(expression: &str) -> Result<Schedule, InvalidSchedule> {
        let inner = |prefix: &str| expression.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
        if let Some(rate) = inner("rate(") {
            return parse_rate(rate).map(Schedule::Rate);
        }
        if let Some(fields) = inner("cron(") {
            return Cron::parse(fields).map(|c| Schedule::Cron(Box::new(c)));
        }
        Err(InvalidSchedule)
    }

    /// The first slot strictly after `after`; `anchor` is where a rate
    /// counts from. `None` when the schedule names no later time (a cron
    /// whose years have ended).
    pub fn next_after(&self, anchor: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Rate(period) => {
                let period_ms = period.num_milliseconds();
                let elapsed = (after - anchor).num_milliseconds();
                let k = if elapsed < 0 { 1 } else { elapsed / period_ms + 1 };
                Some(anchor + TimeDelta::milliseconds(k * period_ms))
            }
            Schedule::Cron(cron) => cron.next_after(after),
        }
    }

    /// The last slot at or before `now` that comes after `after`, if any:
    /// what a scheduler that was away fires, once, for everything it missed.
    pub fn latest_due(&self, anchor: DateTime<Utc>, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first = self.next_after(anchor, after).filter(|t| *t <= now)?;
        match self {
            Schedule::Rate(period) => {
                let period_ms = period.num_milliseconds();
                let k = (now - anchor).num_milliseconds() / period_ms;
                Some(anchor + TimeDelta::milliseconds(k * period_ms))
            }
            Schedule::Cron(cron) => {
                // Walk forward from the first missed slot, or from a year
                // back when the gap is longer (only the last one fires).
                let year_ago = now - TimeDelta::days(366);
                let mut slot = if first < year_ago { cron.next_after(year_ago).unwrap_or(first) } else { first };
                while let Some(next) = cron.next_after(slot).filter(|t| *t <= now) {
                    slot = next;
                }
                Some(slot)
            }
        }
    }
}

/// `N minute|minutes|hour|hours|day|days`: N a positive integer, the unit
/// singular exactly when N is 1.
fn parse_rate(rate: &str) -> Result<TimeDelta, InvalidSchedule> {
    let mut words = rate.split(' ');
    let (Some(n), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err(InvalidSchedule);
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidSchedule);
    }
    let n: i64 = n.parse().map_err(|_| InvalidSchedule)?;
    let (singular, unit_minutes) = match unit {
        "minute" => (true, 1),
        "minutes" => (false, 1),
        "hour" => (true, 60),
        "hours" => (false, 60),
        "day" => (true, 1440),
        "days" => (false, 1440),
        _ => return Err(InvalidSchedule),
    };
    if n == 0 || singular != (n == 1) {
        return Err(InvalidSchedule);
    }
    n.checked_mul(unit_minutes).and_then(TimeDelta::try_minutes).ok_or(InvalidSchedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn rates_are_singular_exactly_for_one() {
        for ok in ["rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)", "rate(7 days)"]
        {
            assert!(Schedule::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "rate(1 minutes)",
            "rate(2 minute)",
            "rate(0 minutes)",
            "rate(-1 minutes)",
            "rate(1.5 hours)",
            "rate(5  minutes)",
            "rate(5 seconds)",
            "rate(5 weeks)",
            "rate(minutes)",
            "rate()",
            "rate 5 minutes",
            "every(5 minutes)",
            "",
        ] {
            assert_eq!(Schedule::parse(bad), Err(InvalidSchedule), "{bad}");
        }
    }

    #[test]
    fn rates_count_from_their_anchor() {
        let s = Schedule::parse("rate(5 minutes)").unwrap();
        let anchor = at("2024-03-01T10:02:30Z");
        assert_eq!(s.next_after(anchor, anchor), Some(at("2024-03-01T10:07:30Z")));
        assert_eq!(s.next_after(anchor, at("2024-03-01T10:07:30Z")), Some(at("2024-03-01T10:12:30Z")));
        assert_eq!(s.next_after(anchor, at("2024-03-01T10:00:00Z")), Some(at("2024-03-01T10:07:30Z")));
        let day = Schedule::parse("rate(1 day)").unwrap();
        assert_eq!(day.next_after(anchor, at("2024-03-05T00:00:00Z")), Some(at("2024-03-05T10:02:30Z")));
    }

    #[test]
    fn missed_slots_collapse_into_the_latest() {
        let s = Schedule::parse("rate(1 minute)").unwrap();
        let anchor = at("2024-03-01T10:00:00Z");
        let now = at("2024-03-01T10:10:30Z");
        assert_eq!(s.latest_due(anchor, at("2024-03-01T10:02:00Z"), now), Some(at("2024-03-01T10:10:00Z")));
        assert_eq!(s.latest_due(anchor, at("2024-03-01T10:10:00Z"), now), None, "nothing new is due");
        let daily = Schedule::parse("cron(0 12 * * ? *)").unwrap();
        let long_ago = at("2020-01-01T00:00:00Z");
        assert_eq!(daily.latest_due(anchor, long_ago, now), Some(at("2024-02-29T12:00:00Z")));
        assert_eq!(daily.latest_due(anchor, at("2024-02-29T12:00:00Z"), now), None);
    }
}
