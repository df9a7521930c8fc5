//! Go's `time.Time` and `time.Duration` as templates see them: `toTime` and
//! `toDuration` return them, `humanizeTimestamp` prints one, and alert
//! templates call their methods (`(toTime $value).Format "15:04"`).
//!
//! Only UTC exists here: Prometheus converts every timestamp with `.UTC()`,
//! and the engine has no time-zone database (nor a clock).

use std::fmt::Write;

use crate::duration::{civil_from_days, days_from_civil};

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// An instant in UTC: seconds since the Unix epoch and nanoseconds within.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct GoTime {
    pub sec: i64,
    pub nsec: i64,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] =
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// `time.Month.String()`, with Go's `%!Month(13)` for out-of-range values.
pub(super) fn month_name(m: i64) -> String {
    match usize::try_from(m - 1).ok().and_then(|i| MONTHS.get(i)) {
        Some(name) => (*name).to_owned(),
        None => format!("%!Month({m})"),
    }
}

/// `time.Weekday.String()`.
pub(super) fn weekday_name(d: i64) -> String {
    match usize::try_from(d).ok().and_then(|i| WEEKDAYS.get(i)) {
        Some(name) => (*name).to_owned(),
        None => format!("%!Weekday({d})"),
    }
}

/// Broken-down fields of a [`GoTime`].
pub(super) struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub weekday: i64,
    pub yday: i64,
}

impl GoTime {
    /// `time.Unix(sec, nsec)`, normalising `nsec`.
    pub fn unix(sec: i64, nsec: i64) -> GoTime {
        GoTime {
            sec: sec.saturating_add(nsec.div_euclid(NANOS_PER_SEC)),
            nsec: nsec.rem_euclid(NANOS_PER_SEC),
        }
    }

    /// `UnixNano`, which wraps on overflow as Go's does.
    pub fn unix_nanos(self) -> i64 {
        self.sec.wrapping_mul(NANOS_PER_SEC).wrapping_add(self.nsec)
    }

