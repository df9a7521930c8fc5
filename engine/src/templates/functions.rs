//! The functions Prometheus 3.x adds to alert templates (`template.go`'s
//! `NewTemplateExpander`), with its argument types and error texts.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::builtins::query_escape;
use super::exec::{Env, Param, Signature};
use super::goregex::GoRegex;
use super::gotime::GoTime;
use super::printf::sprint_reflected;
use super::value::{QueryResult, Sample, Value};
use crate::duration::parse_duration_nanos;
use crate::gofmt::{self, FloatError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PromFunc {
    Query,
    First,
    Label,
    Value,
    StrValue,
    Args,
    ReReplaceAll,
    SafeHtml,
    Match,
    Title,
    ToUpper,
    ToLower,
    GraphLink,
    TableLink,
    SortByLabel,
    StripPort,
    StripDomain,
    Humanize,
    Humanize1024,
    HumanizeDuration,
    HumanizePercentage,
    HumanizeTimestamp,
    ToTime,
    ToDuration,
    Now,
    PathPrefix,
    ExternalUrl,
    ParseDuration,
    UrlQueryEscape,
}

/// Go's message for a nil pointer dereference, which `text/template`
/// reports when a function panics with it.
pub(super) const NIL_DEREFERENCE: &str =
    "runtime error: invalid memory address or nil pointer dereference";

impl PromFunc {
    pub fn lookup(name: &str) -> Option<PromFunc> {
        Some(match name {
            "query" => PromFunc::Query,
            "first" => PromFunc::First,
            "label" => PromFunc::Label,
            "value" => PromFunc::Value,
            "strvalue" => PromFunc::StrValue,
            "args" => PromFunc::Args,
            "reReplaceAll" => PromFunc::ReReplaceAll,
            "safeHtml" => PromFunc::SafeHtml,
            "match" => PromFunc::Match,
            "title" => PromFunc::Title,
            "toUpper" => PromFunc::ToUpper,
            "toLower" => PromFunc::ToLower,
            "graphLink" => PromFunc::GraphLink,
            "tableLink" => PromFunc::TableLink,
            "sortByLabel" => PromFunc::SortByLabel,
            "stripPort" => PromFunc::StripPort,
            "stripDomain" => PromFunc::StripDomain,
            "humanize" => PromFunc::Humanize,
            "humanize1024" => PromFunc::Humanize1024,
            "humanizeDuration" => PromFunc::HumanizeDuration,
            "humanizePercentage" => PromFunc::HumanizePercentage,
            "humanizeTimestamp" => PromFunc::HumanizeTimestamp,
            "toTime" => PromFunc::ToTime,
            "toDuration" => PromFunc::ToDuration,
            "now" => PromFunc::Now,
            "pathPrefix" => PromFunc::PathPrefix,
            "externalURL" => PromFunc::ExternalUrl,
            "parseDuration" => PromFunc::ParseDuration,
            "urlQueryEscape" => PromFunc::UrlQueryEscape,
            _ => return None,
        })
    }

    pub fn signature(self) -> Signature {
        use Param::*;
        match self {
            PromFunc::Query
            | PromFunc::SafeHtml
            | PromFunc::Title
            | PromFunc::ToUpper
            | PromFunc::ToLower
            | PromFunc::GraphLink
            | PromFunc::TableLink
            | PromFunc::StripPort
            | PromFunc::StripDomain
            | PromFunc::ParseDuration
            | PromFunc::UrlQueryEscape => Signature::fixed(&[Str]),
            PromFunc::First => Signature::fixed(&[QueryResult]),
            PromFunc::Label => Signature::fixed(&[Str, SamplePtr]),
            PromFunc::Value | PromFunc::StrValue => Signature::fixed(&[SamplePtr]),
            PromFunc::Args => Signature::variadic(&[], Any),
            PromFunc::ReReplaceAll => Signature::fixed(&[Str, Str, Str]),
            PromFunc::Match => Signature::fixed(&[Str, Str]),
            PromFunc::SortByLabel => Signature::fixed(&[Str, QueryResult]),
            PromFunc::Humanize
            | PromFunc::Humanize1024
            | PromFunc::HumanizeDuration
            | PromFunc::HumanizePercentage
            | PromFunc::HumanizeTimestamp
            | PromFunc::ToTime
            | PromFunc::ToDuration => Signature::fixed(&[Any]),
            PromFunc::Now | PromFunc::PathPrefix | PromFunc::ExternalUrl => Signature::fixed(&[]),
        }
    }

    pub fn call(self, args: &[Value], env: &mut Env<'_>) -> Result<Value, String> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Invalid);
        let text = |i: usize| args.get(i).and_then(Value::string).unwrap_or("").to_owned();
        match self {
            PromFunc::Query => {
                let samples = env.querier.query(&text(0), env.ts_ms)?;
                let samples = samples
                    .into_iter()
                    .map(|s| {
                        Rc::new(Sample {
                            labels: Rc::new(s.labels.into_iter().collect()),
                            value: s.value,
                        })
                    })
                    .collect();
                Ok(Value::Query(QueryResult::new(samples)))
            }
            PromFunc::First => match arg(0) {
                Value::Query(q) if q.len() > 0 => Ok(Value::Sample(q.get(0))),
                _ => Err("first() called on vector with no elements".to_owned()),
            },
            PromFunc::Label => {
                let s = sample(&arg(1))?;
                Ok(Value::str(s.labels.get(&text(0)).map_or("", String::as_str)))
            }
            PromFunc::Value => Ok(Value::Float(sample(&arg(0))?.value)),
            PromFunc::StrValue => {
                Ok(Value::str(sample(&arg(0))?.labels.get("__value__").map_or("", String::as_str)))
            }
            PromFunc::Args => {
                // The map's values are interface{} slots: nil is a nil interface.
                let slot = |v: &Value| {
                    if matches!(v, Value::Invalid) { Value::NilInterface } else { v.clone() }
                };
                let map: BTreeMap<String, Value> =
                    args.iter().enumerate().map(|(i, v)| (format!("arg{i}"), slot(v))).collect();
                Ok(Value::Args(Rc::new(map)))
            }
            PromFunc::ReReplaceAll => {
                let pattern = text(0);
                // regexp.MustCompile panics with this text; the call reports it.
                let re = GoRegex::compile(&pattern)
                    .map_err(|e| format!("regexp: Compile({}): {e}", regexp_quote(&pattern)))?;
                Ok(Value::str(&re.replace_all(&text(2), &text(1))))
            }
            PromFunc::Match => Ok(Value::Bool(GoRegex::compile(&text(0))?.is_match(&text(1)))),
            PromFunc::SafeHtml => Ok(Value::Html(Rc::from(text(0).as_str()))),
            PromFunc::Title => Ok(Value::str(&title(&text(0)))),
            PromFunc::ToUpper => {
                Ok(Value::str(&text(0).chars().map(simple_upper).collect::<String>()))
            }
            PromFunc::ToLower => {
                Ok(Value::str(&text(0).chars().map(simple_lower).collect::<String>()))
            }
            PromFunc::GraphLink => {
                Ok(Value::str(&format!("/graph?g0.expr={}&g0.tab=0", query_escape(&text(0)))))
            }
            PromFunc::TableLink => {
                Ok(Value::str(&format!("/graph?g0.expr={}&g0.tab=1", query_escape(&text(0)))))
            }
            PromFunc::SortByLabel => {
                let label = text(0);
                let q = match arg(1) {
                    Value::Query(q) => q,
                    _ => QueryResult::new(Vec::new()),
                };
                {
                    let mut array = q.array.borrow_mut();
                    if let Some(window) = array.get_mut(q.start..q.end) {
                        crate::sort::by(window, |a, b| {
                            let va = a.labels.get(&label).map_or("", String::as_str);
                            let vb = b.labels.get(&label).map_or("", String::as_str);
                            va.cmp(vb)
                        });
                    }
                }
                Ok(Value::Query(q))
            }
            PromFunc::StripPort => {
                let hostport = text(0);
                Ok(Value::str(
                    split_host_port(&hostport).map_or(hostport.as_str(), |(host, _)| host),
                ))
            }
            PromFunc::StripDomain => Ok(Value::str(&strip_domain(&text(0)))),
            PromFunc::Humanize => humanize(&arg(0)).map(|s| Value::str(&s)),
            PromFunc::Humanize1024 => humanize_1024(&arg(0)).map(|s| Value::str(&s)),
            PromFunc::HumanizeDuration => humanize_duration(&arg(0)).map(|s| Value::str(&s)),
            PromFunc::HumanizePercentage => {
                let v = convert_to_float(&arg(0))?;
                Ok(Value::str(&format!("{}%", g4(v * 100.0))))
            }
            PromFunc::HumanizeTimestamp => {
                let v = convert_to_float(&arg(0))?;
                if v.is_nan() || v.is_infinite() {
                    return Ok(Value::str(&g4(v)));
                }
                Ok(Value::str(&float_to_time(v)?.string()))
            }
            PromFunc::ToTime => {
                let v = convert_to_float(&arg(0))?;
                if v.is_nan() || v.is_infinite() {
                    return Err("value is NaN or Inf".to_owned());
                }
                Ok(Value::TimePtr(Rc::new(float_to_time(v)?)))
            }
            PromFunc::ToDuration => {
                let v = convert_to_float(&arg(0))?;
                Ok(Value::DurationPtr(Rc::new(go_f64_to_i64(v * 1e9))))
            }
            PromFunc::Now => Ok(Value::Float(env.ts_ms as f64 / 1000.0)),
            PromFunc::PathPrefix => Ok(Value::str(&url_path(env.external_url))),
            PromFunc::ExternalUrl => Ok(Value::str(env.external_url)),
            PromFunc::ParseDuration => {
                let ns = parse_duration_allow_negative(&text(0))?;
                Ok(Value::Float(ns as f64 / 1e9))
            }
            PromFunc::UrlQueryEscape => Ok(Value::str(&query_escape(&text(0)))),
        }
    }
}

/// The quoting of Go's `regexp` package: backquotes when possible.
fn regexp_quote(s: &str) -> String {
    if gofmt::can_backquote(s) { format!("`{s}`") } else { gofmt::quote(s) }
}

fn sample(v: &Value) -> Result<Rc<Sample>, String> {
    match v {
        Value::Sample(Some(s)) => Ok(s.clone()),
        _ => Err(NIL_DEREFERENCE.to_owned()),
    }
}

/// `fmt.Sprintf("%.4g", v)`.
fn g4(v: f64) -> String {
    gofmt::format_float(v, b'g', 4)
}

/// Go's conversion of a float64 to int64 on amd64: out of range (and NaN)
/// gives the minimum int64.
fn go_f64_to_i64(v: f64) -> i64 {
    if v.is_nan() || v < i64::MIN as f64 || v >= i64::MAX as f64 { i64::MIN } else { v as i64 }
}

/// Prometheus's `ConvertToFloat`: numbers and numeric strings.
pub(super) fn convert_to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Str(s) => gofmt::parse_float(s).map_err(|e| {
            let why = match e {
                FloatError::Syntax => "invalid syntax",
                FloatError::Range => "value out of range",
            };
            format!("strconv.ParseFloat: parsing {}: {why}", gofmt::quote(s))
        }),
        Value::Int(i) | Value::Int64(i) => Ok(*i as f64),
        Value::Duration(d) => Ok(*d as f64 / 1e9),
        v => Err(format!("can't convert {} to float", v.type_name())),
    }
}

