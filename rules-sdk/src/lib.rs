//! tocsin-rules-sdk: write tocsin alert and recording rules in Rust, compiled to
//! `wasm32-unknown-unknown`.
//!
//! ```
//! use tocsin_rules_sdk::{Context, Error, Output, Series};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { threshold: f64 }
//!
//! fn high_load(ctx: &mut Context) -> Result<Output, Error> {
//!     let cfg: Config = ctx.config()?;
//!     let mut out = Output::new();
//!     for s in ctx.query("node_load1")? {
//!         match s.last() {
//!             Some((_, v)) if v > cfg.threshold => out = out.sample(s.labels, v),
//!             _ => {}
//!         }
//!     }
//!     Ok(out)
//! }
//! tocsin_rules_sdk::rule!(high_load);
//!
//! // Natively, the same function runs against canned query answers:
//! let mut ctx = Context::for_test(1_000)
//!     .with_config(r#"{"threshold": 4}"#)
//!     .on_query("node_load1", vec![Series::new([("instance", "a")], [(1_000, 7.5)])]);
//! assert_eq!(high_load(&mut ctx)?.samples()[0].value, 7.5);
//! # Ok::<(), Error>(())
//! ```
//!
//! [`rule!`] generates the module's exports (see the `tocsin-abi` crate for the
//! contract). A rule error, and a panic, reach the host as the rule's error with
//! their message: a panic through the `tocsin_v1::panic` import right before the
//! module traps, since rules are built with `panic = "abort"`.
//!
//! On wasm32 the SDK installs a global allocator made for instances that live
//! for one evaluation (the `allocator` feature, on by default; turn it off to
//! bring your own).

use std::fmt;

pub use serde;
pub use tocsin_abi as abi;
pub use tocsin_abi::{Labels, OutSample, Series};

#[cfg(all(target_arch = "wasm32", feature = "allocator"))]
mod allocator;
mod context;
#[doc(hidden)]
pub mod guest;
#[cfg(not(target_arch = "wasm32"))]
mod testing;

#[cfg(all(target_arch = "wasm32", feature = "allocator"))]
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

pub use context::Context;
pub use guest::{Call, Host, evaluate_encoded};

/// The signature of a rule.
pub type RuleFn = fn(&mut Context) -> Result<Output, Error>;

/// Declares `f: fn(&mut Context) -> Result<Output, Error>` as this module's rule:
/// on wasm32 it emits the `tocsin_abi_version`, `tocsin_alloc` and
/// `tocsin_evaluate` exports; natively it only checks the signature, so the
/// crate still builds and tests on the developer's machine.
#[macro_export]
macro_rules! rule {
    ($f:path) => {
        const _: $crate::RuleFn = $f;

        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn tocsin_abi_version() -> i32 {
            $crate::abi::ABI_VERSION as i32
        }

        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn tocsin_alloc(len: i32) -> i32 {
            $crate::guest::alloc_export(len)
        }

        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn tocsin_evaluate(ptr: i32, len: i32) -> i64 {
            $crate::guest::evaluate_export($f, ptr, len)
        }
    };
}

/// What a rule returns: its samples. For a `record:` rule they are stored under
/// the record name; for an `alert:` rule each is an alert candidate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    samples: Vec<OutSample>,
}

impl Output {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample with these labels.
    pub fn sample<K, V>(self, labels: impl IntoIterator<Item = (K, V)>, value: f64) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.sample_with_annotations(labels, value, Labels::new())
    }

    /// Adds a sample with per-sample annotations, which the host merges over the
    /// rule file's annotations of an alert.
    pub fn sample_with_annotations<K, V, AK, AV>(
        mut self,
        labels: impl IntoIterator<Item = (K, V)>,
        value: f64,
        annotations: impl IntoIterator<Item = (AK, AV)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
        AK: Into<String>,
        AV: Into<String>,
    {
        self.samples.push(OutSample {
            labels: pairs(labels),
            value,
            annotations: pairs(annotations),
        });
        self
    }

    pub fn samples(&self) -> &[OutSample] {
        &self.samples
    }

    pub fn into_samples(self) -> Vec<OutSample> {
        self.samples
    }
}

impl FromIterator<OutSample> for Output {
    fn from_iter<I: IntoIterator<Item = OutSample>>(iter: I) -> Self {
        Self { samples: iter.into_iter().collect() }
    }
}

/// A key for keeping state per series (a map in the rule's state): the
/// same for the same label set whatever order the query returned the labels
/// in. Length prefixes keep any label text, separators included, from making
/// two label sets look alike.
pub fn series_key(labels: &Labels) -> String {
    let mut pairs: Vec<_> = labels.iter().collect();
    pairs.sort_unstable();
    pairs.iter().map(|(n, v)| format!("{}:{n}{}:{v}", n.len(), v.len())).collect()
}

fn pairs<K: Into<String>, V: Into<String>>(it: impl IntoIterator<Item = (K, V)>) -> Labels {
    it.into_iter().map(|(k, v)| (k.into(), v.into())).collect()
}

/// A rule's failure; the host shows the message as the rule's last error. Any
/// `std::error::Error` converts with `?`, like `anyhow::Error` (and for the same
/// reason this type does not implement `std::error::Error` itself).
pub struct Error {
    message: String,
}

impl Error {
    pub fn msg(message: impl fmt::Display) -> Self {
        Self { message: message.to_string() }
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Self::msg(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}
