//! EventBridge's six-field cron, `Minutes Hours Day-of-month Month
//! Day-of-week Year`, evaluated in UTC.
//!
//! | field | values | wildcards |
//! | --- | --- | --- |
//! | minutes | 0-59 | `, - * /` |
//! | hours | 0-23 | `, - * /` |
//! | day-of-month | 1-31 | `, - * ? / L W` |
//! | month | 1-12, JAN-DEC | `, - * /` |
//! | day-of-week | 1-7 (1 is Sunday), SUN-SAT | `, - * ? L #` |
//! | year | 1970-2199 | `, - * /` |
//!
//! One of day-of-month and day-of-week must be `?` (and only one). `L` is
//! the month's last day (day-of-month) or, after a weekday, that weekday's
//! last occurrence (`6L`: the last Friday; `L` alone: Saturday); `15W` is
//! the weekday nearest the 15th, within the month; `LW` the last weekday;
//! `3#2` the second Tuesday (a month without a fifth one skips `#5`).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc};

use super::InvalidSchedule;

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIRST_YEAR: u32 = 1970;
const LAST_YEAR: u32 = 2199;

/// A set of allowed values of one field, as sorted values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Values(Vec<u32>);

impl Values {
    fn contains(&self, v: u32) -> bool {
        self.0.binary_search(&v).is_ok()
    }

    /// The smallest allowed value at or above `v`.
    fn at_or_after(&self, v: u32) -> Option<u32> {
        self.0.iter().copied().find(|&x| x >= v)
    }
}

/// The day-of-month field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MonthDay {
    Any,
    Days(Values),
    Last,
    LastWeekday,
    /// `nW`.
    NearestWeekday(u32),
}

/// The day-of-week field (1 is Sunday).
#[derive(Debug, Clone, PartialEq, Eq)]
enum WeekDay {
    Any,
    Days(Values),
    /// `d#n`: the nth `d` of the month.
    Nth(u32, u32),
    /// `dL`: the last `d` of the month.
    Last(u32),
}

/// A parsed cron expression; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Values,
    hours: Values,
    month_day: MonthDay,
    months: Values,
    week_day: WeekDay,
    years: Values,
}

impl Cron {
    /// The six fields inside `cron(…)`, separated by single spaces.
    pub fn parse(fields: &str) -> Result<Cron, InvalidSchedule> {
        let parts: Vec<&str> = fields.split(' ').collect();
        let [min, hour, dom, month, dow, year] = parts[..] else { return Err(InvalidSchedule) };
        let month_day = month_day(dom)?;
        let week_day = week_day(dow)?;
        // Exactly one of the two day fields is `?`.
        if matches!(month_day, MonthDay::Any) == matches!(week_day, WeekDay::Any) {
            return Err(InvalidSchedule);
        }
        Ok(Cron {
            minutes: values(min, 0, 59, &[])?,
            hours: values(hour, 0, 23, &[])?,
            month_day,
            months: values(month, 1, 12, &MONTHS)?,
            week_day,
            years: values(year, FIRST_YEAR, LAST_YEAR, &[])?,
        })
    }

