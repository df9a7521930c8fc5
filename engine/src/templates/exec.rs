//! Execution, as Go's `text/template/exec.go` does it: the same evaluation
//! order, the same "current node" bookkeeping (an error names the node the
//! evaluator last looked at, which is not always the obvious one), the same
//! argument conversions and type checks, and the same messages.

use std::rc::Rc;

use super::TemplateQuerier;
use super::builtins::{Builtin, printable};
use super::functions::PromFunc;
use super::methods::{self, Method};
use super::parse::{
    Arg, BranchNode, CommandNode, ListNode, Node, NumberNode, PipeNode, TemplateNode, TreeSet,
};
use super::printf;
use super::value::{Data, Value};
use crate::gofmt;

/// Deepest nesting of template calls, `if`/`range`/`with` and parentheses
/// during execution. Go stops runaway recursion at 100000 template calls,
/// which would overflow a 1 MiB (WebAssembly) stack long before (up to
/// 2.5 KiB a level unoptimized), so we stop earlier, with Go's message:
/// only runaway recursion gets here.
const MAX_DEPTH: usize = 300;
/// Work and output bounds: Go has none, but a template must not hang the
/// evaluator (`{{range 1000000000}}`) or exhaust its memory. One `printf`
/// can pad to ten million characters, so output may grow beyond that.
const MAX_STEPS: usize = 1_000_000;
const MAX_OUTPUT: usize = 16 << 20;

/// What functions can reach outside the template.
pub(super) struct Env<'a> {
    pub querier: &'a mut dyn TemplateQuerier,
    /// Evaluation time, milliseconds since the epoch.
    pub ts_ms: i64,
    pub external_url: &'a str,
}

/// A parameter type of a function or method, as `text/template` checks and
/// converts arguments against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Param {
    /// `interface {}`.
    Any,
    /// `reflect.Value`: anything, even no value (the builtins take these).
    Reflect,
    Str,
    Int,
    Duration,
    Time,
    SamplePtr,
    QueryResult,
}

impl Param {
    fn type_name(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Reflect => "reflect.Value",
            Param::Str => "string",
            Param::Int => "int",
            Param::Duration => "time.Duration",
            Param::Time => "time.Time",
            Param::SamplePtr => "*template.sample",
            Param::QueryResult => "template.queryResult",
        }
    }

    /// Go's `canBeNil`.
    fn can_be_nil(self) -> bool {
        matches!(self, Param::Any | Param::Reflect | Param::SamplePtr | Param::QueryResult)
    }

    /// `reflect.Zero` of the type, for a nil argument.
    fn zero(self) -> Value {
        match self {
            Param::SamplePtr => Value::Sample(None),
            Param::QueryResult => Value::Query(super::value::QueryResult::new(Vec::new())),
            _ => Value::Invalid,
        }
    }

    /// Go's `AssignableTo`.
    fn accepts(self, v: &Value) -> bool {
        match self {
            Param::Any | Param::Reflect => true,
            Param::Str => matches!(v, Value::Str(_)),
            Param::Int => matches!(v, Value::Int(_)),
            Param::Duration => matches!(v, Value::Duration(_)),
            Param::Time => matches!(v, Value::Time(_)),
            Param::SamplePtr => matches!(v, Value::Sample(_)),
            Param::QueryResult => matches!(v, Value::Query(_)),
        }
    }
}

/// The shape of a function: fixed parameters, an optional variadic element
/// type, and (for a method Go would refuse to call) the refusal.
#[derive(Clone, Copy)]
pub(super) struct Signature {
    pub params: &'static [Param],
    pub variadic: Option<Param>,
    pub bad_results: Option<&'static str>,
}

impl Signature {
    pub const fn fixed(params: &'static [Param]) -> Signature {
        Signature { params, variadic: None, bad_results: None }
    }

    pub const fn variadic(params: &'static [Param], elem: Param) -> Signature {
        Signature { params, variadic: Some(elem), bad_results: None }
    }
}

enum Callee {
    Builtin(Builtin),
    Prometheus(PromFunc),
    Method(Method),
}

impl Callee {
    fn signature(&self) -> Signature {
        match self {
            Callee::Builtin(b) => b.signature(),
            Callee::Prometheus(f) => f.signature(),
            Callee::Method(m) => m.signature,
        }
    }
}

