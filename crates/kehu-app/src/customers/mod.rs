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
const SEEDS: &[(i64, &str, &str)] =
    &[(1001, "seed_customers", SEED_CUSTOMERS), (1002, "seed_activities", include_str!("activities.json"))];

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
    /// Its UI settings (status field, chips, card fields), applied once.
    #[serde(default)]
    ui: kehu_core::meta::ObjectUi,
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

/// Apply one seed file (a module's standard objects as JSON) under its version and name: see
/// `seed_file`. Modules seed through this; tests use it to evolve a seed.
pub async fn apply_seed(db: &Db, version: i64, name: &str, json: &str) -> Result<()> {
    seed_file(db, version, name, json).await
}

/// The standard objects of the customers module (companies, contacts).
pub const SEED_CUSTOMERS: &str = include_str!("objects.json");

/// The customers module's seed (its manifest entry): companies and contacts, then their
/// external ids.
pub(crate) fn seed(db: &Db) -> crate::work::BoxFut<'_, Result<()>> {
    Box::pin(async move {
        let (version, name, json) = SEEDS[0];
        seed_file(db, version, name, json).await?;
        external_id::seed(db).await
    })
}

/// The activity module's seed: the activity object (notes, calls, meetings, tasks, e-mails).
pub(crate) fn seed_activities(db: &Db) -> crate::work::BoxFut<'_, Result<()>> {
    Box::pin(async move {
        let (version, name, json) = SEEDS[1];
        seed_file(db, version, name, json).await
    })
}

