//! HTML pages, one module per area.

pub mod account;
pub mod admin;
pub mod auth;
pub mod custom;
pub mod home;
pub mod import;
pub mod lists;
pub mod merge;
pub mod ops;
pub mod record;
pub mod records;
