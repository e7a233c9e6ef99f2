//! HTML pages, one module per area.

pub mod account;
pub mod admin;
pub mod auth;
// archive and backup (issue #5)
pub mod backup;
pub mod custom;
pub mod home;
pub mod import;
pub mod lists;
pub mod merge;
pub mod ops;
pub mod picker;
pub mod record;
pub mod records;
pub mod recycle;
pub mod webhooks;

/// A value for a URL query string (percent-encoded as a form value).
pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
