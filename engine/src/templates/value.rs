//! The Go values a Prometheus alert template can hold, with the Go type and
//! reflect kind of each, because `text/template` decides by them (which
//! argument fits which parameter, what `eq` may compare) and its error
//! messages name them (`can't evaluate field x in type float64`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::gotime::GoTime;

/// `map[string]string`: alert labels, external labels, a sample's labels.
pub(super) type LabelMap = Rc<BTreeMap<String, String>>;

/// Prometheus's `template.sample`: a query result element.
#[derive(Debug)]
pub(super) struct Sample {
    pub labels: LabelMap,
    pub value: f64,
}

/// Prometheus's `template.queryResult` (`[]*sample`). Like a Go slice it is a
/// window on a shared array: `sortByLabel` sorts in place, and `slice`
/// shares the array.
#[derive(Clone, Debug)]
pub(super) struct QueryResult {
    pub array: Rc<RefCell<Vec<Rc<Sample>>>>,
    pub start: usize,
    pub end: usize,
}

impl QueryResult {
    pub fn new(samples: Vec<Rc<Sample>>) -> QueryResult {
        let end = samples.len();
        QueryResult { array: Rc::new(RefCell::new(samples)), start: 0, end }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn get(&self, i: usize) -> Option<Rc<Sample>> {
        self.array.borrow().get(self.start + i).cloned()
    }
}

/// The anonymous struct Prometheus passes as the template's dot.
#[derive(Debug)]
pub(super) struct Data {
    pub labels: LabelMap,
    pub external_labels: LabelMap,
    pub external_url: Rc<str>,
    pub value: f64,
}

/// The Go type of [`Data`], as reflect prints it.
pub(super) const DATA_TYPE: &str = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }";

#[derive(Clone, Debug)]
pub(super) enum Value {
    /// Go's zero `reflect.Value`: a missing value or an untyped nil.
    Invalid,
    /// A nil `interface {}` read from a typed slot (a missing key of
    /// `map[string]interface {}`).
    NilInterface,
    Bool(bool),
    /// `int`.
    Int(i64),
    /// `int64`.
    Int64(i64),
    /// `uint8` (a byte of a string).
    Uint8(u8),
    Float(f64),
    Complex(f64, f64),
    Str(Rc<str>),
    /// `html/template.HTML`, what `safeHtml` returns.
    Html(Rc<str>),
    Month(i64),
    Weekday(i64),
    Duration(i64),
    DurationPtr(Rc<i64>),
    Time(GoTime),
    TimePtr(Rc<GoTime>),
    Labels(LabelMap),
    /// `map[string]interface {}`, what `args` returns.
    Args(Rc<BTreeMap<String, Value>>),
    Query(QueryResult),
    /// `*template.sample`; `None` is a nil pointer.
    Sample(Option<Rc<Sample>>),
    /// `template.sample`, what a `*template.sample` points to.
    SampleStruct(Rc<Sample>),
    Data(Rc<Data>),
}

/// Go's `reflect.Kind`, as far as these values go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    Complex,
    String,
    Map,
    Slice,
    Ptr,
    Struct,
    Interface,
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn kind(&self) -> Kind {
        match self {
            Value::Invalid => Kind::Invalid,
            Value::NilInterface => Kind::Interface,
            Value::Bool(_) => Kind::Bool,
            Value::Int(_)
            | Value::Int64(_)
            | Value::Month(_)
            | Value::Weekday(_)
            | Value::Duration(_) => Kind::Int,
            Value::Uint8(_) => Kind::Uint,
            Value::Float(_) => Kind::Float,
            Value::Complex(..) => Kind::Complex,
            Value::Str(_) | Value::Html(_) => Kind::String,
            Value::Labels(_) | Value::Args(_) => Kind::Map,
            Value::Query(_) => Kind::Slice,
            Value::DurationPtr(_) | Value::TimePtr(_) | Value::Sample(_) => Kind::Ptr,
            Value::Time(_) | Value::Data(_) | Value::SampleStruct(_) => Kind::Struct,
        }
    }

    /// The Go type as `reflect.Type.String()` and `%T` print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Invalid => "<nil>",
            Value::NilInterface => "interface {}",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Uint8(_) => "uint8",
            Value::Float(_) => "float64",
            Value::Complex(..) => "complex128",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::Month(_) => "time.Month",
            Value::Weekday(_) => "time.Weekday",
            Value::Duration(_) => "time.Duration",
            Value::DurationPtr(_) => "*time.Duration",
            Value::Time(_) => "time.Time",
            Value::TimePtr(_) => "*time.Time",
            Value::Labels(_) => "map[string]string",
            Value::Args(_) => "map[string]interface {}",
            Value::Query(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::SampleStruct(_) => "template.sample",
            Value::Data(_) => DATA_TYPE,
        }
    }

    /// The integer of an int-kinded value.
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i)
            | Value::Int64(i)
            | Value::Month(i)
            | Value::Weekday(i)
            | Value::Duration(i) => Some(*i),
            _ => None,
        }
    }

    /// The text of a string-kinded value.
    pub fn string(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Html(s) => Some(s),
            _ => None,
        }
    }

    /// Go's `indirect`: follows pointers; `true` when a nil pointer stopped it.
    pub fn indirect(&self) -> (Value, bool) {
        match self {
            Value::Sample(Some(s)) => (Value::SampleStruct(s.clone()), false),
            Value::Sample(None) => (self.clone(), true),
            Value::TimePtr(t) => (Value::Time(**t), false),
            Value::DurationPtr(d) => (Value::Duration(**d), false),
            Value::NilInterface => (self.clone(), true),
            v => (v.clone(), false),
        }
    }

    /// The length of a string, map or slice (`len`), if it has one.
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::Str(s) | Value::Html(s) => Some(s.len()),
            Value::Labels(m) => Some(m.len()),
            Value::Args(m) => Some(m.len()),
            Value::Query(q) => Some(q.len()),
            _ => None,
        }
    }

    /// Go's `isTrue`: the truth of a value in `if`, `with`, `and`, `or`, `not`.
    pub fn truth(&self) -> bool {
        match self {
            Value::Invalid | Value::NilInterface => false,
            Value::Bool(b) => *b,
            Value::Float(f) => *f != 0.0,
            Value::Complex(re, im) => *re != 0.0 || *im != 0.0,
            Value::Uint8(u) => *u != 0,
            Value::Sample(s) => s.is_some(),
            Value::SampleStruct(_) | Value::Time(_) | Value::Data(_) => true,
            Value::DurationPtr(_) | Value::TimePtr(_) => true,
            v => v.int().map(|i| i != 0).or_else(|| v.len().map(|l| l > 0)).unwrap_or(false),
        }
    }
}
