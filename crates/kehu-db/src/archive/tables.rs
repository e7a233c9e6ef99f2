//! Which tables a Kehu database has, and what each one is to the archive: data (archived,
//! dumped, restored), derived (archived too, so a restore needs no rebuild), transient
//! (instance-local, left out), or a record table of an object named by metadata.
//!
//! Every table the catalog lists must be classified here: an unknown table stops an export
//! (`archive.unknown_table`) rather than being silently left out of it. A migration that
//! adds a table adds it here.

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

const fn core(name: &'static str, key: &'static [&'static str], json: &'static [&'static str]) -> Core {
    Core { name, key, json }
}

const ID: &[&str] = &["id"];

/// Data tables, in archive order: migrations and metadata first (a loader creates the record
/// tables from the metadata before it meets their rows), the journal last.
pub const DATA: &[Core] = &[
    core("schema_migrations", &["version"], &[]),
    core("schema_state", ID, &[]),
    core("meta_objects", ID, &[]),
    core("meta_fields", ID, &["options", "default_value"]),
    core("roles", ID, &["grants"]),
    core("teams", ID, &[]),
    core("users", ID, &["recovery_codes"]),
    core("api_tokens", ID, &["scopes"]),
    core("auth_tokens", ID, &[]),
    core("settings", &["key"], &[]),
    core("saved_views", ID, &["columns", "filter", "sort"]),
    core("jobs", ID, &["params", "cursor"]),
    // Imports: their history, undo logs, failed rows, saved mappings, dry runs, and the chunks of an
    // import still running (so a moved instance can finish or undo it).
    core("imports", ID, &["headers", "samples", "settings"]),
    core("import_chunks", &["import_id", "seq"], &["dups"]),
    core("import_changes", &["import_id", "row_no", "record_id"], &["changes"]),
    core("import_failures", &["import_id", "row_no"], &["cells", "errors"]),
    core("import_mappings", ID, &["settings"]),
    core("import_checks", ID, &["settings", "counts", "errors"]),
    core("notifications", ID, &[]),
    core("recent_views", &["user_id", "record_id"], &[]),
    core("mails", ID, &[]),
    core("audit_log", ID, &["changes"]),
    core("field_history", ID, &["old_value", "new_value"]),
    core("outbox", ID, &["payload"]),
    // Background work (migration 15): consumers' delivery state, webhooks and their log.
    core("outbox_consumed", &["event_id", "consumer"], &[]),
    core("webhook_endpoints", ID, &["objects", "events"]),
    core("webhook_deliveries", ID, &["body"]),
    core("webhook_attempts", ID, &[]),
    // Seed items applied to the standard objects (migration 16).
    core("seed_items", &["key"], &[]),
];

/// Derived from records but archived with them (after the record tables), so a loaded archive
/// searches at once and dumps equal. Backend-specific columns are left out (see `SKIP_COLUMNS`).
pub const DERIVED: &[Core] = &[core("search_docs", &["record_id"], &[])];

/// Instance-local tables, neither archived nor dumped: sign-in sessions (everyone signs in
/// again on the new instance), login throttling counters, this instance's backup runs
/// (their files live on this machine) and its schedule runs.
pub const TRANSIENT: &[&str] = &["sessions", "login_throttle", "backups", "schedule_runs"];

/// Columns one backend has and the other lacks (SQLite's FTS row id, PostgreSQL's generated
/// `tsvector`): never archived, recomputed by the database.
pub const SKIP_COLUMNS: &[(&str, &str)] = &[("search_docs", "rid"), ("search_docs", "tsv")];

/// SQLite's own tables and the FTS5 virtual tables with their shadow tables (maintained by
/// triggers on `search_docs`).
fn internal(name: &str) -> bool {
    name.starts_with("sqlite_") || name.starts_with("search_words") || name.starts_with("search_ident")
}

pub fn find(name: &str) -> Option<&'static Core> {
    DATA.iter().chain(DERIVED).find(|c| c.name == name)
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

    #[test]
    fn every_table_has_one_role() {
        let mut names: Vec<&str> =
            DATA.iter().chain(DERIVED).map(|c| c.name).chain(TRANSIENT.iter().copied()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a table is classified twice");
        assert!(DATA.iter().chain(DERIVED).all(|c| !c.key.is_empty() && valid_ident(c.name)));
    }
}
