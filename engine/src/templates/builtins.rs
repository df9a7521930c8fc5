//! The functions `text/template` itself defines: `and`, `or`, `not`, `len`,
//! `index`, `slice`, `print*`, `html`, `js`, `urlquery`, `call` and the
//! comparisons, with the errors Go's versions return.

use std::rc::Rc;

use super::exec::{Param, Signature};
use super::printf::{self, sprint_reflected, sprint_reflected_s};
use super::value::{Kind, QueryResult, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Builtin {
    And,
    Call,
    Html,
    Index,
    Slice,
    Js,
    Len,
    Not,
    Or,
    Print,
    Printf,
    Println,
    Urlquery,
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
    Ne,
}

const REFLECT: &[Param] = &[Param::Reflect];
const REFLECT2: &[Param] = &[Param::Reflect, Param::Reflect];

impl Builtin {
    pub fn lookup(name: &str) -> Option<Builtin> {
        Some(match name {
            "and" => Builtin::And,
            "call" => Builtin::Call,
            "html" => Builtin::Html,
            "index" => Builtin::Index,
            "slice" => Builtin::Slice,
            "js" => Builtin::Js,
            "len" => Builtin::Len,
            "not" => Builtin::Not,
            "or" => Builtin::Or,
            "print" => Builtin::Print,
            "printf" => Builtin::Printf,
            "println" => Builtin::Println,
            "urlquery" => Builtin::Urlquery,
            "eq" => Builtin::Eq,
            "ge" => Builtin::Ge,
            "gt" => Builtin::Gt,
            "le" => Builtin::Le,
            "lt" => Builtin::Lt,
            "ne" => Builtin::Ne,
            _ => return None,
        })
    }

    pub fn signature(self) -> Signature {
        match self {
            Builtin::And
            | Builtin::Or
            | Builtin::Index
            | Builtin::Slice
            | Builtin::Call
            | Builtin::Eq => Signature::variadic(REFLECT, Param::Reflect),
            Builtin::Not | Builtin::Len => Signature::fixed(REFLECT),
            Builtin::Ge | Builtin::Gt | Builtin::Le | Builtin::Lt | Builtin::Ne => {
                Signature::fixed(REFLECT2)
            }
            Builtin::Html | Builtin::Js | Builtin::Urlquery | Builtin::Print | Builtin::Println => {
                Signature::variadic(&[], Param::Any)
            }
            Builtin::Printf => Signature::variadic(&[Param::Str], Param::Any),
        }
    }

    /// Runs the builtin on evaluated arguments. `and`, `or` and `call` are
    /// special cases of the evaluator and never get here.
    pub fn call(self, args: &[Value]) -> Result<Value, String> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Invalid);
        match self {
            Builtin::Not => Ok(Value::Bool(!arg(0).truth())),
            Builtin::Len => length(&arg(0)),
            Builtin::Index => index(arg(0), args.get(1..).unwrap_or(&[])),
            Builtin::Slice => slice(arg(0), args.get(1..).unwrap_or(&[])),
            Builtin::Print => Ok(Value::str(&printf::sprint(args))),
            Builtin::Println => Ok(Value::str(&printf::sprintln(args))),
            Builtin::Printf => {
                let format = arg(0);
                Ok(Value::str(&printf::sprintf(
                    format.string().unwrap_or(""),
                    args.get(1..).unwrap_or(&[]),
                )))
            }
            Builtin::Html => Ok(Value::str(&html_escape(&eval_args(args)))),
            Builtin::Js => Ok(Value::str(&js_escape(&eval_args(args)))),
            Builtin::Urlquery => Ok(Value::str(&query_escape(&eval_args(args)))),
            Builtin::Eq => eq(&arg(0), args.get(1..).unwrap_or(&[])).map(Value::Bool),
            Builtin::Ne => eq(&arg(0), &[arg(1)]).map(|b| Value::Bool(!b)),
            Builtin::Lt => lt(&arg(0), &arg(1)).map(Value::Bool),
            Builtin::Le => le(&arg(0), &arg(1)).map(Value::Bool),
            Builtin::Gt => le(&arg(0), &arg(1)).map(|b| Value::Bool(!b)),
            Builtin::Ge => lt(&arg(0), &arg(1)).map(|b| Value::Bool(!b)),
            Builtin::And | Builtin::Or | Builtin::Call => Ok(Value::Invalid),
        }
    }
}

