//! Go's `fmt` printing (`Sprintf`, `Sprint`, `Sprintln`) for template values:
//! every verb, flag, width and precision, argument indexes, and the `%!`
//! error forms (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA ...)`).
//!
//! Addresses are the one thing that cannot match: Go prints a pointer nested
//! in a value (a query result's elements) as its heap address, which is
//! different on every run. We print a fixed, plausible one.

use std::fmt::Write;

use super::gotime::{duration_string, month_name, weekday_name};
use super::value::{DATA_TYPE, Kind, Value};
use crate::gofmt;

/// The address printed for any non-nil pointer (see the module comment).
const FAKE_ADDRESS: u64 = 0x00c0_0001_0000;

const LDIGITS: &[u8; 17] = b"0123456789abcdefx";
const UDIGITS: &[u8; 17] = b"0123456789ABCDEFX";

#[derive(Clone, Copy, Default)]
struct Flags {
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
}

/// What `badVerb` describes: the argument as passed, or a value reached by
/// reflection inside it.
#[derive(Clone)]
enum Current {
    None,
    Arg(Value),
    Reflected(Value),
}

struct Printer {
    buf: String,
    f: Flags,
    wid: i64,
    prec: i64,
    current: Current,
    erroring: bool,
    reordered: bool,
    good_arg_num: bool,
}

/// `fmt.Sprintf(format, args...)`.
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer::new();
    p.do_printf(format, args);
    p.buf
}

/// `fmt.Sprint(args...)`: spaces between operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut p = Printer::new();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = arg.kind() == Kind::String;
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// `fmt.Sprintln(args...)`.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// `fmt.Sprintf("%v", reflectValue)`, which error messages use: like
/// printing the value itself, except that a missing value reads
/// `<invalid reflect.Value>`.
pub(super) fn sprint_reflected(v: &Value) -> String {
    let mut p = Printer::new();
    if matches!(v, Value::Invalid) {
        p.print_value(v, 'v', 0);
    } else {
        p.print_arg(v, 'v');
    }
    p.buf
}

/// `fmt.Sprintf("%s", reflectValue)`.
pub(super) fn sprint_reflected_s(v: &Value) -> String {
    let mut p = Printer::new();
    if matches!(v, Value::Invalid) {
        p.print_value(v, 's', 0);
    } else {
        p.print_arg(v, 's');
    }
    p.buf
}

/// Go's `tooLarge`: widths and precisions beyond a million are refused.
fn too_large(x: i64) -> bool {
    !(-1_000_000..=1_000_000).contains(&x)
}

/// Go's `parsenum`: a decimal number at `s[start..end]`, or none.
fn parse_num(s: &[u8], start: usize, end: usize) -> (i64, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num = 0i64;
    let mut isnum = false;
    let mut i = start;
    while i < end && s[i].is_ascii_digit() {
        if too_large(num) {
            return (0, false, end);
        }
        num = num * 10 + i64::from(s[i] - b'0');
        isnum = true;
        i += 1;
    }
    (num, isnum, i)
}

/// Go's `intFromArg`: an int-kinded argument used as `*` width/precision.
fn int_from_arg(args: &[Value], arg_num: usize) -> (i64, bool, usize) {
    let Some(arg) = args.get(arg_num) else {
        return (0, false, arg_num);
    };
    let (mut num, mut is_int) = match arg {
        Value::Uint8(u) => (i64::from(*u), true),
        v => v.int().map_or((0, false), |i| (i, true)),
    };
    if too_large(num) {
        num = 0;
        is_int = false;
    }
    (num, is_int, arg_num + 1)
}

/// Go's `parseArgNumber`: `[n]` at the start of `format`, as a 0-based index,
/// the bytes it takes and whether it parsed.
fn parse_arg_number(format: &[u8]) -> (i64, usize, bool) {
    if format.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..format.len() {
        if format[i] == b']' {
            let (width, ok, newi) = parse_num(format, 1, i);
            if !ok || newi != i {
                return (0, i + 1, false);
            }
            return (width - 1, i + 1, true);
        }
    }
    (0, 1, false)
}

