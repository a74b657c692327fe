//! Embedding examples of crm-rs: `examples/quickstart`, and the README's embedding example,
//! compiled and run as a doc-test of this crate so it stays true.

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
