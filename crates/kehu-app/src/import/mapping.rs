//! Which column goes into which field: the settings of an import (mode, key, column map,
//! "create missing related records"), their automatic suggestion from the header row (field
//! labels in either language, or api names; case, spaces, `_` and `-` ignored), their check
//! against metadata and the user's permissions, and named mappings saved per object.

use crate::{App, Result};
use kehu_core::meta::{FieldType, ObjectDef};
use kehu_core::perm::{Action, Actor};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::records::col;
use kehu_db::Raw;
use sea_query::{Alias, Order, Query};
use serde::{Deserialize, Serialize};

/// Header names of the error column our failed-rows CSV adds (ignored on re-import).
pub const ERROR_HEADERS: [&str; 2] = ["Import error", "导入错误"];

/// Create new records, update existing ones, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    #[default]
    Create,
    Update,
    Upsert,
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::Create => "create",
            ImportMode::Update => "update",
            ImportMode::Upsert => "upsert",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(Self::Create),
            "update" => Some(Self::Update),
            "upsert" => Some(Self::Upsert),
            _ => None,
        }
    }
}

/// How to import a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    pub mode: ImportMode,
    /// The field that finds existing records (update, upsert; optional for create, where a
    /// row whose key exists is skipped).
    #[serde(default)]
    pub key: Option<String>,
    /// For each column of the file: the field it fills (api name), or none.
    pub columns: Vec<Option<String>>,
    /// Create related records (e.g. companies) that a relation column names but that do
    /// not exist.
    #[serde(default)]
    pub create_missing: bool,
}

fn norm(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && !matches!(c, '_' | '-' | '*')).flat_map(char::to_lowercase).collect()
}

/// A stable signature of a header row (for reusing a mapping when the headers match).
pub fn headers_key(headers: &[String]) -> String {
    headers.iter().map(|h| norm(h)).collect::<Vec<_>>().join("\u{1f}")
}

/// A saved mapping applied to a file's headers: each column takes what the saved mapping did
/// with the column of the same (normalised) header — including "skip" — and a column the
/// saved file did not have gets the automatic suggestion, unless the saved mapping already
/// fills that field. Mode, key and "create missing" come from the saved mapping.
pub fn apply_saved(obj: &ObjectDef, saved_key: &str, saved: &ImportSettings, headers: &[String]) -> ImportSettings {
    let saved_headers: Vec<&str> = saved_key.split('\u{1f}').collect();
    let mut taken = vec![false; saved_headers.len()];
    let from_saved: Vec<Option<Option<String>>> = headers
        .iter()
        .map(|h| {
            let n = norm(h);
            let i = (0..saved_headers.len()).find(|&i| !taken[i] && saved_headers[i] == n)?;
            taken[i] = true;
            Some(saved.columns.get(i).cloned().flatten().filter(|f| obj.field(f).is_some()))
        })
        .collect();
    let used: Vec<String> = from_saved.iter().flatten().flatten().cloned().collect();
    let auto = auto_map(obj, headers);
    let columns = from_saved
        .into_iter()
        .zip(auto)
        .map(|(s, a)| match s {
            Some(choice) => choice,
            None => a.filter(|f| !used.contains(f)),
        })
        .collect::<Vec<_>>();
    let key = saved.key.clone().filter(|k| columns.iter().flatten().any(|c| c == k));
    ImportSettings { mode: saved.mode, key, columns, create_missing: saved.create_missing }
}

/// Fields a column may fill: data fields and the owner.
fn targets(obj: &ObjectDef) -> impl Iterator<Item = &std::sync::Arc<kehu_core::meta::FieldDef>> {
    obj.active().filter(|f| !f.readonly && (!f.builtin || f.api_name == "owner"))
}

/// Suggest a field for each header: label (either language) or api name.
pub fn auto_map(obj: &ObjectDef, headers: &[String]) -> Vec<Option<String>> {
    let mut used: Vec<String> = Vec::new();
    headers
        .iter()
        .map(|h| {
            let n = norm(h);
            if n.is_empty() || ERROR_HEADERS.iter().any(|e| norm(e) == n) {
                return None;
            }
            let f = targets(obj).find(|f| {
                !used.contains(&f.api_name)
                    && (norm(&f.label.en) == n || norm(&f.label.zh) == n || norm(&f.api_name) == n)
            })?;
            used.push(f.api_name.clone());
            Some(f.api_name.clone())
        })
        .collect()
}

