//! Alert templates: Go's `text/template` as Prometheus 3.x runs it for alert
//! annotations and labels, reimplemented so that output and error texts are
//! byte-identical to Prometheus's.
//!
//! Prometheus expands each annotation (and label) value of a firing alert as
//! a template named `__alert_<alertname>`, after a prefix that defines
//! `$labels`, `$externalLabels`, `$externalURL` and `$value`; the dot is a
//! struct with `Labels`, `ExternalLabels`, `ExternalURL` and `Value`. The
//! functions are Go's builtins plus Prometheus's (`humanize`, `query`, ...).
//!
//! The pieces follow Go's packages: `lex` and `parse` are
//! `text/template/parse`, `exec` and `builtins` are `text/template`,
//! `printf` is `fmt`, `gotime` and `methods` the parts of `time` templates
//! reach, `goregex` is `regexp`, and `functions` is Prometheus's
//! `template.go`. Where Go behaviour cannot be had (heap
//! addresses, unbounded recursion), the module documentation says so.
//!
//! Bounds Go does not have, so that any input ends quickly and within a
//! 1 MiB stack (WebAssembly's): templates nest at most 100 levels deep
//! (parentheses and `if`/`range`/`with`/`block`; Go allows 10000
//! parentheses and any depth of the rest, reporting "max expression depth
//! exceeded" as we do), execution nests at most 300 levels (template
//! recursion; reported as Go reports its 100000-call limit), and stops after
//! a million steps or 16 MiB of output.

mod builtins;
mod exec;
mod functions;
mod goregex;
mod gotime;
mod lex;
mod methods;
mod parse;
mod printf;
mod value;

use std::rc::Rc;

use value::Data;

/// What Prometheus passes as the template's dot for an alert.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateData {
    /// The alert's labels (`$labels`, `.Labels`).
    pub labels: Vec<(String, String)>,
    /// `$externalLabels`, `.ExternalLabels`.
    pub external_labels: Vec<(String, String)>,
    /// `$externalURL`, `.ExternalURL`; also what `externalURL` and
    /// `pathPrefix` read.
    pub external_url: String,
    /// `$value`, `.Value`: the alert's sample value.
    pub value: f64,
}

impl TemplateData {
    /// The dot templates read, built once for all of an alert's templates.
    pub fn dot(&self) -> Dot {
        Dot(Rc::new(Data {
            labels: Rc::new(self.labels.iter().cloned().collect()),
            external_labels: Rc::new(self.external_labels.iter().cloned().collect()),
            external_url: Rc::from(self.external_url.as_str()),
            value: self.value,
        }))
    }
}

/// [`TemplateData`] as templates read it.
#[derive(Clone, Debug)]
pub struct Dot(Rc<Data>);

impl Dot {
    /// The dot of another alert with the same external labels and URL.
    pub fn with_alert(
        &self,
        labels: impl IntoIterator<Item = (String, String)>,
        value: f64,
    ) -> Dot {
        Dot(Rc::new(Data {
            labels: Rc::new(labels.into_iter().collect()),
            external_labels: self.0.external_labels.clone(),
            external_url: self.0.external_url.clone(),
            value,
        }))
    }
}

/// One element of a `query` result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuerySample {
    /// All labels, `__name__` included.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Runs a PromQL instant query for the `query` template function at the
/// given time (milliseconds). Prometheus's rule manager turns a scalar
/// result into one sample without labels and refuses other result types.
pub trait TemplateQuerier {
    fn query(&mut self, expr: &str, ts_ms: i64) -> Result<Vec<QuerySample>, String>;
}

/// A querier for expansions without query access: `query` fails as it does
/// in Prometheus when no query function is set (a nil function call).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoQuerier;

impl TemplateQuerier for NoQuerier {
    fn query(&mut self, _expr: &str, _ts_ms: i64) -> Result<Vec<QuerySample>, String> {
        Err(functions::NIL_DEREFERENCE.to_owned())
    }
}

