//! Integration tests of the `kehu` binary itself (one test binary, modules inside): they run
//! the built executable (`CARGO_BIN_EXE_kehu`) as an operator would.

// Test code: unwrap, expect and panic are how a test fails (denied elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backup;
mod cli;
mod crash;
mod multi;
