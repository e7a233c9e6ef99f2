//! The kehu-app integration tests: one binary (see STYLE.md). Every test body runs twice, on
//! a fresh SQLite file and on a fresh PostgreSQL schema (`KEHU_TEST_POSTGRES_URL`).

// Test code: unwrap, expect and panic are how a test fails (denied elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;
mod activity;
mod aggregate;
mod archive;
mod backup;
mod engine;
mod fields;
mod filters;
mod import;
mod lists;
mod mail;
mod merge;
mod pagination;
mod permissions;
mod platform;
mod recycle;
mod search;
mod timeline;
