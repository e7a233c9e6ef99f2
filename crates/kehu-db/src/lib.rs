//! Storage: `Db` over SQLite or PostgreSQL, migrations (sea-query DDL, one path for both),
//! runtime DDL for objects and fields, the filter → SQL compiler, the search index and the
//! audit/outbox writers. Every dialect difference lives in this crate and nowhere else.
//!
//! Must never: take a table or column name from user input (names come from metadata), or
//! format a value into SQL (values are always bound).

// archive and backup (issue #5)
pub mod aggregate;
pub mod archive;
pub mod backup;
pub mod snapshot;
// end archive and backup
pub mod bulk;
pub mod conn;
pub mod ddl;
pub mod journal;
mod m004_auth;
mod m005_lists;
pub mod m006_custom;
mod m008_activity;
mod m009_import;
mod m010_backup;
mod m011_search_tuning;
mod m012_outbox_audit;
mod m013_search_ident;
mod m014_import_checks;
mod m015_work;
mod m016_seed_items;
mod m017_board;
pub mod meta_store;
pub mod migrate;
pub mod query;
pub mod records;
pub mod schema;
pub mod search;
pub mod work;

pub use bulk::InsertInto;
pub use conn::{Backend, Db, DbError, DbRow, DbVal, FromRow, NamedRow, Raw, Sql, Tx, WriteMark};