/// The node an error is reported at.
#[derive(Clone, Copy)]
enum At<'t> {
    Node(&'t Node),
    List(&'t ListNode),
    Pipe(&'t PipeNode),
    Command(&'t CommandNode),
    Arg(&'t Arg),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::Node(n) => match n {
                Node::Text(t) => t.pos,
                Node::Action(a) => a.pos,
                Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
                Node::Template(t) => t.pos,
                Node::Break(p) | Node::Continue(p) => *p,
            },
            At::List(l) => l.pos,
            At::Pipe(p) => p.pos,
            At::Command(c) => c.pos,
            At::Arg(a) => a.pos(),
        }
    }

    fn text(&self) -> String {
        match self {
            At::Node(n) => n.to_string(),
            At::List(l) => l.to_string(),
            At::Pipe(p) => p.to_string(),
            At::Command(c) => c.to_string(),
            At::Arg(a) => a.to_string(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Control {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, String>;

struct Exec<'t, 'e, 'q> {
    set: &'t TreeSet,
    text: &'t str,
    parse_name: &'t str,
    /// The template being executed (a `define`d one inside `template`).
    name: &'t str,
    node: Option<At<'t>>,
    vars: Vec<(&'t str, Value)>,
    depth: usize,
    steps: usize,
    out: String,
    env: &'e mut Env<'q>,
}

/// Runs the template `name` of `set` (parsed from `text`) with `data` as dot.
pub(super) fn execute(
    set: &TreeSet,
    text: &str,
    name: &str,
    data: Rc<Data>,
    env: &mut Env<'_>,
) -> R<String> {
    let Some((name, root)) = set.trees.get_key_value(name) else {
        return Err(format!(
            "template: {name}: {} is an incomplete or empty template",
            gofmt::quote(name)
        ));
    };
    let dot = Value::Data(data);
    let mut exec = Exec {
        set,
        text,
        parse_name: name,
        name,
        node: None,
        vars: vec![("$", dot.clone())],
        depth: 0,
        steps: 0,
        out: String::new(),
        env,
    };
    exec.walk_list(&dot, root)?;
    Ok(exec.out)
}

impl<'t> Exec<'t, '_, '_> {
    fn at(&mut self, node: At<'t>) {
        self.node = Some(node);
    }

    /// Go's `state.errorf`: the message, located at the current node.
    fn errorf(&self, msg: impl std::fmt::Display) -> String {
        let Some(node) = self.node else {
            return format!("template: {}: {msg}", self.name);
        };
        let pos = node.pos().min(self.text.len());
        let before = self.text.get(..pos).unwrap_or("");
        let column = match before.rfind('\n') {
            Some(i) => pos - (i + 1),
            None => pos,
        };
        let line = 1 + before.matches('\n').count();
        format!(
            "template: {}:{line}:{column}: executing {} at <{}>: {msg}",
            self.parse_name,
            gofmt::quote(self.name),
            node.text()
        )
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.errorf(format_args!("template execution exceeded {MAX_STEPS} steps")));
        }
        Ok(())
    }

    fn enter(&mut self) -> R<()> {
        if self.depth >= MAX_DEPTH {
            return Err(self.errorf("exceeded maximum template depth (100000)"));
        }
        self.depth += 1;
        Ok(())
    }

    fn write(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(self.errorf(format_args!("template output exceeds {MAX_OUTPUT} bytes")));
        }
        self.out.push_str(s);
        Ok(())
    }

    // Variables.

    fn var_value(&self, name: &str) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.errorf(format_args!("undefined variable: {name}"))),
        }
    }

    fn set_var(&mut self, name: &str, value: Value) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.errorf(format_args!("undefined variable: {name}"))),
        }
    }

    fn set_top_var(&mut self, n: usize, value: Value) {
        let len = self.vars.len();
        if let Some(slot) = len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = value;
        }
    }

    // Walking.

    fn walk_list(&mut self, dot: &Value, list: &'t ListNode) -> R<Control> {
        self.at(At::List(list));
        for node in &list.nodes {
            let control = self.walk(dot, node)?;
            if control != Control::Normal {
                return Ok(control);
            }
        }
        Ok(Control::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> R<Control> {
        self.step()?;
        self.at(At::Node(node));
        match node {
            Node::Action(a) => {
                let value = self.eval_pipeline(dot, Some(&a.pipe))?;
                if a.pipe.decl.is_empty() {
                    self.at(At::Node(node));
                    let text = printf::sprint(&[printable(&value)]);
                    self.write(&text)?;
                }
                Ok(Control::Normal)
            }
            Node::If(b) => self.walk_if_or_with(false, dot, b),
            Node::With(b) => self.walk_if_or_with(true, dot, b),
            Node::Range(b) => self.walk_range(dot, node, b),
            Node::Template(t) => {
                self.walk_template(dot, node, t)?;
                Ok(Control::Normal)
            }
            Node::Text(t) => {
                self.write(&t.text)?;
                Ok(Control::Normal)
            }
            Node::Break(_) => Ok(Control::Break),
            Node::Continue(_) => Ok(Control::Continue),
        }
    }

    fn walk_if_or_with(&mut self, is_with: bool, dot: &Value, b: &'t BranchNode) -> R<Control> {
        self.enter()?;
        let mark = self.vars.len();
        let value = self.eval_pipeline(dot, Some(&b.pipe))?;
        let result = if value.truth() {
            if is_with { self.walk_list(&value, &b.list) } else { self.walk_list(dot, &b.list) }
        } else if let Some(else_list) = &b.else_list {
            self.walk_list(dot, else_list)
        } else {
            Ok(Control::Normal)
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        result
    }

    fn walk_range(&mut self, dot: &Value, node: &'t Node, r: &'t BranchNode) -> R<Control> {
        self.at(At::Node(node));
        self.enter()?;
        let mark_outer = self.vars.len();
        let (value, _) = self.eval_pipeline(dot, Some(&r.pipe))?.indirect();
        let mark = self.vars.len();
        let mut ran = false;
        let mut iterate = |exec: &mut Self, index: Value, elem: Value| -> R<bool> {
            ran = true;
            let decl = &r.pipe.decl;
            if let Some(first) = decl.first() {
                if r.pipe.is_assign {
                    let v = if decl.len() > 1 { index.clone() } else { elem.clone() };
                    exec.set_var(&first.ident[0], v)?;
                } else {
                    exec.set_top_var(1, elem.clone());
                }
            }
            if let Some(second) = decl.get(1) {
                if r.pipe.is_assign {
                    exec.set_var(&second.ident[0], elem.clone())?;
                } else {
                    exec.set_top_var(2, index);
                }
            }
            let control = exec.walk_list(&elem, &r.list);
            exec.vars.truncate(mark);
            Ok(control? == Control::Break)
        };
        match &value {
            Value::Int(_)
            | Value::Int64(_)
            | Value::Uint8(_)
            | Value::Month(_)
            | Value::Weekday(_)
            | Value::Duration(_) => {
                if r.pipe.decl.len() > 1 {
                    let shown = printf::sprint_reflected(&value);
                    return Err(self.errorf(format_args!(
                        "can't use {shown} to iterate over more than one variable"
                    )));
                }
                let n = match &value {
                    Value::Uint8(u) => i64::from(*u),
                    v => v.int().unwrap_or(0),
                };
                for i in 0..n.max(0) {
                    let elem = match &value {
                        Value::Int64(_) => Value::Int64(i),
                        Value::Uint8(_) => Value::Uint8(i as u8),
                        Value::Month(_) => Value::Month(i),
                        Value::Weekday(_) => Value::Weekday(i),
                        Value::Duration(_) => Value::Duration(i),
                        _ => Value::Int(i),
                    };
                    if iterate(self, Value::Invalid, elem)? {
                        break;
                    }
                }
            }
            Value::Query(q) => {
                for i in 0..q.len() {
                    let elem = Value::Sample(q.get(i));
                    if iterate(self, Value::Int(i as i64), elem)? {
                        break;
                    }
                }
            }
            Value::Labels(m) => {
                for (k, v) in m.iter() {
                    if iterate(self, Value::str(k), Value::str(v))? {
                        break;
                    }
                }
            }
            Value::Args(m) => {
                for (k, v) in m.iter() {
                    if iterate(self, Value::str(k), v.clone())? {
                        break;
                    }
                }
            }
            Value::Invalid => {}
            other => {
                let shown = printf::sprint_reflected(other);
                return Err(self.errorf(format_args!("range can't iterate over {shown}")));
            }
        }
        let result = match (&r.else_list, ran) {
            (Some(else_list), false) => self.walk_list(dot, else_list),
            _ => Ok(Control::Normal),
        };
        self.vars.truncate(mark_outer);
        self.depth -= 1;
        // break and continue end at their own range.
        result.map(|_| Control::Normal)
    }

    fn walk_template(&mut self, dot: &Value, node: &'t Node, t: &'t TemplateNode) -> R<()> {
        self.at(At::Node(node));
        let Some((name, root)) = self.set.trees.get_key_value(&t.name) else {
            return Err(self.errorf(format_args!("template {} not defined", gofmt::quote(&t.name))));
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.errorf("exceeded maximum template depth (100000)"));
        }
        let dot = self.eval_pipeline(dot, t.pipe.as_ref())?;
        self.depth += 1;
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", dot.clone())]);
        let saved_name = std::mem::replace(&mut self.name, name);
        let saved_node = self.node;
        let result = self.walk_list(&dot, root);
        self.vars = saved_vars;
        self.name = saved_name;
        self.node = saved_node;
        self.depth -= 1;
        result.map(|_| ())
    }

    // Evaluation.

    fn eval_pipeline(&mut self, dot: &Value, pipe: Option<&'t PipeNode>) -> R<Value> {
        let Some(pipe) = pipe else {
            return Ok(Value::Invalid);
        };
        self.at(At::Pipe(pipe));
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // A nil interface{} result is no value.
            value = Some(match v {
                Value::NilInterface => Value::Invalid,
                v => v,
            });
        }
        let value = value.unwrap_or(Value::Invalid);
        for var in &pipe.decl {
            let name = var.ident[0].as_str();
            if pipe.is_assign {
                self.set_var(name, value.clone())?;
            } else {
                self.vars.push((name, value.clone()));
            }
        }
        Ok(value)
    }

    /// A parenthesized pipeline, which nests.
    fn eval_nested_pipeline(&mut self, dot: &Value, pipe: &'t PipeNode) -> R<Value> {
        self.enter()?;
        let result = self.eval_pipeline(dot, Some(pipe));
        self.depth -= 1;
        result
    }

    fn not_a_function(&self, args: &'t [Arg], has_final: bool) -> R<()> {
        if args.len() > 1 || has_final {
            let first = args.first().map(ToString::to_string).unwrap_or_default();
            return Err(self.errorf(format_args!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t CommandNode, fin: Option<Value>) -> R<Value> {
        self.step()?;
        let Some(first) = cmd.args.first() else {
            return Err(self.errorf("empty command"));
        };
        match first {
            Arg::Field { ident, .. } => {
                return self.eval_field_node(dot, first, ident, Some(&cmd.args), fin);
            }
            Arg::Chain { .. } => return self.eval_chain_node(dot, first, Some(&cmd.args), fin),
            Arg::Identifier { name, .. } => {
                return self.eval_function(
                    dot,
                    first,
                    name,
                    At::Command(cmd),
                    Some(&cmd.args),
                    fin,
                );
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, fin.is_some())?;
                return self.eval_nested_pipeline(dot, p);
            }
            Arg::Variable(_) => return self.eval_variable_node(dot, first, Some(&cmd.args), fin),
            _ => {}
        }
        self.at(At::Arg(first));
        self.not_a_function(&cmd.args, fin.is_some())?;
        match first {
            Arg::Bool { value, .. } => Ok(Value::Bool(*value)),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Err(self.errorf("nil is not a command")),
            Arg::Number(n) => self.ideal_constant(first, n),
            Arg::String { text, .. } => Ok(Value::str(text)),
            other => Err(self.errorf(format_args!(
                "can't evaluate command {}",
                gofmt::quote(&other.to_string())
            ))),
        }
    }

    /// A number in a context without a type: its syntax decides.
    fn ideal_constant(&mut self, arg: &'t Arg, n: &NumberNode) -> R<Value> {
        self.at(At::Arg(arg));
        let text = n.text.as_str();
        let is_hex_int = text.len() > 2
            && text.starts_with('0')
            && text[1..].starts_with(['x', 'X'])
            && !text.contains(['p', 'P']);
        let is_rune = text.starts_with('\'');
        if n.is_complex {
            return Ok(Value::Complex(n.complex.0, n.complex.1));
        }
        if n.is_float && !is_hex_int && !is_rune && text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(n.float64));
        }
        if n.is_int {
            return Ok(Value::Int(n.int64));
        }
        if n.is_uint {
            return Err(self.errorf(format_args!("{text} overflows int")));
        }
        Ok(Value::Invalid)
    }

    fn eval_field_node(
        &mut self,
        dot: &Value,
        node: &'t Arg,
        ident: &'t [String],
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        self.at(At::Arg(node));
        self.eval_field_chain(dot, (dot.clone(), false), node, ident, args, fin)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Value,
        node: &'t Arg,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        self.at(At::Arg(node));
        let Arg::Chain { node: inner, fields, .. } = node else {
            return Err(self.errorf("internal error: not a chain"));
        };
        if fields.is_empty() {
            return Err(self.errorf("internal error: no fields in evalChainNode"));
        }
        if let Arg::Nil(_) = inner.as_ref() {
            return Err(self.errorf(format_args!("indirection through explicit nil in {node}")));
        }
        let pipe = self.eval_arg(dot, None, inner)?;
        self.eval_field_chain(dot, (pipe, false), node, fields, args, fin)
    }

    fn eval_variable_node(
        &mut self,
        dot: &Value,
        node: &'t Arg,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        self.at(At::Arg(node));
        let Arg::Variable(v) = node else {
            return Err(self.errorf("internal error: not a variable"));
        };
        let value = self.var_value(&v.ident[0])?;
        if v.ident.len() == 1 {
            self.not_a_function(args.unwrap_or(&[]), fin.is_some())?;
            return Ok(value);
        }
        self.eval_field_chain(dot, (value, false), node, &v.ident[1..], args, fin)
    }

    /// `.X.Y.Z` on `receiver`, the last one possibly a method call with
    /// arguments. The flag says the receiver came out of an `interface {}`
    /// slot, which error messages name instead of its dynamic type.
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        receiver: (Value, bool),
        node: &'t Arg,
        ident: &'t [String],
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        let Some((last, init)) = ident.split_last() else {
            return Ok(receiver.0);
        };
        let mut receiver = receiver;
        for name in init {
            receiver = self.eval_field(dot, name, node, None, None, receiver)?;
        }
        Ok(self.eval_field(dot, last, node, args, fin, receiver)?.0)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        field: &str,
        node: &'t Arg,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
        (receiver, from_interface): (Value, bool),
    ) -> R<(Value, bool)> {
        if matches!(receiver, Value::Invalid) {
            return Ok((Value::Invalid, false));
        }
        let typ = if from_interface { "interface {}" } else { receiver.type_name() };
        let (indirect, is_nil) = receiver.indirect();
        if is_nil && matches!(indirect, Value::NilInterface) {
            return Err(self.errorf(format_args!("nil pointer evaluating {typ}.{field}")));
        }
        if let Some(method) = methods::lookup(&receiver, field) {
            let name = method.name;
            return self
                .eval_call(dot, Callee::Method(method), At::Arg(node), name, args, fin)
                .map(|v| (v, false));
        }
        let has_args = args.map_or(0, <[Arg]>::len) > 1 || fin.is_some();
        let struct_field = |has: bool, v: Value, iface: bool| -> R<(Value, bool)> {
            if has {
                return Err(self.errorf(format_args!(
                    "{field} has arguments but cannot be invoked as function"
                )));
            }
            Ok((v, iface))
        };
        match &indirect {
            Value::Data(d) => match field {
                "Labels" => return struct_field(has_args, Value::Labels(d.labels.clone()), false),
                "ExternalLabels" => {
                    return struct_field(has_args, Value::Labels(d.external_labels.clone()), false);
                }
                "ExternalURL" => {
                    return struct_field(has_args, Value::Str(d.external_url.clone()), false);
                }
                "Value" => return struct_field(has_args, Value::Float(d.value), true),
                _ => {}
            },
            Value::SampleStruct(s) => match field {
                "Labels" => return struct_field(has_args, Value::Labels(s.labels.clone()), false),
                "Value" => return struct_field(has_args, Value::Float(s.value), true),
                _ => {}
            },
            Value::Time(_) if matches!(field, "wall" | "ext" | "loc") => {
                return Err(self
                    .errorf(format_args!("{field} is an unexported field of struct type {typ}")));
            }
            Value::Labels(m) => {
                if has_args {
                    return Err(
                        self.errorf(format_args!("{field} is not a method but has arguments"))
                    );
                }
                return Ok((Value::str(m.get(field).map_or("", String::as_str)), false));
            }
            Value::Args(m) => {
                if has_args {
                    return Err(
                        self.errorf(format_args!("{field} is not a method but has arguments"))
                    );
                }
                return Ok((m.get(field).cloned().unwrap_or(Value::NilInterface), true));
            }
            Value::Sample(None) if matches!(field, "Labels" | "Value") => {
                return Err(self.errorf(format_args!("nil pointer evaluating {typ}.{field}")));
            }
            _ => {}
        }
        Err(self.errorf(format_args!("can't evaluate field {field} in type {typ}")))
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        node: &'t Arg,
        name: &str,
        cmd: At<'t>,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        self.at(At::Arg(node));
        let callee = match (Builtin::lookup(name), PromFunc::lookup(name)) {
            (_, Some(f)) => Callee::Prometheus(f),
            (Some(b), None) => Callee::Builtin(b),
            (None, None) => {
                return Err(
                    self.errorf(format_args!("{} is not a defined function", gofmt::quote(name)))
                );
            }
        };
        self.eval_call(dot, callee, cmd, name, args, fin)
    }

    /// Go's `evalCall`: checks the argument count, evaluates and converts the
    /// arguments against the parameter types, calls, and reports a returned
    /// error as "error calling NAME: ...".
    fn eval_call(
        &mut self,
        dot: &Value,
        callee: Callee,
        node: At<'t>,
        name: &str,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> R<Value> {
        let args: &'t [Arg] = args.and_then(|a| a.get(1..)).unwrap_or(&[]);
        let sig = callee.signature();
        let num_in = args.len() + usize::from(fin.is_some());
        let mut num_fixed = args.len();
        if sig.variadic.is_some() {
            num_fixed = sig.params.len();
            if num_in < num_fixed {
                return Err(self.errorf(format_args!(
                    "wrong number of args for {name}: want at least {} got {}",
                    sig.params.len(),
                    args.len()
                )));
            }
        } else if num_in != sig.params.len() {
            return Err(self.errorf(format_args!(
                "wrong number of args for {name}: want {} got {num_in}",
                sig.params.len()
            )));
        }
        if let Some(bad) = sig.bad_results {
            return Err(self.errorf(bad));
        }
        let params = sig.params;
        let variadic = sig.variadic;

        // and/or evaluate lazily and return an argument.
        if let Callee::Builtin(b @ (Builtin::And | Builtin::Or)) = callee {
            let want = b == Builtin::Or;
            let mut v = Value::Invalid;
            for arg in args {
                v = self.eval_arg(dot, Some(Param::Reflect), arg)?;
                if v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = self.validate_type(f, Some(Param::Reflect))?;
            }
            return Ok(v);
        }

        let mut argv = Vec::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            argv.push(self.eval_arg(dot, params.get(i).copied(), &args[i])?);
            i += 1;
        }
        if let Some(elem) = variadic {
            while i < args.len() {
                argv.push(self.eval_arg(dot, Some(elem), &args[i])?);
                i += 1;
            }
        }
        let has_final = fin.is_some();
        if let Some(f) = fin {
            let t = match variadic {
                Some(elem) if num_in > num_fixed => Some(elem),
                Some(_) => params.get(num_in - 1).copied(),
                None => params.last().copied(),
            };
            argv.push(self.validate_type(f, t)?);
        }

        let result = match &callee {
            Callee::Builtin(Builtin::Call) => {
                let callee_name = match (args.first(), has_final) {
                    (Some(a), _) => a.to_string(),
                    (None, _) => match argv.first() {
                        Some(Value::Str(s)) => s.to_string(),
                        Some(v) => format!("<{} Value>", v.type_name()),
                        None => String::new(),
                    },
                };
                match argv.first() {
                    None | Some(Value::Invalid | Value::NilInterface) => {
                        Err("call of nil".to_owned())
                    }
                    Some(v) => Err(format!("non-function {callee_name} of type {}", v.type_name())),
                }
            }
            Callee::Builtin(b) => b.call(&argv),
            Callee::Prometheus(f) => f.call(&argv, self.env),
            Callee::Method(m) => Ok(m.call(&argv)),
        };
        result.map_err(|e| {
            self.at(node);
            self.errorf(format_args!("error calling {name}: {e}"))
        })
    }

    /// Go's `validateType`: the value converted for a parameter, or an error.
    fn validate_type(&self, value: Value, typ: Option<Param>) -> R<Value> {
        if matches!(value, Value::Invalid) {
            return match typ {
                None => Ok(Value::Invalid),
                Some(t) if t.can_be_nil() => Ok(t.zero()),
                Some(t) => {
                    Err(self.errorf(format_args!("invalid value; expected {}", t.type_name())))
                }
            };
        }
        let Some(t) = typ else {
            return Ok(value);
        };
        if t.accepts(&value) {
            return Ok(value);
        }
        // One dereference is allowed: *time.Time for a time.Time.
        match (&value, t) {
            (Value::TimePtr(p), Param::Time) => Ok(Value::Time(**p)),
            (Value::DurationPtr(p), Param::Duration) => Ok(Value::Duration(**p)),
            _ => Err(self.errorf(format_args!(
                "wrong type for value; expected {}; got {}",
                t.type_name(),
                value.type_name()
            ))),
        }
    }

    /// Go's `evalArg`: an argument evaluated for a parameter of type `typ`.
    fn eval_arg(&mut self, dot: &Value, typ: Option<Param>, n: &'t Arg) -> R<Value> {
        self.at(At::Arg(n));
        match n {
            Arg::Dot(_) => return self.validate_type(dot.clone(), typ),
            Arg::Nil(_) => {
                return match typ {
                    Some(t) if t.can_be_nil() => Ok(t.zero()),
                    Some(t) => {
                        Err(self.errorf(format_args!("cannot assign nil to {}", t.type_name())))
                    }
                    None => Ok(Value::Invalid),
                };
            }
            Arg::Field { ident, .. } => {
                let v = self.eval_field_node(dot, n, ident, Some(std::slice::from_ref(n)), None)?;
                return self.validate_type(v, typ);
            }
            Arg::Variable(_) => {
                let v = self.eval_variable_node(dot, n, None, None)?;
                return self.validate_type(v, typ);
            }
            Arg::Pipe(p) => {
                let v = self.eval_nested_pipeline(dot, p)?;
                return self.validate_type(v, typ);
            }
            Arg::Identifier { name, .. } => {
                let v = self.eval_function(dot, n, name, At::Arg(n), None, None)?;
                return self.validate_type(v, typ);
            }
            Arg::Chain { .. } => {
                let v = self.eval_chain_node(dot, n, None, None)?;
                return self.validate_type(v, typ);
            }
            Arg::Bool { .. } | Arg::Number(_) | Arg::String { .. } => {}
        }
        match typ {
            Some(p @ (Param::Int | Param::Duration)) => match n {
                Arg::Number(num) if num.is_int => Ok(if p == Param::Int {
                    Value::Int(num.int64)
                } else {
                    Value::Duration(num.int64)
                }),
                _ => Err(self.errorf(format_args!("expected integer; found {n}"))),
            },
            Some(Param::Any | Param::Reflect) => self.eval_empty_interface(dot, n),
            Some(Param::Str) => match n {
                Arg::String { text, .. } => Ok(Value::str(text)),
                _ => Err(self.errorf(format_args!("expected string; found {n}"))),
            },
            Some(t) => {
                Err(self.errorf(format_args!("can't handle {n} for arg of type {}", t.type_name())))
            }
            None => Err(self.errorf(format_args!("can't handle {n} for arg of type <nil>"))),
        }
    }

    fn eval_empty_interface(&mut self, dot: &Value, n: &'t Arg) -> R<Value> {
        self.at(At::Arg(n));
        match n {
            Arg::Bool { value, .. } => Ok(Value::Bool(*value)),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Field { ident, .. } => self.eval_field_node(dot, n, ident, None, None),
            Arg::Identifier { name, .. } => {
                self.eval_function(dot, n, name, At::Arg(n), None, None)
            }
            Arg::Nil(_) => Err(self.errorf("evalEmptyInterface: nil (can't happen)")),
            Arg::Number(num) => self.ideal_constant(n, num),
            Arg::String { text, .. } => Ok(Value::str(text)),
            Arg::Variable(_) => self.eval_variable_node(dot, n, None, None),
            Arg::Pipe(p) => self.eval_nested_pipeline(dot, p),
            Arg::Chain { .. } => Err(self.errorf(format_args!(
                "can't handle assignment of {n} to empty interface argument"
            ))),
        }
    }
}
