//! Durations as Prometheus writes them in rule files, configs and test files
//! (`5m`, `1h30m`, `2d`, `0`), and the two ways Go prints a duration.

/// Prometheus's `model.ParseDuration`, in milliseconds: `0`, or unit groups
/// `y w d h m s ms` in that order, each at most once (`1h30m`, `90s`, `2w`).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000_000_000),
        ("w", 7 * 24 * 3_600_000_000_000),
        ("d", 24 * 3_600_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", crate::gofmt::quote(s));
    let mut rest = s;
    let mut nanos: u64 = 0;
    let mut last_unit = 0usize;
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
        let pos = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(invalid)? + 1;
        if pos <= last_unit {
            return Err(invalid());
        }
        last_unit = pos;
        let mult = UNITS[pos - 1].1;
        nanos = v
            .checked_mul(mult)
            .and_then(|x| nanos.checked_add(x))
            .filter(|&x| x <= i64::MAX as u64)
            .ok_or("duration out of range")?;
    }
    Ok((nanos / 1_000_000) as i64)
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

#[cfg(test)]
mod tests {
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
