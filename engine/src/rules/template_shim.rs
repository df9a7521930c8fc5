//! TEMPORARY stand-in for `crate::templates` while the Go text/template engine
#![allow(dead_code)]
//! is being written: passes template text through unexpanded.

pub struct TemplateData {
    pub labels: Vec<(String, String)>,
    pub external_labels: Vec<(String, String)>,
    pub external_url: String,
    pub value: f64,
}
pub struct QuerySample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}
pub trait TemplateQuerier {
    fn query(&mut self, expr: &str, ts_ms: i64) -> Result<Vec<QuerySample>, String>;
}
pub fn check(_name: &str, text: &str) -> Result<(), String> {
    if text.matches("{{").count() != text.matches("}}").count() {
        return Err("template: unbalanced braces".into());
    }
    Ok(())
}
pub fn expand_or_error_text(
    _name: &str,
    text: &str,
    _data: &TemplateData,
    _ts: i64,
    _q: &mut dyn TemplateQuerier,
) -> String {
    text.to_owned()
}
