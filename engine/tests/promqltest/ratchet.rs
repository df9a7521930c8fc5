//! The known-failures list: the in-scope cases that fail today. The run fails
//! when a case fails that is not listed (a regression), and only notes listed
//! cases that pass, so that progress never breaks the build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const HEADER: &str = "\
# PromQL conformance cases that are known to fail (engine/tests/promqltest.rs).
# One case per line: <file>:<line of its eval command>, or
# <file>:<line>/step_invariance for the separate step-invariance check of an
# instant query, then the query as a comment. Cases not listed must pass.
# Regenerate: TOCSIN_PROMQLTEST_UPDATE=1 cargo test -p tocsin-engine --test promqltest
";

/// A case's stable identity: its file and the line of its `eval` command.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseId {
    pub file: String,
    pub line: usize,
    pub step_invariance: bool,
}

impl CaseId {
    pub fn parse(s: &str) -> Option<CaseId> {
        let (rest, step_invariance) = match s.strip_suffix("/step_invariance") {
            Some(r) => (r, true),
            None => (s, false),
        };
        let (file, line) = rest.rsplit_once(':')?;
        Some(CaseId { file: file.to_owned(), line: line.parse().ok()?, step_invariance })
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if self.step_invariance {
            f.write_str("/step_invariance")?;
        }
        Ok(())
    }
}

/// The listed ids, each with its comment (the query).
pub type KnownFailures = BTreeMap<CaseId, String>;

/// Reads the list; a missing file is an empty list.
pub fn read(path: &Path) -> Result<KnownFailures, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KnownFailures::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<KnownFailures, String> {
    let mut out = KnownFailures::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, comment) = match line.split_once('#') {
            Some((id, c)) => (id.trim(), c.trim()),
            None => (line, ""),
        };
        let id =
            CaseId::parse(id).ok_or_else(|| format!("line {}: not a case id: {id:?}", n + 1))?;
        out.insert(id, comment.to_owned());
    }
    Ok(out)
}

/// The file's text for a list, sorted by file and line.
pub fn render(list: &KnownFailures) -> String {
    let mut s = String::from(HEADER);
    for (id, comment) in list {
        // Queries are single lines already; keep the file line-oriented anyway.
        let comment = comment.replace(['\n', '\r'], " ");
        if comment.is_empty() {
            s.push_str(&format!("{id}\n"));
        } else {
            s.push_str(&format!("{id}  # {comment}\n"));
        }
    }
    s
}

/// How a run compares with the list.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Failing but not listed: the run fails.
    pub regressions: Vec<CaseId>,
    /// Listed and passing: the entry can go.
    pub fixed: Vec<CaseId>,
    /// Listed but neither failing nor passing in this run (skipped, or no
    /// such case): the entry is stale.
    pub stale: Vec<CaseId>,
    /// Listed and still failing.
    pub still_failing: usize,
}

/// Compares the failures and passes of the files that ran with the list;
/// entries for files that did not run are ignored.
pub fn judge(
    list: &KnownFailures,
    ran_files: &BTreeSet<String>,
    failing: &BTreeSet<CaseId>,
    passing: &BTreeSet<CaseId>,
) -> Verdict {
    let mut v = Verdict::default();
    for id in failing {
        if list.contains_key(id) {
            v.still_failing += 1;
        } else {
            v.regressions.push(id.clone());
        }
    }
    for id in list.keys().filter(|id| ran_files.contains(&id.file)) {
        if passing.contains(id) {
            v.fixed.push(id.clone());
        } else if !failing.contains(id) {
            v.stale.push(id.clone());
        }
    }
    v
}

/// The new list after a run: entries of files that ran are replaced by this
/// run's failures, entries of other files are kept.
pub fn updated(
    list: &KnownFailures,
    ran_files: &BTreeSet<String>,
    failing: &BTreeMap<CaseId, String>,
) -> KnownFailures {
    let mut out: KnownFailures = list
        .iter()
        .filter(|(id, _)| !ran_files.contains(&id.file))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(failing.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}
