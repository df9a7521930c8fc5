//! The playground's size budget (issue 6): the engine bundle `tocsin
//! playground export` writes (what `tocsin serve` serves) stays within
//! 2 MiB, 700 KiB gzipped. `cargo bench -p tocsin-tests --bench playground`
//! reports the sizes next to the backtest times.

use tocsin_tests::{
    BUNDLE_BUDGET_BYTES, BUNDLE_BUDGET_GZIP_BYTES, TempDir, export_playground, gzip_len,
};

#[test]
fn engine_bundle_fits_the_budget() {
    let dir = TempDir::new("bundle");
    let export = export_playground(dir.path());
    let wasm = std::fs::read(export.join("tocsin_web_bg.wasm")).expect("the engine bundle");
    let gz = gzip_len(&wasm);
    assert!(
        wasm.len() <= BUNDLE_BUDGET_BYTES,
        "tocsin_web_bg.wasm is {} bytes, over the {BUNDLE_BUDGET_BYTES}-byte budget",
        wasm.len()
    );
    assert!(
        gz <= BUNDLE_BUDGET_GZIP_BYTES,
        "tocsin_web_bg.wasm is {gz} bytes gzipped, over the {BUNDLE_BUDGET_GZIP_BYTES}-byte budget"
    );
    // The page loads the bundle through its glue, which must be there too.
    assert!(export.join("tocsin_web.js").is_file());
    assert!(export.join("index.html").is_file());
}