    /// The first minute strictly after `after` that the expression names.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.naive_utc().with_second(0)?.with_nanosecond(0)? + TimeDelta::minutes(1);
        let mut day = start.date();
        let mut from_minute = start.hour() * 60 + start.minute();
        loop {
            let year = u32::try_from(day.year()).ok()?;
            if year > LAST_YEAR {
                return None;
            }
            if !self.years.contains(year) {
                let next = self.years.at_or_after(year + 1)?;
                day = NaiveDate::from_ymd_opt(i32::try_from(next).ok()?, 1, 1)?;
                from_minute = 0;
                continue;
            }
            if !self.months.contains(day.month()) {
                day = first_of_next_month(day)?;
                from_minute = 0;
                continue;
            }
            if self.day_matches(day) {
                if let Some(m) = self.minute_of_day(from_minute) {
                    let time = NaiveDateTime::new(day, chrono::NaiveTime::from_hms_opt(m / 60, m % 60, 0)?);
                    return Some(time.and_utc());
                }
            }
            day = day.succ_opt()?;
            from_minute = 0;
        }
    }

    /// The first allowed minute of a day (counted from midnight) at or after `from`.
    fn minute_of_day(&self, from: u32) -> Option<u32> {
        let mut hour = from / 60;
        let mut minute = from % 60;
        while let Some(h) = self.hours.at_or_after(hour) {
            if h != hour {
                minute = 0;
            }
            if let Some(m) = self.minutes.at_or_after(minute) {
                return Some(h * 60 + m);
            }
            hour = h + 1;
            minute = 0;
        }
        None
    }

    fn day_matches(&self, day: NaiveDate) -> bool {
        let last = last_day(day);
        let d = day.day();
        let week_day = day.weekday().num_days_from_sunday() + 1;
        let month_day = match &self.month_day {
            MonthDay::Any => true,
            MonthDay::Days(v) => v.contains(d),
            MonthDay::Last => d == last,
            MonthDay::LastWeekday => d == nearest_weekday(day, last),
            MonthDay::NearestWeekday(n) => d == nearest_weekday(day, (*n).min(last)),
        };
        let week = match &self.week_day {
            WeekDay::Any => true,
            WeekDay::Days(v) => v.contains(week_day),
            WeekDay::Nth(w, n) => *w == week_day && (d - 1) / 7 + 1 == *n,
            WeekDay::Last(w) => *w == week_day && d + 7 > last,
        };
        month_day && week
    }
}