/// Whether a field can find existing records.
pub fn can_be_key(f: &kehu_core::meta::FieldDef) -> bool {
    !f.builtin
        && (f.unique || matches!(f.ftype, FieldType::Email | FieldType::Phone) || f.api_name == "external_id")
        && matches!(
            f.ftype,
            FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Integer | FieldType::Url
        )
}

/// Check settings for `obj` and `actor`: permissions for the mode, every mapped field
/// writable, no field twice, a usable key, required fields present for creating.
pub fn validate(
    actor: &Actor,
    schema: &kehu_core::meta::Schema,
    obj: &ObjectDef,
    s: &ImportSettings,
    columns: usize,
) -> Result<()> {
    if s.columns.len() != columns {
        return Err(AppError::invalid("import.mapping_mismatch"));
    }
    if matches!(s.mode, ImportMode::Create | ImportMode::Upsert) {
        actor.check(obj, Action::Create)?;
    }
    if matches!(s.mode, ImportMode::Update | ImportMode::Upsert) {
        actor.check(obj, Action::Update)?;
    }
    let mut seen: Vec<&str> = Vec::new();
    for api in s.columns.iter().flatten() {
        let f = obj.field(api).ok_or_else(|| AppError::field(api.clone(), "field.unknown"))?;
        if f.readonly || (f.builtin && f.api_name != "owner") {
            return Err(AppError::field(api.clone(), "field.readonly"));
        }
        if !actor.can_write_field(obj, f) {
            let mut e = AppError::forbidden("import.field_not_writable");
            e.fields.push(kehu_core::FieldError::new(api.clone(), "permission.field_denied"));
            return Err(e);
        }
        if seen.contains(&api.as_str()) {
            return Err(AppError::field(api.clone(), "import.field_mapped_twice"));
        }
        if f.ftype == FieldType::Relation && s.create_missing {
            if let Some(t) = f.options.target.and_then(|t| schema.object_by_id(t)) {
                actor.check(t, Action::Create)?;
            }
        }
        seen.push(api);
    }
    if seen.is_empty() {
        return Err(AppError::invalid("import.nothing_mapped"));
    }
    match (&s.key, s.mode) {
        (None, ImportMode::Update | ImportMode::Upsert) => return Err(AppError::field("key", "import.key_required")),
        (Some(k), _) => {
            let f = obj.field(k).ok_or_else(|| AppError::field("key", "field.unknown"))?;
            if !can_be_key(f) {
                return Err(AppError::field("key", "import.key_unsuitable"));
            }
            if !seen.contains(&k.as_str()) {
                return Err(AppError::field("key", "import.key_not_mapped"));
            }
        }
        _ => {}
    }
    if s.mode != ImportMode::Update {
        let composed =
            obj.field("first_name").is_some() && (seen.contains(&"first_name") || seen.contains(&"last_name"));
        for f in obj.data_fields() {
            if f.required && f.default.is_none() && !seen.contains(&f.api_name.as_str()) {
                if f.api_name == "name" && composed {
                    continue;
                }
                return Err(AppError::field(f.api_name.clone(), "import.required_not_mapped"));
            }
        }
    }
    Ok(())
}

/// A saved mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedMapping {
    pub id: Uuid,
    pub name: String,
    pub settings: ImportSettings,
    pub created_by: Option<Uuid>,
}

impl SavedMapping {
    /// Its creator or an administrator may delete it.
    pub fn deletable_by(&self, actor: &Actor) -> bool {
        actor.is_admin() || (self.created_by.is_some() && self.created_by == actor.user_id)
    }
}

/// Columns of `import_mappings` that make a `SavedMapping` (`saved_mapping`).
const SAVED_COLS: [&str; 4] = ["id", "name", "settings", "created_by"];

fn saved_mapping(r: &kehu_db::DbRow) -> Option<SavedMapping> {
    Some(SavedMapping {
        id: r.uuid(0)?,
        name: r.string(1)?,
        settings: serde_json::from_str(r.str(2)?).ok()?,
        created_by: r.uuid(3),
    })
}

