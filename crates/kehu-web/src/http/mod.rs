//! HTML pages, one module per area.

pub mod account;
pub mod admin;
pub mod auth;
pub mod custom;
pub mod home;
pub mod ops;
pub mod records;
