//! kehu-web integration tests (one binary): sign-in, sessions, CSRF, two-factor, the REST API
//! and its OpenAPI document, masking, translations, logs, and the browser walk-through. Every
//! storage-touching body runs on SQLite and on PostgreSQL.

// Test code: unwrap, expect and panic are how a test fails (denied elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;
mod api;
mod auth;
// archive and backup (issue #5)
mod backup;
mod board;
mod browser;
mod browser_backup;
mod browser_board;
mod browser_custom;
mod browser_day;
mod browser_import;
mod browser_lists;
mod browser_merge;
mod browser_picker;
mod browser_recycle;
mod browser_webhooks;
mod custom;
mod i18n;
mod import;
mod lists;
mod merge;
mod ops;
mod picker;
mod record;
mod recycle;
mod tags;
mod timeline;
mod webhooks;