impl Printer {
    fn new() -> Printer {
        Printer {
            buf: String::new(),
            f: Flags::default(),
            wid: 0,
            prec: 0,
            current: Current::None,
            erroring: false,
            reordered: false,
            good_arg_num: true,
        }
    }

    fn clear_flags(&mut self) {
        self.f = Flags::default();
        self.wid = 0;
        self.prec = 0;
    }

    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &[u8],
        i: usize,
        num_args: usize,
    ) -> (usize, usize, bool) {
        if format.len() <= i || format[i] != b'[' {
            return (arg_num, i, false);
        }
        self.reordered = true;
        let (index, wid, ok) = parse_arg_number(&format[i..]);
        if ok && index >= 0 && (index as usize) < num_args {
            return (index as usize, i + wid, true);
        }
        self.good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    fn do_printf(&mut self, format: &str, args: &[Value]) {
        let fb = format.as_bytes();
        let end = fb.len();
        let mut arg_num = 0usize;
        let mut after_index;
        self.reordered = false;
        let mut i = 0;
        'format: while i < end {
            self.good_arg_num = true;
            let last = i;
            while i < end && fb[i] != b'%' {
                i += 1;
            }
            if i > last {
                self.buf.push_str(&format[last..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.clear_flags();
            while i < end {
                let c = fb[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = true,
                    b'+' => self.f.plus = true,
                    b'-' => self.f.minus = true,
                    b' ' => self.f.space = true,
                    _ => {
                        // The common case: a lower-case verb with flags only.
                        if c.is_ascii_lowercase() && arg_num < args.len() {
                            if c == b'v' {
                                self.f.sharp_v = self.f.sharp;
                                self.f.sharp = false;
                                self.f.plus_v = self.f.plus;
                                self.f.plus = false;
                            }
                            self.print_arg(&args[arg_num], c as char);
                            arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break;
                    }
                }
                i += 1;
            }

            (arg_num, i, after_index) = self.arg_number(arg_num, fb, i, args.len());

            if i < end && fb[i] == b'*' {
                i += 1;
                let (wid, present, next) = int_from_arg(args, arg_num);
                self.wid = wid;
                self.f.wid_present = present;
                arg_num = next;
                if !self.f.wid_present {
                    self.buf.push_str("%!(BADWIDTH)");
                }
                if self.wid < 0 {
                    self.wid = -self.wid;
                    self.f.minus = true;
                    self.f.zero = false;
                }
                after_index = false;
            } else {
                let (wid, present, next) = parse_num(fb, i, end);
                self.wid = wid;
                self.f.wid_present = present;
                i = next;
                if after_index && self.f.wid_present {
                    self.good_arg_num = false;
                }
            }

            if i + 1 < end && fb[i] == b'.' {
                i += 1;
                if after_index {
                    self.good_arg_num = false;
                }
                (arg_num, i, after_index) = self.arg_number(arg_num, fb, i, args.len());
                if i < end && fb[i] == b'*' {
                    i += 1;
                    let (prec, present, next) = int_from_arg(args, arg_num);
                    self.prec = prec;
                    self.f.prec_present = present;
                    arg_num = next;
                    if self.prec < 0 {
                        self.prec = 0;
                        self.f.prec_present = false;
                    }
                    if !self.f.prec_present {
                        self.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (prec, present, next) = parse_num(fb, i, end);
                    self.prec = prec;
                    self.f.prec_present = present;
                    i = next;
                    if !self.f.prec_present {
                        self.prec = 0;
                        self.f.prec_present = true;
                    }
                }
            }

            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, fb, i, args.len());
            }

            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let Some(verb) = format[i..].chars().next() else {
                break;
            };
            i += verb.len_utf8();

            if verb == '%' {
                self.buf.push('%');
            } else if !self.good_arg_num {
                let _ = write!(self.buf, "%!{verb}(BADINDEX)");
            } else if arg_num >= args.len() {
                let _ = write!(self.buf, "%!{verb}(MISSING)");
            } else {
                if verb == 'v' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }

        if !self.reordered && arg_num < args.len() {
            self.clear_flags();
            self.buf.push_str("%!(EXTRA ");
            for (i, arg) in args[arg_num..].iter().enumerate() {
                if i > 0 {
                    self.buf.push_str(", ");
                }
                if is_nil_arg(arg) {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(arg.type_name());
                    self.buf.push('=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(')');
        }
    }

    // Padding.

    fn write_padding(&mut self, n: i64) {
        let pad = if self.f.zero && !self.f.minus { '0' } else { ' ' };
        for _ in 0..n.max(0) {
            self.buf.push(pad);
        }
    }

    fn pad(&mut self, s: &str) {
        if !self.f.wid_present || self.wid == 0 {
            self.buf.push_str(s);
            return;
        }
        let width = self.wid - s.chars().count() as i64;
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(width);
        } else {
            self.write_padding(width);
            self.buf.push_str(s);
        }
    }

    // Arguments.

    fn print_arg(&mut self, arg: &Value, verb: char) {
        self.current = Current::Arg(arg.clone());
        if is_nil_arg(arg) {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb),
            }
            return;
        }
        match verb {
            'T' => {
                self.fmt_s(arg.type_name());
                return;
            }
            'p' => {
                self.fmt_pointer(arg, 'p');
                return;
            }
            _ => {}
        }
        match arg {
            Value::Bool(b) => self.fmt_bool(*b, verb),
            Value::Float(f) => self.fmt_float(*f, verb),
            Value::Complex(re, im) => self.fmt_complex(*re, *im, verb),
            Value::Int(i) | Value::Int64(i) => self.fmt_integer(*i as u64, true, verb),
            Value::Uint8(u) => self.fmt_integer(u64::from(*u), false, verb),
            Value::Str(s) => self.fmt_string(s, verb),
            _ => {
                if !self.handle_methods(arg, verb) {
                    self.print_value(arg, verb, 0);
                }
            }
        }
    }

    /// Go's `handleMethods`: `GoString` for `%#v`, `String` for the string
    /// verbs. Only the time types have such methods here.
    fn handle_methods(&mut self, v: &Value, verb: char) -> bool {
        if self.erroring {
            return false;
        }
        if self.f.sharp_v {
            let text = match v {
                Value::Time(t) => t.go_string(),
                Value::TimePtr(t) => t.go_string(),
                _ => return false,
            };
            self.fmt_s(&text);
            return true;
        }
        if !matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
            return false;
        }
        let text = match v {
            Value::Time(t) => t.string(),
            Value::TimePtr(t) => t.string(),
            Value::Duration(d) => duration_string(*d),
            Value::DurationPtr(d) => duration_string(**d),
            Value::Month(m) => month_name(*m),
            Value::Weekday(d) => weekday_name(*d),
            _ => return false,
        };
        self.fmt_string(&text, verb);
        true
    }

    fn print_value(&mut self, value: &Value, verb: char, depth: usize) {
        if depth > 0 && !matches!(value, Value::Invalid) && self.handle_methods(value, verb) {
            return;
        }
        self.current = Current::Reflected(value.clone());
        match value {
            Value::Invalid => {
                if depth == 0 {
                    self.buf.push_str("<invalid reflect.Value>");
                } else if verb == 'v' {
                    self.buf.push_str("<nil>");
                } else {
                    self.bad_verb(verb);
                }
            }
            Value::NilInterface => {
                if self.f.sharp_v {
                    self.buf.push_str("interface {}(nil)");
                } else {
                    self.buf.push_str("<nil>");
                }
            }
            Value::Bool(b) => self.fmt_bool(*b, verb),
            Value::Int(i)
            | Value::Int64(i)
            | Value::Month(i)
            | Value::Weekday(i)
            | Value::Duration(i) => {
                self.fmt_integer(*i as u64, true, verb);
            }
            Value::Uint8(u) => self.fmt_integer(u64::from(*u), false, verb),
            Value::Float(f) => self.fmt_float(*f, verb),
            Value::Complex(re, im) => self.fmt_complex(*re, *im, verb),
            Value::Str(s) | Value::Html(s) => self.fmt_string(s, verb),
            Value::Labels(m) => {
                let entries: Vec<(Value, Value)> =
                    m.iter().map(|(k, v)| (Value::str(k), Value::str(v))).collect();
                self.print_map(value.type_name(), &entries, verb, depth);
            }
            Value::Args(m) => {
                let entries: Vec<(Value, Value)> =
                    m.iter().map(|(k, v)| (Value::str(k), v.clone())).collect();
                self.print_map(value.type_name(), &entries, verb, depth);
            }
            Value::Data(d) => {
                let fields = [
                    ("Labels", Value::Labels(d.labels.clone())),
                    ("ExternalLabels", Value::Labels(d.external_labels.clone())),
                    ("ExternalURL", Value::Str(d.external_url.clone())),
                    ("Value", Value::Float(d.value)),
                ];
                self.print_struct(DATA_TYPE, &fields, verb, depth);
            }
            Value::SampleStruct(s) => {
                let fields =
                    [("Labels", Value::Labels(s.labels.clone())), ("Value", Value::Float(s.value))];
                self.print_struct("template.sample", &fields, verb, depth);
            }
            Value::Time(t) => {
                let (wall, ext) = t.struct_fields();
                let fields = [
                    ("wall", Value::Int64(wall as i64)),
                    ("ext", Value::Int64(ext)),
                    ("loc", Value::Invalid),
                ];
                self.print_time_struct(&fields, verb, depth);
            }
            Value::Query(q) => {
                if self.f.sharp_v {
                    self.buf.push_str("template.queryResult{");
                } else {
                    self.buf.push('[');
                }
                for i in 0..q.len() {
                    if i > 0 {
                        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                    }
                    self.print_value(&Value::Sample(q.get(i)), verb, depth + 1);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
            Value::Sample(Some(s)) if depth == 0 => {
                self.buf.push('&');
                self.print_value(&Value::SampleStruct(s.clone()), verb, depth + 1);
            }
            Value::TimePtr(t) if depth == 0 => {
                self.buf.push('&');
                self.print_value(&Value::Time(**t), verb, depth + 1);
            }
            Value::Sample(_) | Value::TimePtr(_) | Value::DurationPtr(_) => {
                self.fmt_pointer(value, verb)
            }
        }
    }

    fn print_map(&mut self, type_name: &str, entries: &[(Value, Value)], verb: char, depth: usize) {
        if self.f.sharp_v {
            self.buf.push_str(type_name);
            self.buf.push('{');
        } else {
            self.buf.push_str("map[");
        }
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
            }
            self.print_value(k, verb, depth + 1);
            self.buf.push(':');
            self.print_value(v, verb, depth + 1);
        }
        self.buf.push(if self.f.sharp_v { '}' } else { ']' });
    }

    fn print_struct(
        &mut self,
        type_name: &str,
        fields: &[(&str, Value)],
        verb: char,
        depth: usize,
    ) {
        if self.f.sharp_v {
            self.buf.push_str(type_name);
        }
        self.buf.push('{');
        for (i, (name, v)) in fields.iter().enumerate() {
            if i > 0 {
                self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
            }
            if self.f.plus_v || self.f.sharp_v {
                self.buf.push_str(name);
                self.buf.push(':');
            }
            self.print_value(v, verb, depth + 1);
        }
        self.buf.push('}');
    }

    /// `time.Time`'s unexported fields, for verbs its `String` does not serve;
    /// `loc` is a nil `*time.Location`.
    fn print_time_struct(&mut self, fields: &[(&str, Value)], verb: char, depth: usize) {
        self.buf.push('{');
        for (i, (name, v)) in fields.iter().enumerate() {
            if i > 0 {
                self.buf.push(' ');
            }
            if self.f.plus_v {
                self.buf.push_str(name);
                self.buf.push(':');
            }
            match (name, v) {
                (&"wall", Value::Int64(w)) => self.fmt_integer(*w as u64, false, verb),
                (&"loc", _) => self.fmt_nil_pointer("*time.Location", verb),
                _ => self.print_value(v, verb, depth + 1),
            }
        }
        self.buf.push('}');
    }

    fn fmt_nil_pointer(&mut self, type_name: &str, verb: char) {
        match verb {
            'v' if self.f.sharp_v => {
                let _ = write!(self.buf, "({type_name})(nil)");
            }
            'v' => self.pad("<nil>"),
            'p' => self.fmt_0x64(0, !self.f.sharp),
            'b' | 'o' | 'd' | 'x' | 'X' => self.fmt_integer(0, false, verb),
            _ => self.bad_verb(verb),
        }
    }

    fn fmt_pointer(&mut self, value: &Value, verb: char) {
        let address = match value {
            Value::Sample(None) => 0,
            Value::Sample(Some(_)) | Value::TimePtr(_) | Value::DurationPtr(_) => FAKE_ADDRESS,
            Value::Labels(_) | Value::Args(_) | Value::Query(_) => FAKE_ADDRESS,
            _ => {
                self.bad_verb(verb);
                return;
            }
        };
        match verb {
            'v' if self.f.sharp_v => {
                let _ = write!(self.buf, "({})(", value.type_name());
                if address == 0 {
                    self.buf.push_str("nil");
                } else {
                    self.fmt_0x64(address, true);
                }
                self.buf.push(')');
            }
            'v' if address == 0 => self.pad("<nil>"),
            'v' | 'p' => self.fmt_0x64(address, !self.f.sharp),
            'b' | 'o' | 'd' | 'x' | 'X' => self.fmt_integer(address, false, verb),
            _ => self.bad_verb(verb),
        }
    }

    fn bad_verb(&mut self, verb: char) {
        self.erroring = true;
        let _ = write!(self.buf, "%!{verb}(");
        match self.current.clone() {
            Current::Arg(arg) if !is_nil_arg(&arg) => {
                self.buf.push_str(arg.type_name());
                self.buf.push('=');
                self.print_arg(&arg, 'v');
            }
            Current::Reflected(v) if !matches!(v, Value::Invalid) => {
                self.buf.push_str(v.type_name());
                self.buf.push('=');
                self.print_value(&v, 'v', 0);
            }
            _ => self.buf.push_str("<nil>"),
        }
        self.buf.push(')');
        self.erroring = false;
    }

    // Basic kinds.

    fn fmt_bool(&mut self, b: bool, verb: char) {
        match verb {
            't' | 'v' => self.pad(if b { "true" } else { "false" }),
            _ => self.bad_verb(verb),
        }
    }

    fn fmt_0x64(&mut self, v: u64, leading_0x: bool) {
        let sharp = self.f.sharp;
        self.f.sharp = leading_0x;
        self.fmt_integer_base(v, 16, false, 'v', LDIGITS);
        self.f.sharp = sharp;
    }

    fn fmt_integer(&mut self, v: u64, signed: bool, verb: char) {
        match verb {
            'v' if self.f.sharp_v && !signed => self.fmt_0x64(v, true),
            'v' | 'd' => self.fmt_integer_base(v, 10, signed, verb, LDIGITS),
            'b' => self.fmt_integer_base(v, 2, signed, verb, LDIGITS),
            'o' | 'O' => self.fmt_integer_base(v, 8, signed, verb, LDIGITS),
            'x' => self.fmt_integer_base(v, 16, signed, verb, LDIGITS),
            'X' => self.fmt_integer_base(v, 16, signed, verb, UDIGITS),
            'c' => {
                let c = u32::try_from(v).ok().and_then(char::from_u32).unwrap_or('\u{fffd}');
                self.pad(c.encode_utf8(&mut [0; 4]));
            }
            'q' => {
                let r = u32::try_from(v).unwrap_or(0x110000);
                let quoted = gofmt::quote_rune(r, self.f.plus);
                self.pad(&quoted);
            }
            'U' => self.fmt_unicode(v),
            _ => self.bad_verb(verb),
        }
    }

    fn fmt_integer_base(&mut self, v: u64, base: u64, signed: bool, verb: char, digits: &[u8; 17]) {
        let negative = signed && (v as i64) < 0;
        let mut u = if negative { (v as i64).unsigned_abs() } else { v };
        let mut prec: i64 = 0;
        if self.f.prec_present {
            prec = self.prec;
            if prec == 0 && u == 0 {
                let zero = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.wid);
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero && !self.f.minus && self.f.wid_present {
            prec = self.wid;
            if negative || self.f.plus || self.f.space {
                prec -= 1;
            }
        }
        let mut buf: Vec<u8> = Vec::new();
        loop {
            buf.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while (buf.len() as i64) < prec {
            buf.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => buf.extend_from_slice(b"b0"),
                8 if buf.last() != Some(&b'0') => buf.push(b'0'),
                16 => {
                    buf.push(digits[16]);
                    buf.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            buf.extend_from_slice(b"o0");
        }
        if negative {
            buf.push(b'-');
        } else if self.f.plus {
            buf.push(b'+');
        } else if self.f.space {
            buf.push(b' ');
        }
        buf.reverse();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&text);
        self.f.zero = zero;
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut text = format!("U+{u:04X}");
        if self.f.prec_present && self.prec > 4 {
            let digits = format!("{u:X}");
            let width = self.prec as usize;
            text = format!("U+{digits:0>width$}");
        }
        let printable =
            u32::try_from(u).ok().and_then(char::from_u32).filter(|&c| gofmt::is_print(c));
        if let Some(c) = printable.filter(|_| self.f.sharp) {
            let _ = write!(text, " '{c}'");
        }
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&text);
        self.f.zero = zero;
    }

    fn fmt_float(&mut self, v: f64, verb: char) {
        match verb {
            'v' => self.fmt_float_with(v, b'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float_with(v, verb as u8, -1),
            'f' | 'e' | 'E' => self.fmt_float_with(v, verb as u8, 6),
            'F' => self.fmt_float_with(v, b'f', 6),
            _ => self.bad_verb(verb),
        }
    }

    fn fmt_float_with(&mut self, v: f64, verb: u8, default_prec: i64) {
        let prec = if self.f.prec_present { self.prec } else { default_prec };
        let formatted = gofmt::format_float(v, verb, prec.clamp(-1, i64::from(i32::MAX)) as i32);
        let mut num: Vec<u8> = if formatted.starts_with(['-', '+']) {
            formatted.into_bytes()
        } else {
            let mut n = vec![b'+'];
            n.extend_from_slice(formatted.as_bytes());
            n
        };
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num.get(1).is_some_and(|&c| c == b'I' || c == b'N') {
            let zero = self.f.zero;
            self.f.zero = false;
            if num[1] == b'N' && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&String::from_utf8_lossy(&num));
            self.f.zero = zero;
            return;
        }
        if self.f.sharp && verb != b'b' {
            let mut digits: i64 = match verb {
                b'v' | b'g' | b'G' | b'x' => {
                    if prec == -1 {
                        6
                    } else {
                        prec
                    }
                }
                _ => 0,
            };
            let mut tail: Vec<u8> = Vec::new();
            let mut has_point = false;
            let mut saw_nonzero = false;
            let mut i = 1;
            while i < num.len() {
                match num[i] {
                    b'.' => has_point = true,
                    b'p' | b'P' => {
                        tail.extend_from_slice(&num[i..]);
                        num.truncate(i);
                        break;
                    }
                    b'e' | b'E' if verb != b'x' && verb != b'X' => {
                        tail.extend_from_slice(&num[i..]);
                        num.truncate(i);
                        break;
                    }
                    c => {
                        if c != b'0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                    }
                }
                i += 1;
            }
            if !has_point {
                if num.len() == 2 && num[1] == b'0' {
                    digits -= 1;
                }
                num.push(b'.');
            }
            while digits > 0 {
                num.push(b'0');
                digits -= 1;
            }
            num.extend_from_slice(&tail);
        }
        if self.f.plus || num[0] != b'+' {
            if self.f.zero && !self.f.minus && self.f.wid_present && self.wid > num.len() as i64 {
                self.buf.push(num[0] as char);
                self.write_padding(self.wid - num.len() as i64);
                self.buf.push_str(&String::from_utf8_lossy(&num[1..]));
                return;
            }
            self.pad(&String::from_utf8_lossy(&num));
            return;
        }
        self.pad(&String::from_utf8_lossy(&num[1..]));
    }

    fn fmt_complex(&mut self, re: f64, im: f64, verb: char) {
        match verb {
            'v' | 'b' | 'g' | 'G' | 'x' | 'X' | 'f' | 'F' | 'e' | 'E' => {
                let plus = self.f.plus;
                self.buf.push('(');
                self.fmt_float(re, verb);
                self.f.plus = true;
                self.fmt_float(im, verb);
                self.buf.push_str("i)");
                self.f.plus = plus;
            }
            _ => self.bad_verb(verb),
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char) {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, LDIGITS),
            'X' => self.fmt_sx(s, UDIGITS),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb),
        }
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        let cut = s.char_indices().nth(self.prec.max(0) as usize).filter(|_| self.f.prec_present);
        cut.map_or(s, |(i, _)| &s[..i])
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s).to_owned();
        self.pad(&s);
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        let quoted = if self.f.sharp && gofmt::can_backquote(s) {
            format!("`{s}`")
        } else if self.f.plus {
            gofmt::quote_to_ascii(s)
        } else {
            gofmt::quote(s)
        };
        self.pad(&quoted);
    }

    fn fmt_sx(&mut self, s: &str, digits: &[u8; 17]) {
        let bytes = s.as_bytes();
        let mut length = bytes.len() as i64;
        if self.f.prec_present && self.prec < length {
            length = self.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.wid);
            }
            return;
        }
        if self.f.wid_present && self.wid > width && !self.f.minus {
            self.write_padding(self.wid - width);
        }
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(digits[16] as char);
        }
        for (i, &c) in bytes.iter().take(length as usize).enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(digits[16] as char);
                }
            }
            self.buf.push(digits[usize::from(c >> 4)] as char);
            self.buf.push(digits[usize::from(c & 0xf)] as char);
        }
        if self.f.wid_present && self.wid > width && self.f.minus {
            self.write_padding(self.wid - width);
        }
    }
}

