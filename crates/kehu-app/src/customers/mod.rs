//! Customers: the standard company and contact objects, declared as data (`objects.json`) and
//! seeded once by a recorded migration step. Everything else about them is metadata the
//! record engine already understands.

mod behaviour;
pub mod duplicates;
pub(crate) use behaviour::behaviours;
mod external_id;

use crate::metadata::create_object_in;
use crate::Result;
use kehu_core::meta::{FieldDef, FieldOptions, FieldType, Label, ObjectDef};
use kehu_core::{new_id, AppError, Uuid};
use kehu_db::Db;
use serde::Deserialize;
use std::collections::HashMap;

/// Seed files in order: (version in `schema_migrations`, name, JSON). A later file may relate
/// to objects of an earlier one by api name.
const SEEDS: &[(i64, &str, &str)] = &[
    (1001, "seed_customers", include_str!("objects.json")),
    (1002, "seed_activities", include_str!("activities.json")),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    objects: Vec<SeedObject>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedObject {
    api_name: String,
    table: String,
    label: Label,
    plural: Label,
    icon: String,
    fields: Vec<SeedField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedField {
    api_name: String,
    column: String,
    #[serde(rename = "type")]
    ftype: FieldType,
    label: Label,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    unique: bool,
    #[serde(default)]
    filterable: bool,
    #[serde(default)]
    searchable: bool,
    #[serde(default)]
    default: Option<serde_json::Value>,
    #[serde(default)]
    options: FieldOptions,
    #[serde(default)]
    target_object: Option<String>,
    /// A default list column (see the settings page "Objects & fields").
    #[serde(default)]
    in_list: bool,
    /// Shown in the create form (default true; the rest are edited on the record page).
    #[serde(default = "yes")]
    in_form: bool,
}

/// Create the standard objects unless they exist.
pub async fn seed(db: &Db) -> Result<()> {
    for (version, name, json) in SEEDS {
        seed_file(db, *version, name, json).await?;
    }
    external_id::seed(db).await?;
    Ok(())
}

async fn seed_file(db: &Db, version: i64, name: &str, json: &str) -> Result<()> {
    let file: SeedFile = serde_json::from_str(json).map_err(|e| AppError::internal(format!("{name}: {e}")))?;
    let mut tx = db.begin().await?;
    if !kehu_db::migrate::claim(&mut tx, version, name).await? {
        tx.rollback().await?;
        return Ok(());
    }
    let mut ids: HashMap<String, Uuid> = HashMap::new();
    let q = sea_query::Query::select()
        .columns(["api_name", "id"].map(sea_query::Alias::new))
        .from(sea_query::Alias::new("meta_objects"))
        .to_owned();
    for row in tx.all(&q).await? {
        if let (Some(api), Some(id)) = (row.string(0), row.uuid(1)) {
            ids.insert(api, id);
        }
    }
    ids.extend(file.objects.iter().map(|o| (o.api_name.clone(), new_id())));
    for o in file.objects {
        let id = ids[&o.api_name];
        let obj = ObjectDef {
            id,
            api_name: o.api_name,
            table: o.table,
            label: o.label,
            plural: o.plural,
            icon: o.icon,
            is_system: true,
            archived: false,
            fields: Vec::new(),
        };
        let fields: Vec<FieldDef> = o
            .fields
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let mut options = f.options;
                if let Some(t) = &f.target_object {
                    options.target = ids.get(t).copied();
                }
                FieldDef {
                    id: new_id(),
                    object_id: id,
                    api_name: f.api_name,
                    column: f.column,
                    ftype: f.ftype,
                    label: f.label,
                    help: None,
                    required: f.required,
                    unique: f.unique,
                    filterable: f.filterable,
                    searchable: f.searchable,
                    default: f.default,
                    options,
                    position: i as i32,
                    archived: false,
                    in_form: f.in_form,
                    in_list: f.in_list,
                    builtin: false,
                    readonly: false,
                }
            })
            .collect();
        create_object_in(&mut tx, &obj, &fields).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn yes() -> bool {
    true
}
