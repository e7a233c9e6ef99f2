//! The full archive and the canonical dump of a Kehu database.
//!
//! Both walk the same plan: every table the catalog lists, classified in `tables` (core data,
//! record tables named by metadata, derived, transient), columns sorted by name, rows ordered
//! by a unique key, values in four backend-neutral classes (uuid, int, bool, text). So the
//! same data gives the same archive rows and the same dump on SQLite and PostgreSQL.
//!
//! Must never: take a table or column name from an archive without checking it against the
//! target's catalog and metadata; write anything into a target that is not empty.

pub mod dump;
pub mod load;
pub mod read;
pub mod tables;
pub mod write;

use crate::conn::{Backend, DbVal, Raw, Tx};
use kehu_core::AppError;
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashSet};
use tables::{quote, Class};

/// The archive format this build writes and reads.
pub const FORMAT: &str = "kehu-archive";
pub const FORMAT_VERSION: i64 = 1;

/// One table as the archive sees it.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    /// Columns sorted by name, with their class.
    pub columns: Vec<(String, Class)>,
    pub key: Vec<String>,
    /// Columns holding JSON text (re-serialised with sorted keys in the dump).
    pub json: HashSet<String>,
    pub record_table: bool,
}

impl Section {
    /// `SELECT` of every archived column in key order (byte order for text on both backends).
    pub fn select_sql(&self, b: Backend) -> String {
        let cols: Vec<String> = self.columns.iter().map(|(c, _)| quote(c)).collect();
        let order: Vec<String> = self
            .key
            .iter()
            .map(|k| {
                let text = self.columns.iter().any(|(c, cl)| c == k && *cl == Class::Text);
                if text && b == Backend::Postgres {
                    format!("{} COLLATE \"C\"", quote(k))
                } else {
                    quote(k)
                }
            })
            .collect();
        format!("SELECT {} FROM {} ORDER BY {}", cols.join(", "), quote(&self.name), order.join(", "))
    }

    /// One row of `select_sql` as JSON values, one per column (what archives and dumps write).
    pub fn row_json(&self, r: &crate::DbRow) -> Result<Vec<Json>, AppError> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, (c, class))| {
                to_json(*class, r.val(i)).map_err(|e| AppError::internal(format!("{}.{c}: {e}", self.name)))
            })
            .collect()
    }
}

pub(crate) fn io_err(e: std::io::Error) -> AppError {
    AppError::invalid("archive.io").with_detail(e.to_string())
}