/// The last day of `day`'s month.
fn last_day(day: NaiveDate) -> u32 {
    first_of_next_month(day).and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

fn first_of_next_month(day: NaiveDate) -> Option<NaiveDate> {
    let (y, m) = if day.month() == 12 { (day.year() + 1, 1) } else { (day.year(), day.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1)
}

/// The weekday nearest `target` in `day`'s month, never leaving the month:
/// a Saturday moves to Friday (or, on the 1st, to Monday the 3rd), a
/// Sunday to Monday (or, on the last day, to Friday).
fn nearest_weekday(day: NaiveDate, target: u32) -> u32 {
    let last = last_day(day);
    let Some(date) = day.with_day(target) else { return 0 };
    match date.weekday() {
        chrono::Weekday::Sat if target == 1 => 3,
        chrono::Weekday::Sat => target - 1,
        chrono::Weekday::Sun if target == last => target - 2,
        chrono::Weekday::Sun => target + 1,
        _ => target,
    }
}

fn month_day(field: &str) -> Result<MonthDay, InvalidSchedule> {
    match field {
        "?" => Ok(MonthDay::Any),
        "L" => Ok(MonthDay::Last),
        "LW" => Ok(MonthDay::LastWeekday),
        _ => match field.strip_suffix('W') {
            Some(n) => {
                let n = number(n, &[])?;
                (1..=31).contains(&n).then_some(MonthDay::NearestWeekday(n)).ok_or(InvalidSchedule)
            }
            None => values(field, 1, 31, &[]).map(MonthDay::Days),
        },
    }
}

fn week_day(field: &str) -> Result<WeekDay, InvalidSchedule> {
    if field == "?" {
        return Ok(WeekDay::Any);
    }
    if field == "L" {
        return Ok(WeekDay::Last(7));
    }
    let day = |s: &str| number(s, &DAYS).ok().filter(|d| (1..=7).contains(d)).ok_or(InvalidSchedule);
    if let Some((d, n)) = field.split_once('#') {
        let n = number(n, &[])?;
        return if (1..=5).contains(&n) { Ok(WeekDay::Nth(day(d)?, n)) } else { Err(InvalidSchedule) };
    }
    if let Some(d) = field.strip_suffix('L') {
        return Ok(WeekDay::Last(day(d)?));
    }
    values(field, 1, 7, &DAYS).map(WeekDay::Days)
}

/// A list of `*`, `V`, `A-B`, each optionally `/STEP`, within `min..=max`;
/// `names[i]` spells the value `min + i`.
fn values(field: &str, min: u32, max: u32, names: &[&str]) -> Result<Values, InvalidSchedule> {
    let mut out = Vec::new();
    for term in field.split(',') {
        let (range, step) = match term.split_once('/') {
            Some((r, s)) => (r, number(s, &[]).ok().filter(|s| *s > 0).ok_or(InvalidSchedule)?),
            None => (term, 1),
        };
        let (from, to) = match range {
            "*" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (number(a, names)?, number(b, names)?),
                // `5/10` runs from 5 to the field's end.
                None if term.contains('/') => (number(range, names)?, max),
                None => {
                    let v = number(range, names)?;
                    (v, v)
                }
            },
        };
        if from < min || to > max || from > to {
            return Err(InvalidSchedule);
        }
        out.extend((from..=to).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Ok(Values(out))
}

/// A decimal number, or one of `names` (case-insensitive) standing for 1, 2, ….
fn number(s: &str, names: &[&str]) -> Result<u32, InvalidSchedule> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + 1);
    }
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidSchedule);
    }
    s.parse().map_err(|_| InvalidSchedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// `(expression, after, expected next firing)`.
    const TABLE: &[(&str, &str, Option<&str>)] = &[
        // The user guide's examples.
        ("0 10 * * ? *", "2024-05-01T09:00:00Z", Some("2024-05-01T10:00:00Z")),
        ("0 10 * * ? *", "2024-05-01T10:00:00Z", Some("2024-05-02T10:00:00Z")),
        ("15 12 * * ? *", "2024-05-01T12:15:30Z", Some("2024-05-02T12:15:00Z")),
        ("0 18 ? * MON-FRI *", "2024-05-03T18:00:00Z", Some("2024-05-06T18:00:00Z")),
        ("0 8 1 * ? *", "2024-05-01T08:00:00Z", Some("2024-06-01T08:00:00Z")),
        ("0/15 * * * ? *", "2024-05-01T10:44:59Z", Some("2024-05-01T10:45:00Z")),
        ("0/15 * * * ? *", "2024-05-01T10:45:00Z", Some("2024-05-01T11:00:00Z")),
        ("0/10 * ? * MON-FRI *", "2024-05-04T00:00:00Z", Some("2024-05-06T00:00:00Z")),
        ("0/5 8-17 ? * MON-FRI *", "2024-05-06T17:55:00Z", Some("2024-05-07T08:00:00Z")),
        ("0 9 ? * 2#1 *", "2024-05-01T00:00:00Z", Some("2024-05-06T09:00:00Z")),
        ("5,35 14 * * ? *", "2024-05-01T14:05:00Z", Some("2024-05-01T14:35:00Z")),
        ("* * * * ? *", "2024-05-01T14:05:59.999Z", Some("2024-05-01T14:06:00Z")),
        ("0 0 ? * SUN *", "2024-05-01T00:00:00Z", Some("2024-05-05T00:00:00Z")),
        ("0 0 ? * 1,7 *", "2024-05-01T00:00:00Z", Some("2024-05-04T00:00:00Z")),
        // Month ends and leap years.
        ("0 0 31 * ? *", "2024-04-01T00:00:00Z", Some("2024-05-31T00:00:00Z")),
        ("0 0 30 FEB ? *", "2024-01-01T00:00:00Z", None),
        ("0 12 29 2 ? *", "2024-03-01T00:00:00Z", Some("2028-02-29T12:00:00Z")),
        ("0 12 29 2 ? 2100-2103", "2024-03-01T00:00:00Z", None),
        ("0 0 L * ? *", "2024-02-01T00:00:00Z", Some("2024-02-29T00:00:00Z")),
        ("0 0 L * ? *", "2023-02-01T00:00:00Z", Some("2023-02-28T00:00:00Z")),
        ("0 0 L * ? *", "2024-04-30T00:00:00Z", Some("2024-05-31T00:00:00Z")),
        ("59 23 L 12 ? *", "2024-12-31T23:59:00Z", Some("2025-12-31T23:59:00Z")),
        // L in day-of-week: a weekday's last occurrence; alone, Saturday.
        ("0 0 ? * 6L *", "2024-05-01T00:00:00Z", Some("2024-05-31T00:00:00Z")),
        ("0 0 ? * FRIL *", "2024-06-01T00:00:00Z", Some("2024-06-28T00:00:00Z")),
        ("0 0 ? * L *", "2024-05-01T00:00:00Z", Some("2024-05-25T00:00:00Z")),
        // W: never across the month's borders.
        ("0 0 1W * ? *", "2024-05-31T00:00:00Z", Some("2024-06-03T00:00:00Z")), // 1 June is a Saturday
        ("0 0 15W * ? *", "2024-06-01T00:00:00Z", Some("2024-06-14T00:00:00Z")), // 15 June is a Saturday
        ("0 0 16W * ? *", "2024-06-01T00:00:00Z", Some("2024-06-17T00:00:00Z")), // 16 June is a Sunday
        ("0 0 30W * ? *", "2024-06-01T00:00:00Z", Some("2024-06-28T00:00:00Z")), // 30 June: last day, a Sunday
        ("0 0 31W * ? *", "2024-06-01T00:00:00Z", Some("2024-06-28T00:00:00Z")), // June has no 31st: its last day
        ("0 0 31W 2 ? *", "2024-01-01T00:00:00Z", Some("2024-02-29T00:00:00Z")),
        ("0 0 LW * ? *", "2024-03-01T00:00:00Z", Some("2024-03-29T00:00:00Z")), // 31 March is a Sunday
        ("0 0 LW * ? *", "2024-08-01T00:00:00Z", Some("2024-08-30T00:00:00Z")), // 31 August is a Saturday
        ("0 0 LW * ? *", "2024-07-01T00:00:00Z", Some("2024-07-31T00:00:00Z")),
        // #: a fifth occurrence that a month lacks is skipped.
        ("0 0 ? * 6#5 *", "2024-01-01T00:00:00Z", Some("2024-03-29T00:00:00Z")),
        ("0 0 ? * 2#5 *", "2024-04-01T00:00:00Z", Some("2024-04-29T00:00:00Z")),
        ("0 0 ? * 4#5 2024", "2024-10-31T00:00:00Z", None),
        ("0 0 ? * MON#1 *", "2024-12-02T00:00:00Z", Some("2025-01-06T00:00:00Z")),
        // Years, names, steps.
        ("0 0 1 1 ? 2030", "2024-01-01T00:00:00Z", Some("2030-01-01T00:00:00Z")),
        ("0 0 1 1 ? 2020-2025", "2025-01-01T00:00:00Z", None),
        ("0 0 1 1 ? 2024/2", "2024-01-01T00:00:00Z", Some("2026-01-01T00:00:00Z")),
        ("0 0 1 JAN-MAR/2 ? *", "2024-01-01T00:00:00Z", Some("2024-03-01T00:00:00Z")),
        ("0 0 1 jan,jul ? *", "2024-02-01T00:00:00Z", Some("2024-07-01T00:00:00Z")),
        ("30 23 * * ? 2199", "2199-12-31T23:30:00Z", None),
        ("0 0-6/3 * * ? *", "2024-05-01T03:00:00Z", Some("2024-05-01T06:00:00Z")),
        ("0 0-6/3 * * ? *", "2024-05-01T06:00:00Z", Some("2024-05-02T00:00:00Z")),
    ];

    #[test]
    fn next_firing_times_are_eventbridges() {
        for (expr, after, expected) in TABLE {
            let cron = Cron::parse(expr).unwrap_or_else(|_| panic!("{expr} parses"));
            assert_eq!(cron.next_after(at(after)), expected.map(at), "cron({expr}) after {after}");
        }
    }

    #[test]
    fn malformed_expressions_are_refused() {
        for bad in [
            "0 10 * * * *",   // both day fields given
            "0 10 ? * ? *",   // neither
            "0 10 * *",       // too few fields
            "0 10 * * ? * *", // too many
            "60 10 * * ? *",
            "0 24 * * ? *",
            "0 0 0 * ? *",
            "0 0 32 * ? *",
            "0 0 * 13 ? *",
            "0 0 ? * 8 *",
            "0 0 ? * 0 *",
            "0 0 1 * ? 1969",
            "0 0 1 * ? 2200",
            "0 0 ? * 2#6 *",
            "0 0 ? * 2#0 *",
            "0 0 32W * ? *",
            "0 0 5-1 * ? *",
            "*/0 * * * ? *",
            "0 0 1 FOO ? *",
            "0  0 1 * ? *",
            "a b c d e f",
        ] {
            assert_eq!(Cron::parse(bad), Err(InvalidSchedule), "{bad}");
        }
    }
}