impl App {
    /// Save (or replace, by name) a named mapping for an object.
    pub async fn save_import_mapping(
        &self,
        actor: &Actor,
        object: &str,
        name: &str,
        headers: &[String],
        settings: &ImportSettings,
    ) -> Result<()> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        validate(actor, &schema, obj, settings, headers.len())?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::field("mapping_name", "import.mapping_name_invalid"));
        }
        let json = serde_json::to_string(settings).map_err(|e| AppError::internal(e.to_string()))?;
        let now = now_micros();
        let mut tx = self.db.begin().await?;
        tx.exec(&Raw::new(
            "DELETE FROM import_mappings WHERE object_id = $1 AND name = $2",
            vec![obj.id.into(), name.into()],
        ))
        .await?;
        let q = Query::insert()
            .into_table(Alias::new("import_mappings"))
            .columns(
                ["id", "object_id", "name", "headers_key", "settings", "created_by", "created_at", "updated_at"]
                    .map(Alias::new),
            )
            .values_panic([
                new_id().into(),
                obj.id.into(),
                name.into(),
                headers_key(headers).into(),
                json.into(),
                sea_query::Value::from(actor.user_id).into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        tx.exec(&q).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Import `id`'s headers mapped as the saved mapping `mapping` says (`apply_saved`), to
    /// show on the mapping page; nothing is stored until the user saves the mapping.
    pub async fn import_apply_mapping(&self, actor: &Actor, id: Uuid, mapping: Uuid) -> Result<ImportSettings> {
        let v = self.import_view(actor, id).await?;
        let schema = self.schema().await?;
        let obj = schema.object(&v.object)?;
        let (saved, headers_key) = self.saved_mapping(obj.id, mapping).await?;
        Ok(apply_saved(obj, &headers_key, &saved.settings, &v.headers))
    }

    /// Delete a saved mapping of an object: its creator or an administrator.
    pub async fn delete_import_mapping(&self, actor: &Actor, object: &str, mapping: Uuid) -> Result<()> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        actor.check(obj, Action::Read)?;
        if !self.saved_mapping(obj.id, mapping).await?.0.deletable_by(actor) {
            return Err(AppError::forbidden("permission.denied"));
        }
        self.db.write(&Raw::new("DELETE FROM import_mappings WHERE id = $1", vec![mapping.into()])).await?;
        Ok(())
    }

    /// One saved mapping of an object, with the header signature it was saved for.
    async fn saved_mapping(&self, object_id: Uuid, mapping: Uuid) -> Result<(SavedMapping, String)> {
        let q = Query::select()
            .columns(SAVED_COLS.map(Alias::new))
            .column(Alias::new("headers_key"))
            .from(Alias::new("import_mappings"))
            .and_where(col("id").eq(mapping))
            .and_where(col("object_id").eq(object_id))
            .to_owned();
        let row = self.db.one(&q).await?;
        row.and_then(|r| Some((saved_mapping(&r)?, r.string(4)?)))
            .ok_or_else(|| AppError::not_found("import.mapping_not_found"))
    }

    /// Saved mappings of an object, newest first.
    pub async fn import_mappings(&self, actor: &Actor, object: &str) -> Result<Vec<SavedMapping>> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        actor.check(obj, Action::Read)?;
        let q = Query::select()
            .columns(SAVED_COLS.map(Alias::new))
            .from(Alias::new("import_mappings"))
            .and_where(col("object_id").eq(obj.id))
            .order_by(Alias::new("updated_at"), Order::Desc)
            .limit(100)
            .to_owned();
        Ok(self.db.all(&q).await?.iter().filter_map(saved_mapping).collect())
    }

    /// The settings to propose for a file: the last import of this object with the same
    /// headers (its settings), else a saved mapping for these headers, else automatic.
    pub(crate) async fn suggest_settings(&self, obj: &ObjectDef, headers: &[String]) -> Result<ImportSettings> {
        let key = headers_key(headers);
        for sql in [
            "SELECT settings FROM imports WHERE object_id = $1 AND headers_key = $2 AND settings IS NOT NULL \
             AND state <> 'uploaded' ORDER BY created_at DESC LIMIT 1",
            "SELECT settings FROM import_mappings WHERE object_id = $1 AND headers_key = $2 ORDER BY updated_at DESC LIMIT 1",
        ] {
            let row = self.db.one(&Raw::new(sql, vec![obj.id.into(), key.clone().into()])).await?;
            if let Some(s) = row.and_then(|r| r.str(0).and_then(|s| serde_json::from_str::<ImportSettings>(s).ok())) {
                if s.columns.len() == headers.len() && s.columns.iter().flatten().all(|a| obj.field(a).is_some()) {
                    return Ok(s);
                }
            }
        }
        let columns = auto_map(obj, headers);
        let key = ["external_id", "email", "phone"]
            .into_iter()
            .find(|k| columns.iter().flatten().any(|c| c == k))
            .map(str::to_string);
        Ok(ImportSettings { mode: ImportMode::Create, key, columns, create_missing: false })
    }
}