/// The archived tables of the database `tx` sees, in archive order: core data tables, then
/// record tables (by name), then derived tables. Fails on a table nobody classified.
pub async fn plan(tx: &mut Tx) -> Result<Vec<Section>, AppError> {
    let catalog = tables::catalog_tables(tx).await?;
    let mut record_tables: BTreeMap<String, ()> = BTreeMap::new();
    let objects = tx.all(&Raw::new("SELECT table_name FROM meta_objects", vec![])).await?;
    for r in &objects {
        let name = r.string(0).unwrap_or_default();
        if !tables::record_table_name(&name) || !catalog.contains(&name) {
            return Err(AppError::internal(format!("meta_objects names table {name:?}, which is not a record table")));
        }
        record_tables.insert(name, ());
    }
    let multi = tx
        .all(&Raw::new(
            "SELECT o.table_name, f.column_name FROM meta_fields f JOIN meta_objects o ON o.id = f.object_id \
             WHERE f.field_type IN ('multi_select', 'tags')",
            vec![],
        ))
        .await?;
    for name in &catalog {
        let known = tables::find(name).is_some() || crate::schema::transient(name);
        if !known && !record_tables.contains_key(name) {
            return Err(AppError::new(kehu_core::error::ErrorKind::Internal, "archive.unknown_table").with_detail(
                format!(
                    "table {name} is not declared by any module in kehu-db/src/schema.rs (data, derived or transient)"
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for c in crate::schema::data_tables() {
        out.push(core_section(tx, c, &catalog).await?);
    }
    for name in record_tables.keys() {
        let columns = tables::catalog_columns(tx, name).await?;
        let json = multi.iter().filter(|r| r.str(0) == Some(name)).filter_map(|r| r.string(1)).collect();
        out.push(Section { name: name.clone(), columns, key: vec!["id".into()], json, record_table: true });
    }
    for c in crate::schema::derived_tables() {
        out.push(core_section(tx, c, &catalog).await?);
    }
    Ok(out)
}

async fn core_section(tx: &mut Tx, c: &tables::Core, catalog: &[String]) -> Result<Section, AppError> {
    if !catalog.iter().any(|n| n == c.name) {
        return Err(AppError::internal(format!("table {} is missing: is the database migrated?", c.name)));
    }
    let columns = tables::catalog_columns(tx, c.name).await?;
    for k in c.key {
        if !columns.iter().any(|(n, _)| n == k) {
            return Err(AppError::internal(format!("table {}: key column {k} is missing", c.name)));
        }
    }
    Ok(Section {
        name: c.name.to_string(),
        columns,
        key: c.key.iter().map(|k| k.to_string()).collect(),
        json: c.json.iter().map(|k| k.to_string()).collect(),
        record_table: false,
    })
}

/// A stored value as archive JSON: uuids as text, booleans as booleans on both backends.
pub fn to_json(class: Class, v: &DbVal) -> Result<Json, String> {
    Ok(match (class, v) {
        (_, DbVal::Null) => Json::Null,
        (Class::Uuid, DbVal::Uuid(u)) => Json::String(u.to_string()),
        (Class::Uuid, DbVal::Blob(b)) if b.len() == 16 => {
            Json::String(uuid::Uuid::from_slice(b).map_err(|e| e.to_string())?.to_string())
        }
        (Class::Int, DbVal::Int(n)) => Json::from(*n),
        (Class::Bool, DbVal::Bool(b)) => Json::Bool(*b),
        (Class::Bool, DbVal::Int(n)) if *n == 0 || *n == 1 => Json::Bool(*n == 1),
        (Class::Text, DbVal::Text(s)) => Json::String(s.clone()),
        (c, v) => return Err(format!("a {} column holds {v:?}", c.as_str())),
    })
}

/// An archive JSON value as a value to bind into a column of `class`.
pub fn from_json(class: Class, v: &Json) -> Result<sea_query::Value, String> {
    use sea_query::Value as V;
    Ok(match (class, v) {
        (Class::Uuid, Json::Null) => V::Uuid(None),
        (Class::Int, Json::Null) => V::BigInt(None),
        (Class::Bool, Json::Null) => V::Bool(None),
        (Class::Text, Json::Null) => V::String(None),
        (Class::Uuid, Json::String(s)) => uuid::Uuid::parse_str(s).map_err(|e| e.to_string())?.into(),
        (Class::Int, Json::Number(n)) => n.as_i64().ok_or("not a 64-bit integer")?.into(),
        (Class::Bool, Json::Bool(b)) => (*b).into(),
        (Class::Text, Json::String(s)) => s.clone().into(),
        (c, v) => return Err(format!("a {} column cannot hold {v}", c.as_str())),
    })
}

/// JSON with every object's keys sorted, whatever serde_json's map order is.
pub fn canonical_json(v: &Json) -> Json {
    match v {
        Json::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), canonical_json(&m[k]));
            }
            Json::Object(out)
        }
        Json::Array(a) => Json::Array(a.iter().map(canonical_json).collect()),
        other => other.clone(),
    }
}

/// The migration versions recorded in `schema_migrations`, ascending.
pub async fn migration_versions(tx: &mut Tx) -> Result<Vec<i64>, AppError> {
    let rows = tx.all(&Raw::new("SELECT version FROM schema_migrations ORDER BY version", vec![])).await?;
    Ok(rows.iter().filter_map(|r| r.i64(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_backend_neutral() {
        let u = uuid::Uuid::now_v7();
        let blob = DbVal::Blob(u.as_bytes().to_vec());
        assert_eq!(to_json(Class::Uuid, &blob).unwrap(), to_json(Class::Uuid, &DbVal::Uuid(u)).unwrap());
        assert_eq!(to_json(Class::Bool, &DbVal::Int(1)).unwrap(), Json::Bool(true));
        assert_eq!(to_json(Class::Bool, &DbVal::Bool(false)).unwrap(), Json::Bool(false));
        assert!(to_json(Class::Bool, &DbVal::Int(7)).is_err());
        assert!(to_json(Class::Int, &DbVal::Text("1".into())).is_err());
        assert!(from_json(Class::Uuid, &Json::String("nope".into())).is_err());
        assert!(from_json(Class::Int, &serde_json::json!(1.5)).is_err());
        assert!(from_json(Class::Text, &serde_json::json!(3)).is_err());
        let a = canonical_json(&serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": null}}));
        assert_eq!(a.to_string(), r#"{"a":{"c":null,"d":[1,{"y":1,"z":0}]},"b":1}"#);
    }
}