/// Why a template could not be parsed or expanded. `Display` is exactly the
/// error text Prometheus produces.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A parse error as [`check`] reports it (`template: NAME:LINE: ...`),
    /// like Prometheus's `ParseTest` behind `promtool check rules`.
    #[error("{0}")]
    Syntax(String),
    /// A parse error as expansion reports it.
    #[error("error parsing template {name}: {message}")]
    Parsing { name: String, message: String },
    /// An execution error (`template: NAME:LINE:COL: executing ...`).
    #[error("error executing template {name}: {message}")]
    Executing { name: String, message: String },
}

/// The variable definitions Prometheus puts before every alert template.
const DEFINITIONS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// The template name Prometheus gives an alerting rule's templates.
pub fn alert_template_name(alert_name: &str) -> String {
    format!("__alert_{alert_name}")
}

fn has_function(name: &str) -> bool {
    builtins::Builtin::lookup(name).is_some() || functions::PromFunc::lookup(name).is_some()
}

/// Parses `text` as Prometheus's `ParseTest` does (for `check rules`): the
/// definitions prefix plus `text`, every function known.
pub fn check(name: &str, text: &str) -> Result<(), TemplateError> {
    let full = format!("{DEFINITIONS}{text}");
    parse::parse(name, &full, &has_function).map(|_| ()).map_err(TemplateError::Syntax)
}

/// An alert template parsed once, to be expanded at every evaluation: an
/// alerting rule keeps one per annotation and label value, because parsing
/// (the definitions prefix included) costs several times the expansion.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Text without actions expands to itself, whatever the data.
    Plain(String),
    /// The definitions prefix plus the text; execution errors point into it.
    Parsed { full: String, set: parse::TreeSet },
    /// Expansion reports the parse error every time, as Prometheus does.
    Broken(String),
}

impl Template {
    /// Parses `text` as the template `name` (see [`alert_template_name`]).
    pub fn new(name: &str, text: &str) -> Template {
        let kind = if !text.contains("{{") {
            Kind::Plain(text.to_owned())
        } else {
            let full = format!("{DEFINITIONS}{text}");
            match parse::parse(name, &full, &has_function) {
                Ok(set) => Kind::Parsed { full, set },
                Err(message) => Kind::Broken(message),
            }
        };
        Template { name: name.to_owned(), kind }
    }

    /// Expands the template as Prometheus's `Expander.Expand()` does for an
    /// alert: option `missingkey=zero`, `dot` as the dot, `ts_ms` as the
    /// evaluation time (for `query` and `now`).
    pub fn expand(
        &self,
        dot: &Dot,
        ts_ms: i64,
        querier: &mut dyn TemplateQuerier,
    ) -> Result<String, TemplateError> {
        let name = &self.name;
        let (full, set) = match &self.kind {
            Kind::Plain(text) => return Ok(text.clone()),
            Kind::Broken(message) => {
                return Err(TemplateError::Parsing {
                    name: name.clone(),
                    message: message.clone(),
                });
            }
            Kind::Parsed { full, set } => (full, set),
        };
        let mut env = exec::Env { querier, ts_ms, external_url: &dot.0.external_url };
        exec::execute(set, full, name, dot.0.clone(), &mut env)
            .map_err(|message| TemplateError::Executing { name: name.clone(), message })
    }

    /// What Prometheus stores for an annotation or label: the expansion, or
    /// `<error expanding template: ...>`.
    pub fn expand_or_error_text(
        &self,
        dot: &Dot,
        ts_ms: i64,
        querier: &mut dyn TemplateQuerier,
    ) -> String {
        match self.expand(dot, ts_ms, querier) {
            Ok(s) => s,
            Err(e) => format!("<error expanding template: {e}>"),
        }
    }
}

/// Parses and expands `text` once; see [`Template::expand`].
pub fn expand(
    name: &str,
    text: &str,
    data: &TemplateData,
    ts_ms: i64,
    querier: &mut dyn TemplateQuerier,
) -> Result<String, TemplateError> {
    Template::new(name, text).expand(&data.dot(), ts_ms, querier)
}