    pub fn civil(self) -> Civil {
        let days = self.sec.div_euclid(86_400);
        let secs = self.sec.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            weekday: (days + 4).rem_euclid(7),
            yday: days - days_from_civil(year, 1, 1) + 1,
        }
    }

    /// `t.Add(d)`.
    pub fn add(self, d: i64) -> GoTime {
        let mut sec = self.sec.saturating_add(d / NANOS_PER_SEC);
        let mut nsec = self.nsec + d % NANOS_PER_SEC;
        if nsec >= NANOS_PER_SEC {
            sec = sec.saturating_add(1);
            nsec -= NANOS_PER_SEC;
        } else if nsec < 0 {
            sec = sec.saturating_sub(1);
            nsec += NANOS_PER_SEC;
        }
        GoTime { sec, nsec }
    }

    /// `t.Sub(u)`, saturating at the extremes of a Duration as Go's does.
    pub fn sub(self, u: GoTime) -> i64 {
        let d = i128::from(self.sec - u.sec) * i128::from(NANOS_PER_SEC)
            + i128::from(self.nsec - u.nsec);
        d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// `t.AddDate(years, months, days)`, normalising like `time.Date`;
    /// dates beyond what a `GoTime` holds saturate (Go's wrap around).
    pub fn add_date(self, years: i64, months: i64, days: i64) -> GoTime {
        let c = self.civil();
        let m0 = i128::from(c.month) - 1 + i128::from(months);
        let year = i128::from(c.year) + i128::from(years) + m0.div_euclid(12);
        let month = m0.rem_euclid(12) + 1;
        // Beyond ±2^40 years the seconds no longer fit; saturate early so the
        // day arithmetic below cannot overflow.
        let limit = 1i128 << 40;
        let year = year.clamp(-limit, limit) as i64;
        let first = i128::from(days_from_civil(year, month as i64, 1));
        let day_count = first + i128::from(c.day) - 1 + i128::from(days);
        let sec = day_count * 86_400 + i128::from(c.hour * 3600 + c.minute * 60 + c.second);
        GoTime {
            sec: sec.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
            nsec: self.nsec,
        }
    }

    /// Nanoseconds since Go's zero time (January 1, year 1), the base that
    /// `Truncate` and `Round` work from.
    fn since_zero(self) -> i128 {
        const UNIX_TO_INTERNAL: i128 = 62_135_596_800;
        (i128::from(self.sec) + UNIX_TO_INTERNAL) * i128::from(NANOS_PER_SEC)
            + i128::from(self.nsec)
    }

    fn add_i128(self, d: i128) -> GoTime {
        let ns = i128::from(self.sec) * i128::from(NANOS_PER_SEC) + i128::from(self.nsec) + d;
        let sec = ns.div_euclid(i128::from(NANOS_PER_SEC));
        GoTime {
            sec: sec.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
            nsec: ns.rem_euclid(i128::from(NANOS_PER_SEC)) as i64,
        }
    }

    /// `t.Truncate(d)`.
    pub fn truncate(self, d: i64) -> GoTime {
        if d <= 0 {
            return self;
        }
        let r = self.since_zero().rem_euclid(i128::from(d));
        self.add_i128(-r)
    }

    /// `t.Round(d)`: halfway values round up.
    pub fn round(self, d: i64) -> GoTime {
        if d <= 0 {
            return self;
        }
        let d = i128::from(d);
        let r = self.since_zero().rem_euclid(d);
        if r + r < d { self.add_i128(-r) } else { self.add_i128(d - r) }
    }

    /// `t.Format(layout)` for a UTC time.
    pub fn format(self, layout: &str) -> String {
        let c = self.civil();
        let mut out = String::new();
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, chunk, suffix) = next_chunk(rest);
            out.push_str(prefix);
            let Some(chunk) = chunk else {
                break;
            };
            self.push_chunk(&mut out, &c, chunk);
            rest = suffix;
        }
        out
    }

    fn push_chunk(self, out: &mut String, c: &Civil, chunk: Chunk) {
        let month = || month_name(c.month);
        let weekday = || weekday_name(c.weekday);
        match chunk {
            Chunk::Year => push_int(out, c.year.abs() % 100, 2),
            Chunk::LongYear => push_int(out, c.year, 4),
            Chunk::Month => out.push_str(&month()[..3]),
            Chunk::LongMonth => out.push_str(&month()),
            Chunk::NumMonth => push_int(out, c.month, 0),
            Chunk::ZeroMonth => push_int(out, c.month, 2),
            Chunk::WeekDay => out.push_str(&weekday()[..3]),
            Chunk::LongWeekDay => out.push_str(&weekday()),
            Chunk::Day => push_int(out, c.day, 0),
            Chunk::UnderDay => {
                if c.day < 10 {
                    out.push(' ');
                }
                push_int(out, c.day, 0);
            }
            Chunk::ZeroDay => push_int(out, c.day, 2),
            Chunk::UnderYearDay => {
                if c.yday < 100 {
                    out.push(' ');
                    if c.yday < 10 {
                        out.push(' ');
                    }
                }
                push_int(out, c.yday, 0);
            }
            Chunk::ZeroYearDay => push_int(out, c.yday, 3),
            Chunk::Hour => push_int(out, c.hour, 2),
            Chunk::Hour12 | Chunk::ZeroHour12 => {
                let hr = if c.hour % 12 == 0 { 12 } else { c.hour % 12 };
                push_int(out, hr, if chunk == Chunk::Hour12 { 0 } else { 2 });
            }
            Chunk::Minute => push_int(out, c.minute, 0),
            Chunk::ZeroMinute => push_int(out, c.minute, 2),
            Chunk::Second => push_int(out, c.second, 0),
            Chunk::ZeroSecond => push_int(out, c.second, 2),
            Chunk::Pm => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
            Chunk::LowerPm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
            // The offset is always zero in UTC: ISO 8601 forms print "Z".
            Chunk::Iso8601 => out.push('Z'),
            Chunk::NumTz(text) => out.push_str(text),
            Chunk::Tz => out.push_str("UTC"),
            Chunk::Frac { separator, digits, trim } => {
                let all = format!("{:09}", self.nsec);
                let mut n = digits.min(9);
                if trim {
                    while n > 0 && all.as_bytes()[n - 1] == b'0' {
                        n -= 1;
                    }
                    if n == 0 {
                        return;
                    }
                }
                out.push(separator);
                out.push_str(&all[..n]);
            }
        }
    }

    /// `t.String()`.
    pub fn string(self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }

    /// `t.GoString()`, which `%#v` prints.
    pub fn go_string(self) -> String {
        let c = self.civil();
        let month = match usize::try_from(c.month - 1).ok().and_then(|i| MONTHS.get(i)) {
            Some(m) => format!("time.{m}"),
            None => format!("time.Month({})", c.month),
        };
        format!(
            "time.Date({}, {month}, {}, {}, {}, {}, {}, time.UTC)",
            c.year, c.day, c.hour, c.minute, c.second, self.nsec
        )
    }

    /// The fields of Go's `time.Time` struct `{wall ext loc}`, which verbs
    /// other than the string ones print: no monotonic reading, seconds since
    /// year 1 in `ext`, and a nil location (UTC).
    pub fn struct_fields(self) -> (u64, i64) {
        (self.nsec as u64, self.sec.saturating_add(62_135_596_800))
    }
}