fn humanize(v: &Value) -> Result<String, String> {
    let mut v = convert_to_float(v)?;
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return Ok(g4(v));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    Ok(format!("{}{prefix}", g4(v)))
}

fn humanize_1024(v: &Value) -> Result<String, String> {
    let mut v = convert_to_float(v)?;
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return Ok(g4(v));
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    Ok(format!("{}{prefix}", g4(v)))
}

/// prometheus/common's `HumanizeDuration`.
fn humanize_duration(v: &Value) -> Result<String, String> {
    let mut v = convert_to_float(v)?;
    if v.is_nan() || v.is_infinite() {
        return Ok(g4(v));
    }
    if v == 0.0 {
        return Ok(format!("{}s", g4(v)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let duration = go_f64_to_i64(v);
        let seconds = duration % 60;
        let minutes = (duration / 60) % 60;
        let hours = (duration / 60 / 60) % 24;
        let days = duration / 60 / 60 / 24;
        if days != 0 {
            return Ok(format!("{sign}{days}d {hours}h {minutes}m {seconds}s"));
        }
        if hours != 0 {
            return Ok(format!("{sign}{hours}h {minutes}m {seconds}s"));
        }
        if minutes != 0 {
            return Ok(format!("{sign}{minutes}m {seconds}s"));
        }
        return Ok(format!("{sign}{}s", g4(v)));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    Ok(format!("{}{prefix}s", g4(v)))
}

/// prometheus/common's `FloatToTime` for a finite `v`: seconds to a UTC time,
/// through Prometheus's millisecond timestamps.
fn float_to_time(v: f64) -> Result<GoTime, String> {
    let timestamp = v * 1e9;
    // float64(math.MaxInt64) is 2^63, as is -float64(math.MinInt64).
    if !(i64::MIN as f64..=i64::MAX as f64).contains(&timestamp) {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            sprint_reflected(&Value::Float(v))
        ));
    }
    // model.TimeFromUnixNano truncates to milliseconds.
    let ms = go_f64_to_i64(timestamp) / 1_000_000;
    Ok(GoTime::unix(ms / 1000, (ms % 1000) * 1_000_000))
}

/// prometheus/common's `ParseDurationAllowNegative`, in nanoseconds.
fn parse_duration_allow_negative(s: &str) -> Result<i64, String> {
    match s.strip_prefix('-') {
        Some(rest) => parse_duration_nanos(rest).map(i64::wrapping_neg),
        None => parse_duration_nanos(s),
    }
}

/// Go's `net.SplitHostPort`, or `None` where it returns an error.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let i = hostport.rfind(':')?;
    let (host, j, k) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != i {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None;
    }
    Some((host, &hostport[i + 1..]))
}