/// Parses and expands `text` once; see [`Template::expand_or_error_text`].
pub fn expand_or_error_text(
    name: &str,
    text: &str,
    data: &TemplateData,
    ts_ms: i64,
    querier: &mut dyn TemplateQuerier,
) -> String {
    Template::new(name, text).expand_or_error_text(&data.dot(), ts_ms, querier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> TemplateData {
        TemplateData {
            labels: vec![
                ("instance".to_owned(), "host:9090".to_owned()),
                ("job".to_owned(), "node".to_owned()),
            ],
            external_labels: vec![("region".to_owned(), "eu".to_owned())],
            external_url: "http://prom.example.com:9090/prefix".to_owned(),
            value: 1234567.0,
        }
    }

    fn run(text: &str) -> String {
        expand_or_error_text("__alert_T", text, &data(), 0, &mut NoQuerier)
    }

    #[test]
    fn expands_the_usual_annotations() {
        assert_eq!(run("{{ $labels.instance }} is {{ $value | humanize }}"), "host:9090 is 1.235M");
        assert_eq!(
            run("{{ .Labels.job }} {{ $externalLabels.region }} {{ $externalURL }}"),
            "node eu http://prom.example.com:9090/prefix"
        );
        assert_eq!(run("{{ $value }}"), "1.234567e+06");
        assert_eq!(
            run("{{ .Labels.missing }}|{{ .Missing }}"),
            "<error expanding template: error executing template __alert_T: template: __alert_T:1:137: executing \"__alert_T\" at <.Missing>: can't evaluate field Missing in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }>"
        );
    }

    #[test]
    fn errors_match_prometheus_text() {
        assert_eq!(
            check("__alert_Foo", "{{ nope }}"),
            Err(TemplateError::Syntax(
                "template: __alert_Foo:1: function \"nope\" not defined".to_owned()
            ))
        );
        assert_eq!(
            run("{{ humanize \"x\" }}"),
            "<error expanding template: error executing template __alert_T: template: __alert_T:1:115: executing \"__alert_T\" at <humanize \"x\">: error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax>"
        );
        assert_eq!(
            run("{{ query \"up\" }}"),
            "<error expanding template: error executing template __alert_T: template: __alert_T:1:115: executing \"__alert_T\" at <query \"up\">: error calling query: runtime error: invalid memory address or nil pointer dereference>"
        );
    }

    /// Runs `f` on a thread with a WebAssembly-sized stack (1 MiB; the
    /// bounds leave room for unoptimized builds too).
    fn on_small_stack(f: impl FnOnce() -> String + Send + 'static) -> String {
        let thread = std::thread::Builder::new().stack_size(1 << 20).spawn(f).expect("thread");
        thread.join().expect("no stack overflow")
    }

    #[test]
    fn deepest_nesting_fits_a_small_stack() {
        let recursive = "{{define \"a\"}}{{if 1}}{{with .}}{{range .Labels}}{{template \"a\" $}}{{end}}{{end}}{{end}}{{end}}{{template \"a\" .}}";
        let out = on_small_stack(move || run(recursive));
        assert!(out.ends_with("exceeded maximum template depth (100000)>"), "{out}");
        // Parentheses and control structures as deep as the parser allows.
        let parens = format!("{{{{ {}1{} }}}}", "(".repeat(99), ")".repeat(99));
        assert_eq!(on_small_stack(move || run(&parens)), "1");
        let ifs = format!("{}x{}", "{{if 1}}".repeat(99), "{{end}}".repeat(99));
        assert_eq!(on_small_stack(move || run(&ifs)), "x");
        let too_deep = format!("{{{{ {}1{} }}}}", "(".repeat(101), ")".repeat(101));
        assert!(on_small_stack(move || run(&too_deep)).ends_with("max expression depth exceeded>"));
    }

    #[test]
    fn runaway_templates_stop() {
        let recursive = run("{{define \"a\"}}{{template \"a\"}}{{end}}{{template \"a\"}}");
        assert!(recursive.ends_with("exceeded maximum template depth (100000)>"), "{recursive}");
        let long = run("{{range 100000000}}x{{end}}");
        assert!(
            long.contains("template output exceeds") || long.contains("steps"),
            "{}",
            &long[..200.min(long.len())]
        );
    }
}
