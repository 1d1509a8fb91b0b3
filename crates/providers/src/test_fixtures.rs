//! The wire samples in `../shared/fixtures/wire/` (beside the checkout, in
//! CI too), read by the tests of every protocol family.

#![allow(clippy::panic)]

pub fn fixture(path: &str) -> Vec<u8> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/wire/");
    std::fs::read(format!("{root}{path}")).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}
