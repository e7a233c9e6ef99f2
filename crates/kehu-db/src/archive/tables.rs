//! Which tables a Kehu database has, and what each one is to the archive: data (archived,
//! dumped, restored), derived (archived too, so a restore needs no rebuild), transient
//! (instance-local, left out), or a record table of an object named by metadata.
//!
//! Each module declares its tables' roles with its migrations (`crate::schema::DB_MODULES`).
//! Every table the catalog lists must be declared there: an unknown table stops an export
//! (`archive.unknown_table`) rather than being silently left out of it.

use crate::conn::{Backend, DbResult, Raw, Tx};
use kehu_core::AppError;

/// A table known to the core schema.
pub struct Core {
    pub name: &'static str,
    /// Columns that order its rows (a unique key).
    pub key: &'static [&'static str],
    /// Columns holding JSON text: the canonical dump re-serialises them with sorted keys.
    pub json: &'static [&'static str],
}

/// Columns one backend has and the other lacks (SQLite's FTS row id, PostgreSQL's generated
/// `tsvector`): never archived, recomputed by the database.
pub const SKIP_COLUMNS: &[(&str, &str)] = &[("search_docs", "rid"), ("search_docs", "tsv")];

/// SQLite's own tables and the FTS5 virtual tables with their shadow tables (maintained by
/// triggers on `search_docs`).
fn internal(name: &str) -> bool {
    name.starts_with("sqlite_") || name.starts_with("search_words") || name.starts_with("search_ident")
}

pub fn find(name: &str) -> Option<&'static Core> {
    crate::schema::data_tables().chain(crate::schema::derived_tables()).find(|c| c.name == name)
}

/// A physical name Kehu generates (`o_…`, `obj_…`, `f_…`, core names): lower-case ASCII,
/// digits and underscores. Anything else is refused before it reaches SQL.
pub fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Whether `name` may be a record table (it must also be named by `meta_objects`).
pub fn record_table_name(name: &str) -> bool {
    valid_ident(name) && (name.starts_with("o_") || name.starts_with("obj_"))
}

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// How a column is stored, the same on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Uuid,
    Int,
    Bool,
    Text,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Uuid => "uuid",
            Class::Int => "int",
            Class::Bool => "bool",
            Class::Text => "text",
        }
    }
    /// From a catalog type name (SQLite declared type or PostgreSQL `data_type`).
    fn from_catalog(t: &str) -> Option<Class> {
        match t.to_ascii_lowercase().as_str() {
            "uuid" | "blob" => Some(Class::Uuid),
            "bigint" | "integer" | "int" | "int8" | "int4" | "smallint" => Some(Class::Int),
            "boolean" | "bool" => Some(Class::Bool),
            "text" | "character varying" | "varchar" => Some(Class::Text),
            _ => None,
        }
    }
}

/// Table names in the current database (or PostgreSQL schema), SQLite internals left out.
pub async fn catalog_tables(tx: &mut Tx) -> DbResult<Vec<String>> {
    let q = match tx.backend() {
        Backend::Sqlite => Raw::new("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", vec![]),
        Backend::Postgres => Raw::new(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
            vec![],
        ),
    };
    let rows = tx.all(&q).await?;
    Ok(rows.iter().filter_map(|r| r.string(0)).filter(|n| !internal(n)).collect())
}

/// The archived columns of a table, sorted by name (the same order on both backends).
pub async fn catalog_columns(tx: &mut Tx, table: &str) -> Result<Vec<(String, Class)>, AppError> {
    let q = match tx.backend() {
        Backend::Sqlite => Raw::new("SELECT name, type FROM pragma_table_info($1)", vec![table.into()]),
        Backend::Postgres => Raw::new(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            vec![table.into()],
        ),
    };
    let mut out = Vec::new();
    for r in tx.all(&q).await? {
        let (Some(name), ty) = (r.string(0), r.string(1).unwrap_or_default()) else { continue };
        if SKIP_COLUMNS.contains(&(table, name.as_str())) {
            continue;
        }
        if !valid_ident(&name) {
            return Err(AppError::internal(format!("column {table}.{name}: not a Kehu name")));
        }
        let class = Class::from_catalog(&ty)
            .ok_or_else(|| AppError::internal(format!("column {table}.{name}: unknown type {ty}")))?;
        out.push((name, class));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(record_table_name("o_company") && record_table_name("obj_activity"));
        assert!(record_table_name("o_abcdefgh23"));
        for bad in ["users", "o_X", "o_a;drop", "o_a\"b", "", "obj-a", "o_ä"] {
            assert!(!record_table_name(bad), "{bad}");
        }
        assert!(valid_ident("f_name_cur") && !valid_ident("1abc") && !valid_ident("a b"));
    }
}
