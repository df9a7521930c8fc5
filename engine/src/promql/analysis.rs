//! Facts about a parsed expression that callers plan with, found without
//! evaluating it.

use std::collections::BTreeSet;

use promql_parser::label::{MatchOp, Matchers};
use promql_parser::parser::{AtModifier, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};

use crate::labels::METRIC_NAME;

/// Whether evaluating `expr` over a range of steps gives, at every step, the
/// samples an instant query at that step gives (in possibly another order).
/// False when the result depends on the query's own range: `@ start()`,
/// `@ end()`, `start()`, `end()`, `range()`, `step()`; and for extension
/// nodes, which this engine does not know.
pub fn steps_independent(expr: &Expr) -> bool {
    struct V(bool);
    impl ExprVisitor for V {
        type Error = ();
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
            let range_bound = |at: &Option<AtModifier>| {
                matches!(at, Some(AtModifier::Start) | Some(AtModifier::End))
            };
            self.0 &= match e {
                Expr::VectorSelector(vs) => !range_bound(&vs.at),
                Expr::MatrixSelector(ms) => !range_bound(&ms.vs.at),
                Expr::Subquery(sq) => !range_bound(&sq.at),
                Expr::Call(c) => !matches!(c.func.name, "start" | "end" | "range" | "step"),
                Expr::Extension(_) => false,
                _ => true,
            };
            Ok(self.0)
        }
    }
    let mut v = V(true);
    let _ = walk_expr(&mut v, expr);
    v.0
}

/// The metric names `expr` reads, or `None` when some selector is not pinned
/// to one name (no name, a regex on `__name__`, or `or` alternatives).
pub fn metric_names(expr: &Expr) -> Option<BTreeSet<String>> {
    struct V(Option<BTreeSet<String>>);
    impl ExprVisitor for V {
        type Error = ();
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
            let vs = match e {
                Expr::VectorSelector(vs) => vs,
                Expr::MatrixSelector(ms) => &ms.vs,
                _ => return Ok(true),
            };
            match (self.0.as_mut(), pinned_name(vs.name.as_deref(), &vs.matchers)) {
                (Some(names), Some(name)) => {
                    names.insert(name.to_owned());
                    Ok(true)
                }
                _ => {
                    self.0 = None;
                    Ok(false)
                }
            }
        }
    }
    let mut v = V(Some(BTreeSet::new()));
    let _ = walk_expr(&mut v, expr);
    v.0
}

fn pinned_name<'a>(name: Option<&'a str>, matchers: &'a Matchers) -> Option<&'a str> {
    if !matchers.or_matchers.is_empty() {
        return None;
    }
    name.or_else(|| {
        matchers
            .matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::parse;

    fn names(q: &str) -> Option<Vec<String>> {
        metric_names(&parse(q).expect("parses")).map(|s| s.into_iter().collect())
    }

    #[test]
    fn finds_the_names_an_expression_reads() {
        assert_eq!(
            names("rate(a[5m]) > on(x) group_left b + sum(c{x='1'})"),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(names("max_over_time({__name__='d'}[1h:1m])"), Some(vec!["d".into()]));
        assert_eq!(names("vector(1) + time()"), Some(vec![]));
        assert_eq!(names("a + {job='x'}"), None);
        assert_eq!(names("{__name__=~'a|b'}"), None);
        assert_eq!(names("a or {__name__='ALERTS'}"), Some(vec!["ALERTS".into(), "a".into()]));
    }

    #[test]
    fn knows_what_depends_on_the_query_range() {
        let independent = |q: &str| steps_independent(&parse(q).expect("parses"));
        assert!(independent("rate(a[5m] offset 1h) > 0.5 and b @ 1700000000"));
        assert!(independent("time() - timestamp(a)"));
        assert!(!independent("a @ start()"));
        assert!(!independent("rate(a[5m] @ end())"));
        assert!(!independent("max_over_time(a[1h:1m] @ end())"));
        assert!(!independent("a > end()"));
    }
}