fn strip_domain(hostport: &str) -> String {
    let (host, port) = split_host_port(hostport).unwrap_or((hostport, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hostport.to_owned();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() {
        return host.to_owned();
    }
    // net.JoinHostPort brackets a host containing a colon.
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The path of a URL as Go's `url.Parse` decodes it.
fn url_path(url: &str) -> String {
    let url = url.split('#').next().unwrap_or("");
    let mut rest = url;
    if let Some(colon) = rest.find(':') {
        let scheme = &rest[..colon];
        let valid = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if valid {
            rest = &rest[colon + 1..];
        }
    }
    let rest = rest.split('?').next().unwrap_or("");
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => {
            authority_and_path.find('/').map_or("", |i| &authority_and_path[i..])
        }
        None => rest,
    };
    percent_decode(path)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(v) = s
            .get(i + 1..i + 3)
            .filter(|_| b[i] == b'%')
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// Case mapping.

/// `unicode.ToUpper`: the simple (one-character) mapping; characters whose
/// uppercase is several characters stay, except Greek letters with
/// ypogegrammeni, whose simple uppercase is the matching prosgegrammeni.
fn simple_upper(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => ypogegrammeni_upper(c).unwrap_or(c),
    }
}

fn ypogegrammeni_upper(c: char) -> Option<char> {
    let u = c as u32;
    let mapped = match u {
        0x1f80..=0x1f87 | 0x1f90..=0x1f97 | 0x1fa0..=0x1fa7 => u + 8,
        0x1fb3 => 0x1fbc,
        0x1fc3 => 0x1fcc,
        0x1ff3 => 0x1ffc,
        _ => return None,
    };
    char::from_u32(mapped)
}

/// `unicode.ToLower`: the simple mapping (`İ` lowers to `i`).
fn simple_lower(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == '\u{130}' {
        return 'i';
    }
    let mut low = c.to_lowercase();
    match (low.next(), low.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// How `golang.org/x/text/cases` classifies a character for word breaks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WordClass {
    /// Letters, digits, connectors, marks: never break a word.
    Letter,
    /// MidLetter, MidNumLet, Single_Quote: inside a word, but two in a row break.
    Mid,
    Break,
}

fn word_class(c: char) -> WordClass {
    match c {
        '\'' | '.' | ':' | '\u{b7}' | '\u{387}' | '\u{55f}' | '\u{5f4}' | '\u{2018}'
        | '\u{2019}' | '\u{2024}' | '\u{2027}' | '\u{fe13}' | '\u{fe52}' | '\u{fe55}'
        | '\u{ff07}' | '\u{ff0e}' | '\u{ff1a}' => WordClass::Mid,
        '_'
        | '\u{203f}'
        | '\u{2040}'
        | '\u{2054}'
        | '\u{fe33}'
        | '\u{fe34}'
        | '\u{fe4d}'..='\u{fe4f}'
        | '\u{ff3f}' => WordClass::Letter,
        '\u{ad}' | '\u{200c}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' => {
            WordClass::Letter
        }
        '\u{300}'..='\u{36f}'
        | '\u{1ab0}'..='\u{1aff}'
        | '\u{1dc0}'..='\u{1dff}'
        | '\u{20d0}'..='\u{20ff}'
        | '\u{fe20}'..='\u{fe2f}' => WordClass::Letter,
        c if c.is_ascii() => {
            if c.is_ascii_alphanumeric() {
                WordClass::Letter
            } else {
                WordClass::Break
            }
        }
        // Ideographs, kana and the like are Word_Break "Other" or Katakana.
        '\u{3040}'..='\u{30ff}'
        | '\u{3400}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{20000}'..='\u{3ffff}' => WordClass::Break,
        c if c.is_alphanumeric() => WordClass::Letter,
        _ => WordClass::Break,
    }
}

fn is_cased(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase() || is_titlecase(c)
}

fn is_titlecase(c: char) -> bool {
    matches!(c as u32, 0x1c5 | 0x1c8 | 0x1cb | 0x1f2 | 0x1f88..=0x1f8f | 0x1f98..=0x1f9f | 0x1fa8..=0x1faf | 0x1fbc | 0x1fcc | 0x1ffc)
}

/// The Unicode titlecase mapping of `c` (with SpecialCasing's full forms).
fn push_title(out: &mut String, c: char) {
    let special: Option<&str> = match c {
        '\u{df}' => Some("Ss"),
        '\u{fb00}' => Some("Ff"),
        '\u{fb01}' => Some("Fi"),
        '\u{fb02}' => Some("Fl"),
        '\u{fb03}' => Some("Ffi"),
        '\u{fb04}' => Some("Ffl"),
        '\u{fb05}' | '\u{fb06}' => Some("St"),
        '\u{587}' => Some("\u{535}\u{582}"),
        _ => None,
    };
    if let Some(s) = special {
        out.push_str(s);
        return;
    }
    let single = match c as u32 {
        0x1c4..=0x1c6 => Some(0x1c5),
        0x1c7..=0x1c9 => Some(0x1c8),
        0x1ca..=0x1cc => Some(0x1cb),
        0x1f1..=0x1f3 => Some(0x1f2),
        0x1f88..=0x1f8f | 0x1f98..=0x1f9f | 0x1fa8..=0x1faf | 0x1fbc | 0x1fcc | 0x1ffc => {
            Some(c as u32)
        }
        _ => ypogegrammeni_upper(c).map(|u| u as u32),
    };
    match single.and_then(char::from_u32) {
        Some(t) => out.push(t),
        None => out.extend(c.to_uppercase()),
    }
}

/// `cases.Title(language.AmericanEnglish, cases.NoLower).String`: the first
/// cased letter of each word title-cased, the rest left alone. Words break
/// as `x/text/cases` approximates Unicode word breaking: `o'neil` and
/// `example.com` are one word, `foo-bar` two, and a digit does not start a
/// word (`1st` becomes `1St`).
pub(super) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut mid_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let class = word_class(c);
        let was_mid = class == WordClass::Mid;
        if is_cased(c) {
            if mid_word {
                out.push(c);
            } else {
                push_title(&mut out, c);
                mid_word = true;
            }
        } else {
            out.push(c);
            if class == WordClass::Break {
                mid_word = false;
            }
        }
        if was_mid && chars.peek().is_some_and(|&n| word_class(n) == WordClass::Mid) {
            mid_word = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_follows_x_text_cases() {
        assert_eq!(title("aa bb CC"), "Aa Bb CC");
        assert_eq!(title("foo-bar baz_qux"), "Foo-Bar Baz_qux");
        assert_eq!(title("o'neil example.com a..b"), "O'neil Example.com A..B");
        assert_eq!(title("1st ßtraße ǆem"), "1St Sstraße ǅem");
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration_allow_negative("1h2m10ms"), Ok(3_720_010_000_000));
        assert_eq!(parse_duration_allow_negative("-1h2m10ms"), Ok(-3_720_010_000_000));
        assert_eq!(
            parse_duration_nanos("1m1h"),
            Err("not a valid duration string: \"1m1h\"".to_owned())
        );
        assert_eq!(
            parse_duration_nanos("1x"),
            Err("unknown unit \"x\" in duration \"1x\"".to_owned())
        );
        assert_eq!(
            parse_duration_nanos("1.5h"),
            Err("unknown unit \".\" in duration \"1.5h\"".to_owned())
        );
        assert_eq!(parse_duration_nanos(""), Err("empty duration string".to_owned()));
        assert_eq!(parse_duration_nanos("300y"), Err("duration out of range".to_owned()));
    }

    #[test]
    fn hosts_split_like_go() {
        assert_eq!(split_host_port("foo.example.com:12345"), Some(("foo.example.com", "12345")));
        assert_eq!(split_host_port("[2001:0DB8::1]:12345"), Some(("2001:0DB8::1", "12345")));
        assert_eq!(split_host_port("[2001:0DB8::1]::12345"), None);
        assert_eq!(split_host_port("2001:0DB8::1"), None);
        assert_eq!(strip_domain("foo.example.com:12345"), "foo:12345");
        assert_eq!(strip_domain("[2001:0DB8::1]:12345"), "[2001:0DB8::1]:12345");
        assert_eq!(url_path("http://testhost:9090/path/pre%20fix?q#f"), "/path/pre fix");
        assert_eq!(url_path("/relative"), "/relative");
    }

    #[test]
    fn humanize_follows_prometheus() {
        let h = |v: f64| humanize(&Value::Float(v)).unwrap_or_default();
        assert_eq!(
            [h(0.0), h(1.0), h(1234567.0), h(0.12), h(-1e-10)],
            ["0", "1", "1.235M", "120m", "-100p"]
        );
        let d = |v: f64| humanize_duration(&Value::Float(v)).unwrap_or_default();
        assert_eq!(d(-(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0)), "-2d 3h 4m 5s");
        assert_eq!(d(0.12345), "123.5ms");
        assert_eq!(d(899.99), "14m 59s");
        assert_eq!(
            convert_to_float(&Value::str("one")),
            Err("strconv.ParseFloat: parsing \"one\": invalid syntax".to_owned())
        );
    }
}