/// Go's time `appendInt`: a sign, then at least `width` digits.
fn push_int(out: &mut String, x: i64, width: usize) {
    if x < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:0width$}", x.unsigned_abs());
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Chunk {
    Year,
    LongYear,
    Month,
    LongMonth,
    NumMonth,
    ZeroMonth,
    WeekDay,
    LongWeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    Pm,
    LowerPm,
    Iso8601,
    NumTz(&'static str),
    Tz,
    Frac { separator: char, digits: usize, trim: bool },
}

/// Go's `nextStdChunk`: the text before the first layout element, the
/// element, and the text after it.
fn next_chunk(layout: &str) -> (&str, Option<Chunk>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|r| r.starts_with(s));
    let lower_after = |i: usize| b.get(i).is_some_and(u8::is_ascii_lowercase);
    for i in 0..b.len() {
        let found = |chunk: Chunk, len: usize| (&layout[..i], Some(chunk), &layout[i + len..]);
        match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    return found(Chunk::LongMonth, 7);
                }
                if !lower_after(i + 3) {
                    return found(Chunk::Month, 3);
                }
            }
            b'M' => {
                if at(i, "Mon") {
                    if at(i, "Monday") {
                        return found(Chunk::LongWeekDay, 6);
                    }
                    if !lower_after(i + 3) {
                        return found(Chunk::WeekDay, 3);
                    }
                }
                if at(i, "MST") {
                    return found(Chunk::Tz, 3);
                }
            }
            b'0' => {
                match b.get(i + 1) {
                    Some(b'1') => return found(Chunk::ZeroMonth, 2),
                    Some(b'2') => return found(Chunk::ZeroDay, 2),
                    Some(b'3') => return found(Chunk::ZeroHour12, 2),
                    Some(b'4') => return found(Chunk::ZeroMinute, 2),
                    Some(b'5') => return found(Chunk::ZeroSecond, 2),
                    Some(b'6') => return found(Chunk::Year, 2),
                    _ => {}
                }
                if at(i, "002") {
                    return found(Chunk::ZeroYearDay, 3);
                }
            }
            b'1' => {
                if b.get(i + 1) == Some(&b'5') {
                    return found(Chunk::Hour, 2);
                }
                return found(Chunk::NumMonth, 1);
            }
            b'2' => {
                if at(i, "2006") {
                    return found(Chunk::LongYear, 4);
                }
                return found(Chunk::Day, 1);
            }
            b'_' => {
                if b.get(i + 1) == Some(&b'2') {
                    // "_2006" is a literal '_' and a long year.
                    if at(i + 1, "2006") {
                        return (&layout[..i + 1], Some(Chunk::LongYear), &layout[i + 5..]);
                    }
                    return found(Chunk::UnderDay, 2);
                }
                if at(i, "__2") {
                    return found(Chunk::UnderYearDay, 3);
                }
            }
            b'3' => return found(Chunk::Hour12, 1),
            b'4' => return found(Chunk::Minute, 1),
            b'5' => return found(Chunk::Second, 1),
            b'P' if b.get(i + 1) == Some(&b'M') => return found(Chunk::Pm, 2),
            b'p' if b.get(i + 1) == Some(&b'm') => return found(Chunk::LowerPm, 2),
            b'-' => {
                for (pat, text) in [
                    ("-070000", "+000000"),
                    ("-07:00:00", "+00:00:00"),
                    ("-0700", "+0000"),
                    ("-07:00", "+00:00"),
                    ("-07", "+00"),
                ] {
                    if at(i, pat) {
                        return found(Chunk::NumTz(text), pat.len());
                    }
                }
            }
            b'Z' => {
                for pat in ["Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"] {
                    if at(i, pat) {
                        return found(Chunk::Iso8601, pat.len());
                    }
                }
            }
            c @ (b'.' | b',') => {
                if let Some(&ch @ (b'0' | b'9')) = b.get(i + 1) {
                    let mut j = i + 1;
                    while b.get(j) == Some(&ch) {
                        j += 1;
                    }
                    if !b.get(j).is_some_and(u8::is_ascii_digit) {
                        let chunk = Chunk::Frac {
                            separator: c as char,
                            digits: j - (i + 1),
                            trim: ch == b'9',
                        };
                        return found(chunk, j - i);
                    }
                }
            }
            _ => {}
        }
    }
    (layout, None, "")
}

