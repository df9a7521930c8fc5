//! Durations as Prometheus writes them in rule files, configs and test files
//! (`5m`, `1h30m`, `2d`, `0`), and the two ways Go prints a duration.

/// Prometheus's `model.ParseDuration`, in milliseconds: `0`, or unit groups
/// `y w d h m s ms` in that order, each at most once (`1h30m`, `90s`, `2w`).
///
/// Unknown units are reported as "not a valid duration string", the wording
/// of the regular-expression parser Prometheus's rule and config loading has
/// long used; templates get the newer wording from [`parse_duration_nanos`].
pub fn parse_duration(s: &str) -> Result<i64, String> {
    parse_nanos(s, false).map(|n| n / 1_000_000)
}

/// [`parse_duration`] in nanoseconds, as Go's `time.Duration` holds it, with
/// prometheus/common's current error for unknown units
/// (`unknown unit "x" in duration "1x"`).
pub fn parse_duration_nanos(s: &str) -> Result<i64, String> {
    parse_nanos(s, true)
}

fn parse_nanos(s: &str, name_unknown_unit: bool) -> Result<i64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", crate::gofmt::quote(s));
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let v: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(invalid());
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        const S: u64 = 1_000_000_000;
        let (pos, mult) = match unit {
            "ms" => (7, 1_000_000),
            "s" => (6, S),
            "m" => (5, 60 * S),
            "h" => (4, 3600 * S),
            "d" => (3, 24 * 3600 * S),
            "w" => (2, 7 * 24 * 3600 * S),
            "y" => (1, 365 * 24 * 3600 * S),
            _ if !name_unknown_unit => return Err(invalid()),
            _ => {
                return Err(format!(
                    "unknown unit {} in duration {}",
                    crate::gofmt::quote(unit),
                    crate::gofmt::quote(s)
                ));
            }
        };
        if pos <= last_unit {
            return Err(invalid());
        }
        last_unit = pos;
        total = v
            .checked_mul(mult)
            .and_then(|x| total.checked_add(x))
            .filter(|&x| x <= i64::MAX as u64)
            .ok_or("duration out of range")?;
    }
    Ok(total as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date; months outside
/// 1..=12 roll over into neighbouring years (Howard Hinnant's method).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = y + (m - 1).div_euclid(12);
    let m = (m - 1).rem_euclid(12) + 1;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Prometheus's `model.Duration.String()`: `0s`, `1m30s`, `2d`, `1w`, `1y`.
/// Years and weeks are used only when they divide exactly.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    if rest < 0 {
        out.push('-');
        rest = -rest;
    }
    const DAY: i64 = 24 * 3_600_000;
    for (unit, mult, exact) in [
        ("y", 365 * DAY, true),
        ("w", 7 * DAY, true),
        ("d", DAY, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if exact && rest % mult != 0 {
            continue;
        }
        let v = rest / mult;
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            rest -= v * mult;
        }
    }
    out
}

/// Go's `time.Duration.String()` for a millisecond duration: `0s`, `1.5s`,
/// `5m0s`, `1h0m0s`, `250ms`.
pub fn format_go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let abs = ms.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if abs < 1000 {
        out.push_str(&format!("{abs}ms"));
        return out;
    }
    let h = abs / 3_600_000;
    let m = abs / 60_000 % 60;
    let s_ms = abs % 60_000;
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    let secs = s_ms / 1000;
    let frac = s_ms % 1000;
    if frac == 0 {
        out.push_str(&format!("{secs}s"));
    } else {
        let f = format!("{frac:03}");
        out.push_str(&format!("{secs}.{}s", f.trim_end_matches('0')));
    }
    out
}

/// `2006-01-02T15:04:05(.frac)?(Z|±hh:mm)` to ms since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    let (y, mo, d, h, mi, sec) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':'
        || b[16] != b':'
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{digits:0<3}");
        frac_ms = padded.get(..3)?.parse().ok()?;
    }
    let tz = s.get(i..)?;
    let offset_min = match tz {
        "Z" | "z" => 0,
        _ => {
            let tb = tz.as_bytes();
            if tb.len() != 6 || tb[3] != b':' || !matches!(tb[0], b'+' | b'-') {
                return None;
            }
            let oh: i64 = tz.get(1..3)?.parse().ok()?;
            let om: i64 = tz.get(4..6)?.parse().ok()?;
            let m = oh * 60 + om;
            if tb[0] == b'-' { -m } else { m }
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

/// Milliseconds since the epoch as RFC 3339 in UTC, with milliseconds only
/// when there are any: `2024-01-01T00:05:00Z`, `1970-01-01T00:00:01.5Z`.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out =
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60);
    if frac != 0 {
        out.push_str(format!(".{frac:03}").trim_end_matches('0'));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_round_trips() {
        for ms in [0, 1500, 1_704_067_200_000, -86_400_000, 951_782_400_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms), "{ms}");
        }
        assert_eq!(format_rfc3339(1_704_067_500_000), "2024-01-01T00:05:00Z");
        assert_eq!(format_rfc3339(1500), "1970-01-01T00:00:01.5Z");
    }

    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("1y2w"), Ok((365 + 14) * 86_400_000));
        assert_eq!(parse_duration("150ms"), Ok(150));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert_eq!(parse_duration("30m1h").unwrap_err(), "not a valid duration string: \"30m1h\"");
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("1000000y").unwrap_err().contains("out of range"));
    }

    #[test]
    fn formats_like_prometheus_and_go() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(86_400_000), "1d");
        assert_eq!(format_duration(14 * 86_400_000), "2w");
        assert_eq!(format_duration(15 * 86_400_000), "15d");
        assert_eq!(format_duration(1500), "1s500ms");
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(format_go_duration(300_000), "5m0s");
        assert_eq!(format_go_duration(3_600_000), "1h0m0s");
        assert_eq!(format_go_duration(1500), "1.5s");
        assert_eq!(format_go_duration(250), "250ms");
        assert_eq!(format_go_duration(86_400_000), "24h0m0s");
    }
}