/// Whether the value, passed as an `interface {}` argument, is nil.
fn is_nil_arg(v: &Value) -> bool {
    matches!(v, Value::Invalid | Value::NilInterface)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::str(x)
    }

    #[test]
    fn verbs_and_flags_match_go() {
        let cases: Vec<(&str, Vec<Value>, &str)> = vec![
            ("%d|%5d|%-5d|%05d|%+d|% d", vec![Value::Int(42); 6], "42|   42|42   |00042|+42| 42"),
            (
                "%x|%X|%#x|%o|%#o|%O|%b|%#b",
                vec![Value::Int(255); 8],
                "ff|FF|0xff|377|0377|0o377|11111111|0b11111111",
            ),
            (
                "%.3d|%8.3d|%08.3d|%.0d",
                vec![Value::Int(7), Value::Int(7), Value::Int(7), Value::Int(0)],
                "007|     007|     007|",
            ),
            ("%c|%q|%U|%#U", vec![Value::Int(0x263a); 4], "☺|'☺'|U+263A|U+263A '☺'"),
            (
                "%s|%q|%x|% X|%#q|%.2s|%5.1s|%-4s|",
                vec![s("hé"); 8],
                "hé|\"hé\"|68c3a9|68 C3 A9|`hé`|hé|    h|hé  |",
            ),
            (
                "%v|%.2f|%8.3f|%-8.2f|%+.1e|%g|%G|%08.2f",
                vec![Value::Float(-1.23456); 8],
                "-1.23456|-1.23|  -1.235|-1.23   |-1.2e+00|-1.23456|-1.23456|-0001.23",
            ),
            (
                "%v|%f|%5.1f|%+v|%05v",
                vec![Value::Float(f64::INFINITY); 5],
                "+Inf|+Inf| +Inf|+Inf| +Inf",
            ),
            ("%v|%+v|% v|%8v", vec![Value::Float(f64::NAN); 4], "NaN|NaN| NaN|     NaN"),
            ("%#g|%#.3g|%#v", vec![Value::Float(1.0); 3], "1.00000|1.00|1"),
            (
                "%e|%E|%.0e|%x",
                vec![Value::Float(1e6); 4],
                "1.000000e+06|1.000000E+06|1e+06|0x1.e848p+19",
            ),
            ("%t|%v|%5t|%d", vec![Value::Bool(true); 4], "true|true| true|%!d(bool=true)"),
            ("%v %v", vec![Value::Complex(1.0, -2.5); 2], "(1-2.5i) (1-2.5i)"),
        ];
        for (format, args, want) in cases {
            assert_eq!(sprintf(format, &args), want, "{format}");
        }
    }

    #[test]
    fn error_forms_match_go() {
        assert_eq!(sprintf("%d", &[s("foo")]), "%!d(string=foo)");
        assert_eq!(sprintf("%s %s", &[s("a")]), "a %!s(MISSING)");
        assert_eq!(
            sprintf("%s", &[s("a"), Value::Int(1), Value::Invalid]),
            "a%!(EXTRA int=1, <nil>)"
        );
        assert_eq!(sprintf("%*d", &[s("x"), Value::Int(1)]), "%!(BADWIDTH)1");
        assert_eq!(sprintf("%.*d", &[s("x"), Value::Int(1)]), "%!(BADPREC)1");
        assert_eq!(sprintf("%", &[]), "%!(NOVERB)");
        assert_eq!(sprintf("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)]), "2 1");
        assert_eq!(sprintf("%[3]d", &[Value::Int(1)]), "%!d(BADINDEX)");
        assert_eq!(sprintf("%!", &[Value::Int(1)]), "%!!(int=1)");
        assert_eq!(
            sprintf("%d %v %s", &[Value::Invalid, Value::Invalid, Value::NilInterface]),
            "%!d(<nil>) <nil> %!s(<nil>)"
        );
        assert_eq!(
            sprintf("%*d|%-*d", &[Value::Int(4), Value::Int(1), Value::Int(-3), Value::Int(2)]),
            "   1|2  "
        );
        assert_eq!(sprintf("100%%", &[]), "100%");
    }

    #[test]
    fn composite_values_print_like_go() {
        let labels: super::super::value::LabelMap = std::rc::Rc::new(
            [("b".to_owned(), "2".to_owned()), ("a".to_owned(), "1".to_owned())]
                .into_iter()
                .collect(),
        );
        let m = Value::Labels(labels);
        assert_eq!(
            sprintf("%v|%+v|%#v|%s|%T", &[m.clone(), m.clone(), m.clone(), m.clone(), m]),
            "map[a:1 b:2]|map[a:1 b:2]|map[string]string{\"a\":\"1\", \"b\":\"2\"}|map[a:1 b:2]|map[string]string"
        );
        assert_eq!(
            sprint(&[s("a"), Value::Int(1), Value::Int(2), s("b"), Value::Float(0.5)]),
            "a1 2b0.5"
        );
        assert_eq!(sprintln(&[s("a"), Value::Int(1)]), "a 1\n");
        assert_eq!(sprint_reflected(&Value::Invalid), "<invalid reflect.Value>");
    }
}