/// A seed file, applied once and then evolved: on every start, what the file has and the
/// database lacks — a new object, a new field, a new select option — is added, once. Each item
/// applied is remembered in `seed_items`, so what an administrator removed later is not added
/// back, and nothing the administrator changed (labels, order, archiving) is touched.
/// Adding a field or an option to a standard object is one entry in the JSON file.
async fn seed_file(db: &Db, version: i64, name: &str, json: &str) -> Result<()> {
    let file: SeedFile = serde_json::from_str(json).map_err(|e| AppError::internal(format!("{name}: {e}")))?;
    // Read before the lock; what matters is re-read under it.
    let schema = kehu_db::meta_store::load(db).await?;
    let mut tx = db.begin().await?;
    // Takes the DDL lock (PostgreSQL); true the first time.
    let first = kehu_db::migrate::claim(&mut tx, version, name).await?;
    let applied: std::collections::HashSet<String> = tx
        .all(&kehu_db::Raw::new("SELECT key FROM seed_items", vec![]))
        .await?
        .iter()
        .filter_map(|r| r.string(0))
        .collect();
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
    let existing: std::collections::HashSet<String> = ids.keys().cloned().collect();
    for o in &file.objects {
        ids.entry(o.api_name.clone()).or_insert_with(new_id);
    }
    let mut done: Vec<String> = Vec::new();
    let mut changed = false;
    for o in file.objects {
        let okey = o.api_name.clone();
        let keys = item_keys(&o);
        if !existing.contains(&o.api_name) {
            if applied.contains(&okey) {
                continue;
            }
            let (obj, fields) = build(o, &ids);
            create_object_in(&mut tx, &obj, &fields).await?;
            done.extend(keys);
            changed = true;
            continue;
        }
        done.push(okey);
        let Some(cur) = schema.object_any(&o.api_name).cloned() else { continue };
        // UI settings new in the seed: applied once, unless an administrator set some.
        let ui_key = format!("{}#ui", o.api_name);
        if o.ui != Default::default() && !applied.contains(&ui_key) {
            if cur.ui == Default::default() {
                let mut def = (*cur).clone();
                def.ui = o.ui.clone();
                kehu_db::meta_store::update_object(&mut tx, &def).await?;
                changed = true;
            }
            done.push(ui_key);
        }
        let fields_now = field_options(&mut tx, cur.id).await?;
        let mut next_position = cur.fields.iter().map(|f| f.position).max().unwrap_or(0) + 1;
        let (obj, fields) = build(o, &ids);
        for mut f in fields {
            let fkey = format!("{}.{}", obj.api_name, f.api_name);
            match fields_now.get(&f.api_name) {
                None if applied.contains(&fkey) => {}
                None => {
                    // A field new in the seed: added at the end, with its column and index.
                    f.object_id = cur.id;
                    f.position = next_position;
                    next_position += 1;
                    kehu_db::meta_store::insert_field(&mut tx, &f).await?;
                    let stmts = kehu_db::ddl::add_field(tx.backend(), &cur.table, &f);
                    crate::metadata::run_ddl(&mut tx, &stmts).await?;
                    if f.filterable {
                        done.push(format!("{fkey}#filterable"));
                    }
                    done.push(fkey);
                    done.extend(f.options.choices.iter().map(|c| format!("{}.{}.{}", obj.api_name, f.api_name, c.key)));
                    changed = true;
                }
                Some(now) => {
                    // A field the seed now makes filterable becomes so, once (an
                    // administrator may turn it off again).
                    let flag = format!("{fkey}#filterable");
                    if f.filterable && !applied.contains(&flag) {
                        if let Some(def) = cur.field_any(&f.api_name).filter(|d| !d.filterable) {
                            let mut def = (**def).clone();
                            def.filterable = true;
                            kehu_db::meta_store::update_field(&mut tx, &def).await?;
                            // Its index, as an administrator's change would make it.
                            crate::metadata::rebuild_field_indexes(&mut tx, &cur.table, &def).await?;
                            changed = true;
                        }
                        done.push(flag);
                    }
                    done.push(fkey);
                    // Options new in the seed: appended to the field's options.
                    let mut opts = now.clone();
                    for c in &f.options.choices {
                        let ckey = format!("{}.{}.{}", obj.api_name, f.api_name, c.key);
                        if !opts.choices.iter().any(|x| x.key == c.key) && !applied.contains(&ckey) {
                            opts.choices.push(c.clone());
                        }
                        done.push(ckey);
                    }
                    if opts.choices.len() != now.choices.len() {
                        if let Some(def) = cur.field_any(&f.api_name) {
                            let mut def = (**def).clone();
                            def.options = opts;
                            kehu_db::meta_store::update_field(&mut tx, &def).await?;
                            changed = true;
                        }
                    }
                }
            }
        }
    }
    let at = kehu_core::now_micros();
    for key in done.iter().filter(|k| !applied.contains(*k)) {
        tx.exec(&kehu_db::Raw::new(
            "INSERT INTO seed_items (key, applied_at) VALUES ($1, $2)",
            vec![key.clone().into(), at.into()],
        ))
        .await?;
    }
    if changed && !first {
        kehu_db::meta_store::bump_epoch(&mut tx).await?;
        tracing::info!(seed = name, "standard objects gained what their seed added");
    }
    tx.commit().await?;
    Ok(())
}

/// The keys of every item of a seed object: the object, its fields, their options.
fn item_keys(o: &SeedObject) -> Vec<String> {
    let mut out = vec![o.api_name.clone()];
    if o.ui != Default::default() {
        out.push(format!("{}#ui", o.api_name));
    }
    for f in &o.fields {
        out.push(format!("{}.{}", o.api_name, f.api_name));
        if f.filterable {
            out.push(format!("{}.{}#filterable", o.api_name, f.api_name));
        }
        out.extend(f.options.choices.iter().map(|c| format!("{}.{}.{}", o.api_name, f.api_name, c.key)));
    }
    out
}

/// The current options of each field of an object (read under the lock).
async fn field_options(tx: &mut kehu_db::Tx, object: Uuid) -> Result<HashMap<String, FieldOptions>> {
    let rows = tx
        .all(&kehu_db::Raw::new("SELECT api_name, options FROM meta_fields WHERE object_id = $1", vec![object.into()]))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let opts = r.str(1).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
            Some((r.string(0)?, opts))
        })
        .collect())
}

/// The object and field definitions of a seed object (relations resolved through `ids`).
fn build(o: SeedObject, ids: &HashMap<String, Uuid>) -> (ObjectDef, Vec<FieldDef>) {
    let id = ids.get(&o.api_name).copied().unwrap_or_else(new_id);
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
        ui: o.ui,
    };
    let fields = o
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
    (obj, fields)
}

fn yes() -> bool {
    true
}
