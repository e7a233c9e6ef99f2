//! HTML pages, one module per area.

pub mod account;
pub mod admin;
pub mod auth;
pub mod home;
pub mod lists;
pub mod ops;
pub mod records;