/// `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(super) fn duration_string(d: i64) -> String {
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        if u == 0 {
            return "0s".to_owned();
        }
        let (prec, unit) = match u {
            u if u < 1_000 => (0, "ns"),
            u if u < 1_000_000 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        let frac = fraction(&mut u, prec);
        let _ = write!(out, "{u}{frac}{unit}");
    } else {
        let frac = fraction(&mut u, 9);
        let secs = u % 60;
        u /= 60;
        if u > 0 {
            let minutes = u % 60;
            u /= 60;
            if u > 0 {
                let _ = write!(out, "{u}h");
            }
            let _ = write!(out, "{minutes}m");
        }
        let _ = write!(out, "{secs}{frac}s");
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Splits `u` into `u / 10^prec` (left in `u`) and the fraction's digits
/// without trailing zeros (`.5`), or nothing when the fraction is zero.
fn fraction(u: &mut u64, prec: u32) -> String {
    let scale = 10u64.pow(prec);
    let frac = *u % scale;
    *u /= scale;
    if frac == 0 {
        return String::new();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!(".{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_string_matches_go() {
        let t = GoTime::unix(1_435_065_584, 128_000_000);
        assert_eq!(t.string(), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(GoTime::unix(-1, 0).string(), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(t.format("Mon Jan 2 15:04:05 2006"), "Tue Jun 23 13:19:44 2015");
        assert_eq!(t.format("2006-01-02T15:04:05.000Z07:00"), "2015-06-23T13:19:44.128Z");
        assert_eq!(t.format("3:04PM _2 __2 002 .999 ,000000"), "1:19PM 23 174 174 .128 ,128000");
        assert_eq!(t.format("January Monday -07:00 MST"), "June Tuesday +00:00 UTC");
        assert_eq!(
            t.go_string(),
            "time.Date(2015, time.June, 23, 13, 19, 44, 128000000, time.UTC)"
        );
    }

    #[test]
    fn time_arithmetic_matches_go() {
        let t = GoTime::unix(1_353_755_652, 0);
        assert_eq!(t.add(-30 * 60 * NANOS_PER_SEC).unix_nanos() / 1_000_000, 1_353_753_852_000);
        assert_eq!(t.add_date(0, 1, 0).format("2006-01-02"), "2012-12-24");
        assert_eq!(GoTime::unix(0, 0).add_date(0, -1, -1).format("2006-01-02"), "1969-11-30");
        // Absurd arguments saturate instead of overflowing.
        let far = GoTime::unix(0, 0).add_date(i64::MAX, i64::MAX, i64::MAX);
        assert!(far.sec > 0 && !far.string().is_empty());
        assert!(GoTime::unix(i64::MAX, 0).add_date(i64::MIN, 0, i64::MIN).sec < 0);
        assert_eq!(t.truncate(3600 * NANOS_PER_SEC).format("15:04:05"), "11:00:00");
        assert_eq!(t.round(3600 * NANOS_PER_SEC).format("15:04:05"), "11:00:00");
        assert_eq!(t.sub(GoTime::unix(0, 0)), 1_353_755_652 * NANOS_PER_SEC);
    }

    #[test]
    fn duration_string_matches_go() {
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(1_800 * NANOS_PER_SEC), "30m0s");
        assert_eq!(duration_string(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(duration_string(1_500_000), "1.5ms");
        assert_eq!(duration_string(1_500), "1.5\u{b5}s");
        assert_eq!(duration_string(15), "15ns");
        assert_eq!(duration_string(-90 * NANOS_PER_SEC), "-1m30s");
        assert_eq!(duration_string(i64::MIN), "-2562047h47m16.854775808s");
    }
}