/// Go's `indirectInterface`: a nil interface becomes no value.
fn indirect_interface(v: Value) -> Value {
    match v {
        Value::NilInterface => Value::Invalid,
        v => v,
    }
}

fn length(item: &Value) -> Result<Value, String> {
    let (item, is_nil) = item.indirect();
    if is_nil {
        return Err("len of nil pointer".to_owned());
    }
    if matches!(item, Value::Invalid) {
        // Go's `item.Type()` on the zero Value panics; the call reports it.
        return Err("reflect: call of reflect.Value.Type on zero Value".to_owned());
    }
    match item.len() {
        Some(n) => Ok(Value::Int(n as i64)),
        None => Err(format!("len of type {}", item.type_name())),
    }
}

/// Go's `indexArg`: an integer index within `0..=cap`.
fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x = match index {
        Value::Uint8(u) => i64::from(*u),
        Value::Invalid | Value::NilInterface => {
            return Err("cannot index slice/array with nil".to_owned());
        }
        v => match v.int() {
            Some(i) => i,
            None => return Err(format!("cannot index slice/array with type {}", v.type_name())),
        },
    };
    match usize::try_from(x) {
        Ok(u) if u <= cap => Ok(u),
        _ => Err(format!("index out of range: {x}")),
    }
}

fn index(item: Value, indexes: &[Value]) -> Result<Value, String> {
    let mut item = indirect_interface(item);
    if matches!(item, Value::Invalid) {
        return Err("index of untyped nil".to_owned());
    }
    for index in indexes {
        let index = indirect_interface(index.clone());
        let (it, is_nil) = item.indirect();
        if is_nil {
            return Err("index of nil pointer".to_owned());
        }
        item = match it {
            Value::Str(s) | Value::Html(s) => {
                let x = index_arg(&index, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Uint8(*b),
                    None => return Err("reflect: string index out of range".to_owned()),
                }
            }
            Value::Query(q) => {
                let x = index_arg(&index, q.len())?;
                match q.get(x) {
                    Some(s) => Value::Sample(Some(s)),
                    None => return Err("reflect: slice index out of range".to_owned()),
                }
            }
            Value::Labels(m) => {
                let key = map_key(&index)?;
                Value::str(m.get(key).map_or("", String::as_str))
            }
            Value::Args(m) => {
                let key = map_key(&index)?;
                m.get(key).cloned().unwrap_or(Value::NilInterface)
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

/// Go's `prepareArg` for a `string` map key.
fn map_key(index: &Value) -> Result<&str, String> {
    match index {
        Value::Str(s) => Ok(s),
        Value::Invalid | Value::NilInterface => {
            Err("value is nil; should be of type string".to_owned())
        }
        v => Err(format!("value has type {}; should be string", v.type_name())),
    }
}

fn slice(item: Value, indexes: &[Value]) -> Result<Value, String> {
    let item = indirect_interface(item);
    if matches!(item, Value::Invalid) {
        return Err("slice of untyped nil".to_owned());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let (len, cap) = match &item {
        Value::Str(s) | Value::Html(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".to_owned());
            }
            (s.len(), s.len())
        }
        Value::Query(q) => (q.len(), q.array.borrow().len() - q.start),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0, len, 0];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(&indirect_interface(index.clone()), cap)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Value::Str(s) => Value::str(&String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]])),
        Value::Html(s) => {
            Value::Html(Rc::from(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).as_ref()))
        }
        Value::Query(q) => Value::Query(QueryResult {
            array: q.array.clone(),
            start: q.start + idx[0],
            end: q.start + idx[1],
        }),
        other => other,
    })
}

// Comparisons.

#[derive(Clone, Copy, PartialEq, Eq)]
enum BasicKind {
    Invalid,
    Bool,
    Complex,
    Int,
    Float,
    String,
    Uint,
}

fn basic_kind(v: &Value) -> BasicKind {
    match v.kind() {
        Kind::Bool => BasicKind::Bool,
        Kind::Int => BasicKind::Int,
        Kind::Uint => BasicKind::Uint,
        Kind::Float => BasicKind::Float,
        Kind::Complex => BasicKind::Complex,
        Kind::String => BasicKind::String,
        _ => BasicKind::Invalid,
    }
}

fn as_i64(v: &Value) -> i64 {
    v.int().unwrap_or(0)
}

