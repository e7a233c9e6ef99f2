//! Kehu's pure domain: ids, the metadata model, field types and typed values, the filter AST,
//! the permission model and its evaluation, the search tokenizer and stable error codes.
//!
//! Nothing here does IO or needs an async runtime; every other crate builds on these types.

pub mod error;
pub mod filter;
pub mod meta;
pub mod perm;
pub mod text;
pub mod value;

pub use error::{AppError, ErrorKind, FieldError};
pub use uuid::Uuid;

/// A new time-ordered id (UUID v7) for any row Kehu creates.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Current time as UTC microseconds since the Unix epoch: how Kehu stores datetimes.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
