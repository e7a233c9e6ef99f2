//! Integration tests of the `kehu` binary itself (one test binary, modules inside): they run
//! the built executable (`CARGO_BIN_EXE_kehu`) as an operator would.

mod backup;
mod crash;
