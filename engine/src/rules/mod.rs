//! Rule files, rule-group evaluation with Prometheus's alert state machine,
//! and rule unit tests in promtool's format. All pure: time comes in as an
//! argument, storage is the engine's head, files come through a trait.

pub mod alerting;
pub mod backtest;
mod batch;
pub mod file;
pub mod group;
pub mod unittest;
pub mod wasm;

pub use alerting::{Alert, AlertState, AlertingState};
pub use backtest::{BacktestOptions, BacktestResult, backtest};
pub use file::{
    GroupSpec, ParseOptions, RuleExpr, RuleFile, RuleFileError, RuleKind, RuleSpec, parse_rule_file,
};
pub use group::{EvalEnv, Group, Notification, RuleHealth, RuleState};
pub use unittest::{TestFileReport, TestFiles, UnitTestOptions, run_test_file};