fn as_u64(v: &Value) -> u64 {
    match v {
        Value::Uint8(u) => u64::from(*u),
        _ => 0,
    }
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

/// Go's `isNil` for the comparison of non-basic values.
fn is_nil(v: &Value) -> bool {
    matches!(v, Value::Invalid | Value::NilInterface | Value::Sample(None))
}

/// Go's `eq`: `a == b || a == c || ...`.
fn eq(arg1: &Value, rest: &[Value]) -> Result<bool, String> {
    let arg1 = indirect_interface(arg1.clone());
    if rest.is_empty() {
        return Err("missing argument for comparison".to_owned());
    }
    let k1 = basic_kind(&arg1);
    for arg in rest {
        let arg = indirect_interface(arg.clone());
        let k2 = basic_kind(&arg);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (BasicKind::Int, BasicKind::Uint) => {
                    as_i64(&arg1) >= 0 && as_i64(&arg1) as u64 == as_u64(&arg)
                }
                (BasicKind::Uint, BasicKind::Int) => {
                    as_i64(&arg) >= 0 && as_u64(&arg1) == as_i64(&arg) as u64
                }
                _ => {
                    if !matches!(arg1, Value::Invalid) && !matches!(arg, Value::Invalid) {
                        return Err(format!(
                            "incompatible types for comparison: {} and {}",
                            arg1.type_name(),
                            arg.type_name()
                        ));
                    }
                    false
                }
            }
        } else {
            match k1 {
                BasicKind::Bool => {
                    matches!((&arg1, &arg), (Value::Bool(a), Value::Bool(b)) if a == b)
                }
                BasicKind::Complex => match (&arg1, &arg) {
                    (Value::Complex(a, b), Value::Complex(c, d)) => a == c && b == d,
                    _ => false,
                },
                BasicKind::Float => as_f64(&arg1) == as_f64(&arg),
                BasicKind::Int => as_i64(&arg1) == as_i64(&arg),
                BasicKind::String => arg1.string() == arg.string(),
                BasicKind::Uint => as_u64(&arg1) == as_u64(&arg),
                BasicKind::Invalid => {
                    if arg1.kind() != arg.kind()
                        && !matches!(arg1, Value::Invalid)
                        && !matches!(arg, Value::Invalid)
                    {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            sprint_reflected_s(&arg1),
                            arg1.type_name(),
                            arg.type_name(),
                            sprint_reflected(&arg)
                        ));
                    }
                    if is_nil(&arg1) || is_nil(&arg) {
                        is_nil(&arg1) == is_nil(&arg)
                    } else {
                        compare_non_basic(&arg1, &arg)?
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `==` on non-basic values: Go first refuses a second operand of a type
/// that is not comparable (maps, slices, structs holding them), then compares
/// pointers by identity and `time.Time` by value; different types differ.
fn compare_non_basic(a: &Value, b: &Value) -> Result<bool, String> {
    let comparable =
        matches!(b, Value::Sample(_) | Value::TimePtr(_) | Value::DurationPtr(_) | Value::Time(_));
    if !comparable {
        return Err(format!("non-comparable type {}: {}", sprint_reflected_s(b), b.type_name()));
    }
    Ok(match (a, b) {
        (Value::Sample(Some(x)), Value::Sample(Some(y))) => Rc::ptr_eq(x, y),
        (Value::TimePtr(x), Value::TimePtr(y)) => Rc::ptr_eq(x, y),
        (Value::DurationPtr(x), Value::DurationPtr(y)) => Rc::ptr_eq(x, y),
        (Value::Time(x), Value::Time(y)) => x == y,
        _ => false,
    })
}

/// Go's `lt`.
fn lt(arg1: &Value, arg2: &Value) -> Result<bool, String> {
    let arg1 = indirect_interface(arg1.clone());
    let arg2 = indirect_interface(arg2.clone());
    let k1 = basic_kind(&arg1);
    let k2 = basic_kind(&arg2);
    if k1 == BasicKind::Invalid || k2 == BasicKind::Invalid {
        return Err("invalid type for comparison".to_owned());
    }
    if k1 != k2 {
        return match (k1, k2) {
            (BasicKind::Int, BasicKind::Uint) => {
                Ok(as_i64(&arg1) < 0 || (as_i64(&arg1) as u64) < as_u64(&arg2))
            }
            (BasicKind::Uint, BasicKind::Int) => {
                Ok(as_i64(&arg2) >= 0 && as_u64(&arg1) < as_i64(&arg2) as u64)
            }
            _ => Err(format!(
                "incompatible types for comparison: {} and {}",
                arg1.type_name(),
                arg2.type_name()
            )),
        };
    }
    match k1 {
        BasicKind::Bool | BasicKind::Complex => Err("invalid type for comparison".to_owned()),
        BasicKind::Float => Ok(as_f64(&arg1) < as_f64(&arg2)),
        BasicKind::Int => Ok(as_i64(&arg1) < as_i64(&arg2)),
        BasicKind::String => Ok(arg1.string() < arg2.string()),
        BasicKind::Uint => Ok(as_u64(&arg1) < as_u64(&arg2)),
        BasicKind::Invalid => Err("invalid type for comparison".to_owned()),
    }
}

/// Go's `le`: `lt`, or else `eq`.
fn le(arg1: &Value, arg2: &Value) -> Result<bool, String> {
    if lt(arg1, arg2)? {
        return Ok(true);
    }
    eq(arg1, std::slice::from_ref(arg2))
}

// Escaping.

/// Go's `evalArgs`: the arguments as `fmt.Sprint` prints them, after the
/// same indirection the template applies to printed values.
fn eval_args(args: &[Value]) -> String {
    if let [Value::Str(s)] = args {
        return s.to_string();
    }
    let printable: Vec<Value> = args.iter().map(printable).collect();
    printf::sprint(&printable)
}

/// Go's `printableValue`: pointers are followed; no value prints as
/// `<no value>`.
pub(super) fn printable(v: &Value) -> Value {
    let v = match v {
        Value::Sample(_) | Value::TimePtr(_) | Value::DurationPtr(_) => v.indirect().0,
        v => v.clone(),
    };
    match v {
        Value::Invalid => Value::str("<no value>"),
        v => v,
    }
}

/// Go's `template.HTMLEscapeString`.
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(super) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() || crate::gofmt::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_follow_go() {
        assert_eq!(eq(&Value::Int(1), &[Value::Int(2), Value::Int(1)]), Ok(true));
        assert_eq!(eq(&Value::Int(97), &[Value::Uint8(97)]), Ok(true));
        assert_eq!(
            eq(&Value::Int(1), &[Value::Float(1.0)]),
            Err("incompatible types for comparison: int and float64".to_owned())
        );
        assert_eq!(eq(&Value::Invalid, &[Value::Invalid]), Ok(true));
        assert_eq!(eq(&Value::Invalid, &[Value::Int(1)]), Ok(false));
        assert_eq!(
            lt(&Value::Bool(true), &Value::Bool(false)),
            Err("invalid type for comparison".to_owned())
        );
        assert_eq!(lt(&Value::str("a"), &Value::str("b")), Ok(true));
        assert_eq!(le(&Value::Float(2.0), &Value::Float(2.0)), Ok(true));
        assert_eq!(eq(&Value::Int(1), &[]), Err("missing argument for comparison".to_owned()));
    }

    #[test]
    fn escapers_follow_go() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            js_escape("a'b\"c<d>=&\n\u{2028}é"),
            "a\\'b\\\"c\\u003Cd\\u003E\\u003D\\u0026\\u000A\\u2028é"
        );
        assert_eq!(query_escape("a b&c=d/é~"), "a+b%26c%3Dd%2F%C3%A9~");
    }

    #[test]
    fn index_and_slice_follow_go() {
        assert!(matches!(index(Value::str("abc"), &[Value::Int(1)]), Ok(Value::Uint8(b'b'))));
        assert_eq!(
            index(Value::str("abc"), &[Value::Int(3)]).err().as_deref(),
            Some("reflect: string index out of range")
        );
        assert_eq!(
            index(Value::str("abc"), &[Value::Int(4)]).err().as_deref(),
            Some("index out of range: 4")
        );
        assert_eq!(index(Value::Invalid, &[]).err().as_deref(), Some("index of untyped nil"));
        assert_eq!(
            index(Value::Float(1.0), &[Value::Int(0)]).err().as_deref(),
            Some("can't index item of type float64")
        );
        assert!(
            matches!(slice(Value::str("hello"), &[Value::Int(1), Value::Int(3)]), Ok(Value::Str(s)) if &*s == "el")
        );
        assert_eq!(
            slice(Value::str("ab"), &[Value::Int(2), Value::Int(1)]).err().as_deref(),
            Some("invalid slice index: 2 > 1")
        );
        assert_eq!(
            length(&Value::Invalid).err().as_deref(),
            Some("reflect: call of reflect.Value.Type on zero Value")
        );
    }
}
