//! The smallest rule: one sample, no queries, no config, no state.
//!
//! ```yaml
//! - record: tocsin:constant
//!   wasm: constant
//! ```
//!
//! It does nothing useful on purpose: everything an evaluation of it costs is
//! the runtime's and the SDK's own overhead, which is what
//! `cargo bench -p tocsin-host --bench wasm` measures with it.

use tocsin_rules_sdk::{Context, Error, Output};

fn constant(_ctx: &mut Context) -> Result<Output, Error> {
    Ok(Output::new().sample([("rule", "constant")], 1.0))
}

tocsin_rules_sdk::rule!(constant);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample() {
        let out = Context::for_test(0).run(constant).unwrap();
        assert_eq!(out.samples().len(), 1);
        assert_eq!(out.samples()[0].value, 1.0);
    }
}
