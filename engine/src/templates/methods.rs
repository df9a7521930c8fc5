//! Methods templates can call on the values Prometheus's functions return:
//! `time.Time` (from `toTime`), `time.Duration` (from `toDuration`),
//! `time.Month` and `time.Weekday` (`{{ (toTime $value).Format "15:04" }}`).
//!
//! `Local` answers in UTC: the engine has no time zone but UTC.

use super::exec::{Param, Signature};
use super::gotime::{GoTime, duration_string, month_name, weekday_name};
use super::value::Value;

/// A method bound to its receiver.
pub(super) struct Method {
    pub name: &'static str,
    pub signature: Signature,
    receiver: Receiver,
}

enum Receiver {
    Time(GoTime),
    Duration(i64),
    Month(i64),
    Weekday(i64),
}

/// A method's name, parameters, and Go's refusal when it cannot be called.
type MethodEntry = (&'static str, &'static [Param], Option<&'static str>);

const NONE: &[Param] = &[];
const DURATION: &[Param] = &[Param::Duration];
const TIME: &[Param] = &[Param::Time];

/// The method `name` of `receiver` (following a pointer), if it has one.
pub(super) fn lookup(receiver: &Value, name: &str) -> Option<Method> {
    let (receiver, nil) = receiver.indirect();
    if nil {
        return None;
    }
    let (recv, table): (Receiver, &[MethodEntry]) = match receiver {
        Value::Time(t) => (Receiver::Time(t), TIME_METHODS),
        Value::Duration(d) => (Receiver::Duration(d), DURATION_METHODS),
        Value::Month(m) => (Receiver::Month(m), STRING_METHOD),
        Value::Weekday(d) => (Receiver::Weekday(d), STRING_METHOD),
        _ => return None,
    };
    let &(name, params, bad) = table.iter().find(|(n, _, _)| *n == name)?;
    Some(Method {
        name,
        signature: Signature { params, variadic: None, bad_results: bad },
        receiver: recv,
    })
}

const STRING_METHOD: &[MethodEntry] = &[("String", NONE, None)];

const TIME_METHODS: &[MethodEntry] = &[
    ("Add", DURATION, None),
    ("AddDate", &[Param::Int, Param::Int, Param::Int], None),
    ("After", TIME, None),
    ("Before", TIME, None),
    ("Clock", NONE, Some("function Clock has 3 return values; should be 1 or 2")),
    ("Compare", TIME, None),
    ("Date", NONE, Some("function Date has 3 return values; should be 1 or 2")),
    ("Day", NONE, None),
    ("Equal", TIME, None),
    ("Format", &[Param::Str], None),
    ("GoString", NONE, None),
    ("Hour", NONE, None),
    (
        "ISOWeek",
        NONE,
        Some("invalid function signature for ISOWeek: second return value should be error; is int"),
    ),
    ("IsZero", NONE, None),
    ("Local", NONE, None),
    ("Minute", NONE, None),
    ("Month", NONE, None),
    ("Nanosecond", NONE, None),
    ("Round", DURATION, None),
    ("Second", NONE, None),
    ("String", NONE, None),
    ("Sub", TIME, None),
    ("Truncate", DURATION, None),
    ("UTC", NONE, None),
    ("Unix", NONE, None),
    ("UnixMicro", NONE, None),
    ("UnixMilli", NONE, None),
    ("UnixNano", NONE, None),
    ("Weekday", NONE, None),
    ("Year", NONE, None),
    ("YearDay", NONE, None),
    (
        "Zone",
        NONE,
        Some("invalid function signature for Zone: second return value should be error; is int"),
    ),
];

const DURATION_METHODS: &[MethodEntry] = &[
    ("Abs", NONE, None),
    ("Hours", NONE, None),
    ("Microseconds", NONE, None),
    ("Milliseconds", NONE, None),
    ("Minutes", NONE, None),
    ("Nanoseconds", NONE, None),
    ("Round", DURATION, None),
    ("Seconds", NONE, None),
    ("String", NONE, None),
    ("Truncate", DURATION, None),
];

const NANOS: i64 = 1_000_000_000;

impl Method {
    /// Calls the method; `args` match its signature.
    pub fn call(&self, args: &[Value]) -> Value {
        let int = |i: usize| args.get(i).and_then(Value::int).unwrap_or(0);
        let time = |i: usize| match args.get(i) {
            Some(Value::Time(t)) => *t,
            Some(Value::TimePtr(t)) => **t,
            _ => GoTime::unix(0, 0),
        };
        match self.receiver {
            Receiver::Time(t) => {
                let c = || t.civil();
                match self.name {
                    "Add" => Value::Time(t.add(int(0))),
                    "AddDate" => Value::Time(t.add_date(int(0), int(1), int(2))),
                    "After" => Value::Bool(t > time(0)),
                    "Before" => Value::Bool(t < time(0)),
                    "Compare" => Value::Int(t.cmp(&time(0)) as i64),
                    "Day" => Value::Int(c().day),
                    "Equal" => Value::Bool(t == time(0)),
                    "Format" => {
                        Value::str(&t.format(args.first().and_then(Value::string).unwrap_or("")))
                    }
                    "GoString" => Value::str(&t.go_string()),
                    "Hour" => Value::Int(c().hour),
                    "IsZero" => Value::Bool(t == GoTime::unix(-62_135_596_800, 0)),
                    "Minute" => Value::Int(c().minute),
                    "Month" => Value::Month(c().month),
                    "Nanosecond" => Value::Int(t.nsec),
                    "Round" => Value::Time(t.round(int(0))),
                    "Second" => Value::Int(c().second),
                    "String" => Value::str(&t.string()),
                    "Sub" => Value::Duration(t.sub(time(0))),
                    "Truncate" => Value::Time(t.truncate(int(0))),
                    "Unix" => Value::Int64(t.sec),
                    "UnixMicro" => {
                        Value::Int64(t.sec.wrapping_mul(1_000_000).wrapping_add(t.nsec / 1000))
                    }
                    "UnixMilli" => {
                        Value::Int64(t.sec.wrapping_mul(1000).wrapping_add(t.nsec / 1_000_000))
                    }
                    "UnixNano" => Value::Int64(t.unix_nanos()),
                    "Weekday" => Value::Weekday(c().weekday),
                    "Year" => Value::Int(c().year),
                    "YearDay" => Value::Int(c().yday),
                    // "UTC", "Local".
                    _ => Value::Time(t),
                }
            }
            Receiver::Duration(d) => match self.name {
                "Abs" => Value::Duration(if d >= 0 {
                    d
                } else if d == i64::MIN {
                    i64::MAX
                } else {
                    -d
                }),
                "Hours" => Value::Float(split_float(d, 3600 * NANOS)),
                "Minutes" => Value::Float(split_float(d, 60 * NANOS)),
                "Seconds" => Value::Float(split_float(d, NANOS)),
                "Milliseconds" => Value::Int64(d / 1_000_000),
                "Microseconds" => Value::Int64(d / 1000),
                "Nanoseconds" => Value::Int64(d),
                "Round" => Value::Duration(round_duration(d, int(0))),
                "Truncate" => Value::Duration(if int(0) <= 0 { d } else { d - d % int(0) }),
                _ => Value::str(&duration_string(d)),
            },
            Receiver::Month(m) => Value::str(&month_name(m)),
            Receiver::Weekday(w) => Value::str(&weekday_name(w)),
        }
    }
}

/// `float64(d/unit) + float64(d%unit)/unit`, as Go's `Hours`, `Minutes`
/// and `Seconds` compute.
fn split_float(d: i64, unit: i64) -> f64 {
    (d / unit) as f64 + (d % unit) as f64 / unit as f64
}

/// Go's `Duration.Round`: halfway rounds away from zero, saturating.
fn round_duration(d: i64, m: i64) -> i64 {
    if m <= 0 {
        return d;
    }
    let less_than_half = |r: i64| (r as u64).wrapping_add(r as u64) < m as u64;
    let r = d % m;
    if d < 0 {
        let r = -r;
        if less_than_half(r) {
            return d + r;
        }
        return d.checked_sub(m - r).unwrap_or(i64::MIN);
    }
    if less_than_half(r) {
        return d - r;
    }
    d.checked_add(m - r).unwrap_or(i64::MAX)
}
