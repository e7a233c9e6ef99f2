//! The kehu-app integration tests: one binary (see STYLE.md). Every test body runs twice, on
//! a fresh SQLite file and on a fresh PostgreSQL schema (`KEHU_TEST_POSTGRES_URL`).

#[macro_use]
mod support;
mod activity;
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
mod recycle;
mod search;
mod timeline;
