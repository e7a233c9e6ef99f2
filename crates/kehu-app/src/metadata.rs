//! Metadata changes: create objects (a real table), add fields (a real column), edit labels,
//! options and flags, reorder, archive. Every change runs in one transaction with its DDL
//! and bumps the schema epoch, so all app servers see it.

use crate::{App, Result};
use kehu_core::meta::{
    validate_api_name, validate_labels, validate_options, FieldDef, FieldOptions, FieldType, Label, ObjectDef,
};
use kehu_core::perm::Actor;
use kehu_core::value::parse_input;
use kehu_core::{new_id, AppError, Uuid};
use kehu_db::{ddl, meta_store, Tx};
use serde::Deserialize;
use serde_json::Value as Json;
use std::sync::Arc;

mod custom;
pub use custom::{ObjectPatch, ObjectSummary, ICONS};

/// A request to create an object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewObject {
    pub api_name: String,
    pub label: Label,
    pub plural: Label,
    #[serde(default)]
    pub icon: Option<String>,
}

/// A request to add a field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewField {
    pub api_name: String,
    #[serde(rename = "type")]
    pub ftype: FieldType,
    pub label: Label,
    #[serde(default)]
    pub help: Option<Label>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub filterable: bool,
    #[serde(default)]
    pub searchable: Option<bool>,
    #[serde(default)]
    pub default: Option<Json>,
    #[serde(default)]
    pub options: FieldOptions,
    /// For relations: the target object's api name (instead of `options.target`).
    #[serde(default)]
    pub target_object: Option<String>,
    #[serde(default)]
    pub position: Option<i32>,
    /// Shown in the create form (default true; required fields always are).
    #[serde(default)]
    pub in_form: Option<bool>,
    /// A default list column.
    #[serde(default)]
    pub in_list: bool,
}

/// A change to a field; absent members stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldPatch {
    pub api_name: Option<String>,
    pub label: Option<Label>,
    pub help: Option<Label>,
    pub required: Option<bool>,
    pub unique: Option<bool>,
    pub filterable: Option<bool>,
    pub searchable: Option<bool>,
    pub default: Option<Json>,
    pub choices: Option<Vec<kehu_core::meta::Choice>>,
    pub max_length: Option<u32>,
    pub position: Option<i32>,
    pub archived: Option<bool>,
    pub in_form: Option<bool>,
    pub in_list: Option<bool>,
}

/// A short random name for a table or column: `<prefix>` + 10 base-32 characters.
fn physical_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes = Uuid::now_v7().into_bytes();
    let mut bits = u64::from_be_bytes(bytes[8..16].try_into().unwrap_or([0; 8]));
    let mut s = String::from(prefix);
    for _ in 0..10 {
        s.push(ALPHABET[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    s
}

/// Every field error of several checks at once (a form shows them all together).
fn all_errors<const N: usize>(checks: [Result<()>; N]) -> Result<()> {
    let mut fields = Vec::new();
    for c in checks {
        match c {
            Ok(()) => {}
            Err(e) if !e.fields.is_empty() => fields.extend(e.fields),
            Err(e) => return Err(e),
        }
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(AppError::fields(fields))
    }
}

pub(crate) fn check_admin(actor: &Actor) -> Result<()> {
    if actor.can_manage_metadata() {
        Ok(())
    } else {
        Err(AppError::forbidden("permission.denied"))
    }
}

pub(crate) async fn run_ddl(tx: &mut Tx, stmts: &[String]) -> Result<()> {
    for s in stmts {
        tx.ddl(s).await?;
    }
    Ok(())
}

pub(crate) async fn lock(tx: &mut Tx) -> Result<()> {
    if tx.backend() == kehu_db::Backend::Postgres {
        tx.ddl(&format!("SELECT pg_advisory_xact_lock({})", kehu_db::migrate::DDL_LOCK)).await?;
    }
    Ok(())
}

impl App {
    /// Create a custom object: its table, and a required `name` field that titles its records.
    pub async fn create_object(&self, actor: &Actor, req: NewObject) -> Result<Arc<ObjectDef>> {
        check_admin(actor)?;
        all_errors([
            validate_api_name(&req.api_name, "api_name"),
            validate_labels(&[("label", &req.label), ("plural", &req.plural)]),
        ])?;
        let schema = self.schema().await?;
        if schema.object_any(&req.api_name).is_some() {
            return Err(AppError::field("api_name", "meta.api_name_taken"));
        }
        let obj = ObjectDef {
            id: new_id(),
            api_name: req.api_name,
            table: physical_name("o_"),
            label: req.label,
            plural: req.plural,
            icon: req
                .icon
                .filter(|i| i.len() <= 40 && i.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or_else(|| "box".into()),
            is_system: false,
            archived: false,
            fields: Vec::new(),
            ui: Default::default(),
        };
        let name = FieldDef {
            id: new_id(),
            object_id: obj.id,
            api_name: "name".into(),
            column: physical_name("f_"),
            ftype: FieldType::Text,
            label: Label::new("Name", "名称"),
            help: None,
            required: true,
            unique: false,
            filterable: true,
            searchable: true,
            default: None,
            options: FieldOptions::default(),
            position: 0,
            archived: false,
            in_form: true,
            in_list: true,
            builtin: false,
            readonly: false,
        };
        let mut tx = self.db.begin().await?;
        lock(&mut tx).await?;
        create_object_in(&mut tx, &obj, &[name]).await.map_err(|e| match e.code.as_str() {
            "record.duplicate" => AppError::field("api_name", "meta.api_name_taken"),
            _ => e,
        })?;
        custom::audit(
            &mut tx,
            actor,
            obj.id,
            obj.id,
            "metadata.object_created",
            serde_json::json!({"api_name": obj.api_name}),
        )
        .await?;
        tx.commit().await?;
        let schema = self.reload_schema().await?;
        Ok(schema.object(&obj.api_name)?.clone())
    }

    /// Edit an object's labels and icon.
    pub async fn update_object(
        &self,
        actor: &Actor,
        api: &str,
        label: Option<Label>,
        plural: Option<Label>,
    ) -> Result<()> {
        check_admin(actor)?;
        let schema = self.schema().await?;
        let mut obj = (**schema.object(api)?).clone();
        if let Some(l) = label {
            obj.label = l;
        }
        if let Some(p) = plural {
            obj.plural = p;
        }
        validate_labels(&[("label", &obj.label), ("plural", &obj.plural)])?;
        let mut tx = self.db.begin().await?;
        meta_store::update_object(&mut tx, &obj).await?;
        meta_store::bump_epoch(&mut tx).await?;
        tx.commit().await?;
        self.reload_schema().await?;
        Ok(())
    }

    /// Add a field to an object: a new column (and index), immediately usable everywhere.
    pub async fn add_field(&self, actor: &Actor, object: &str, req: NewField) -> Result<Arc<FieldDef>> {
        check_admin(actor)?;
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let taken = if obj.field_any(&req.api_name).is_some() {
            Err(AppError::field("api_name", "meta.api_name_taken"))
        } else {
            validate_api_name(&req.api_name, "api_name")
        };
        all_errors([taken, validate_labels(&[("label", &req.label)])])?;
        if let Some(h) = &req.help {
            validate_labels(&[("help", h)])?;
        }
        let mut options = req.options;
        if let Some(t) = &req.target_object {
            options.target =
                Some(schema.object(t).map_err(|_| AppError::field("target_object", "meta.unknown_object"))?.id);
        }
        validate_options(req.ftype, &options)?;
        if let Some(t) = options.target {
            if schema.object_by_id(t).is_none() {
                return Err(AppError::field("target_object", "meta.unknown_object"));
            }
        }
        if req.unique
            && !matches!(
                req.ftype,
                FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url | FieldType::Integer
            )
        {
            return Err(AppError::field("unique", "meta.unique_not_supported"));
        }
        let position = req.position.unwrap_or_else(|| obj.data_fields().map(|f| f.position).max().unwrap_or(0) + 1);
        let mut field = FieldDef {
            id: new_id(),
            object_id: obj.id,
            api_name: req.api_name,
            column: physical_name("f_"),
            ftype: req.ftype,
            label: req.label,
            help: req.help,
            required: req.required,
            unique: req.unique,
            filterable: req.filterable,
            searchable: req.searchable.unwrap_or_else(|| req.ftype.searchable_by_default()),
            default: None,
            options,
            position,
            archived: false,
            in_form: req.in_form.unwrap_or(true),
            in_list: req.in_list,
            builtin: false,
            readonly: false,
        };
        if let Some(d) = req.default.filter(|d| !d.is_null()) {
            parse_input(&field, &d).map_err(|code| AppError::field("default", code))?;
            field.default = Some(d);
        }
        let mut tx = self.db.begin().await?;
        lock(&mut tx).await?;
        meta_store::insert_field(&mut tx, &field).await.map_err(|e| match e {
            kehu_db::DbError::Unique { .. } => AppError::field("api_name", "meta.api_name_taken"),
            other => other.into(),
        })?;
        let stmts = ddl::add_field(tx.backend(), &obj.table, &field);
        run_ddl(&mut tx, &stmts).await?;
        let details = serde_json::json!({"api_name": field.api_name, "type": field.ftype.as_str()});
        custom::audit(&mut tx, actor, obj.id, field.id, "metadata.field_added", details).await?;
        meta_store::bump_epoch(&mut tx).await?;
        tx.commit().await?;
        let schema = self.reload_schema().await?;
        let obj = schema.object(object)?;
        obj.field(&field.api_name).cloned().ok_or_else(|| AppError::internal("field vanished"))
    }

    /// Change a field. Renaming changes metadata only; archiving hides the field and keeps its
    /// data; unique and filterable rebuild its index.
    pub async fn update_field(
        &self,
        actor: &Actor,
        object: &str,
        field: &str,
        patch: FieldPatch,
    ) -> Result<Arc<FieldDef>> {
        check_admin(actor)?;
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let cur = obj.field_any(field).ok_or_else(|| AppError::not_found("field.not_found"))?;
        if cur.builtin {
            return Err(AppError::forbidden("meta.builtin_field"));
        }
        let mut f = (**cur).clone();
        if let Some(n) = patch.api_name {
            validate_api_name(&n, "api_name")?;
            if n != f.api_name && obj.field_any(&n).is_some() {
                return Err(AppError::field("api_name", "meta.api_name_taken"));
            }
            f.api_name = n;
        }
        if let Some(l) = patch.label {
            validate_labels(&[("label", &l)])?;
            f.label = l;
        }
        if let Some(h) = patch.help {
            validate_labels(&[("help", &h)])?;
            f.help = Some(h);
        }
        // Options removed by this change; refused below (inside the transaction) if records use them.
        let mut removed = Vec::new();
        if let Some(c) = patch.choices {
            removed = f.options.choices.iter().filter(|old| !c.iter().any(|n| n.key == old.key)).cloned().collect();
            f.options.choices = c;
        }
        if !removed.is_empty() {
            let mut tx = self.db.begin().await?;
            refuse_used_choices(&mut tx, &obj, &f, &removed).await?;
            tx.rollback().await?;
        }
        if let Some(m) = patch.max_length {
            f.options.max_length = Some(m);
        }
        validate_options(f.ftype, &f.options)?;
        f.required = patch.required.unwrap_or(f.required);
        f.searchable = patch.searchable.unwrap_or(f.searchable);
        f.position = patch.position.unwrap_or(f.position);
        f.archived = patch.archived.unwrap_or(f.archived);
        f.in_form = patch.in_form.unwrap_or(f.in_form);
        f.in_list = patch.in_list.unwrap_or(f.in_list);
        if let Some(d) = patch.default {
            if d.is_null() {
                f.default = None;
            } else {
                parse_input(&f, &d).map_err(|code| AppError::field("default", code))?;
                f.default = Some(d);
            }
        }
        let reindex =
            patch.unique.is_some_and(|u| u != f.unique) || patch.filterable.is_some_and(|x| x != f.filterable);
        f.unique = patch.unique.unwrap_or(f.unique);
        f.filterable = patch.filterable.unwrap_or(f.filterable);
        let mut tx = self.db.begin().await?;
        lock(&mut tx).await?;
        // Checked again under the lock, so a value written meanwhile is not orphaned.
        refuse_used_choices(&mut tx, &obj, &f, &removed).await?;
        meta_store::update_field(&mut tx, &f).await.map_err(|e| match e {
            kehu_db::DbError::Unique { .. } => AppError::field("api_name", "meta.api_name_taken"),
            other => other.into(),
        })?;
        if reindex {
            rebuild_field_indexes(&mut tx, &obj.table, &f).await?;
        }
        let action = match (cur.archived, f.archived) {
            (false, true) => "metadata.field_archived",
            (true, false) => "metadata.field_restored",
            _ => "metadata.field_updated",
        };
        custom::audit(&mut tx, actor, obj.id, f.id, action, serde_json::json!({"api_name": f.api_name})).await?;
        meta_store::bump_epoch(&mut tx).await?;
        tx.commit().await?;
        let schema = self.reload_schema().await?;
        let obj = schema.object(object)?;
        obj.field_any(&f.api_name).cloned().ok_or_else(|| AppError::internal("field vanished"))
    }
}

/// Drop and create a field's indexes, after its unique or filterable flag changed (by an
/// administrator, or by a seed).
pub(crate) async fn rebuild_field_indexes(tx: &mut Tx, table: &str, f: &FieldDef) -> Result<()> {
    run_ddl(tx, &ddl::drop_field_indexes(table, f)).await?;
    let stmts = ddl::field_indexes(tx.backend(), table, f);
    run_ddl(tx, &stmts).await.map_err(|e| {
        if e.code == "record.duplicate" {
            AppError::field("unique", "meta.values_not_unique")
        } else {
            e
        }
    })
}

/// Refuse to remove select options that records (deleted ones included) still hold.
async fn refuse_used_choices(
    tx: &mut Tx,
    obj: &ObjectDef,
    f: &FieldDef,
    removed: &[kehu_core::meta::Choice],
) -> Result<()> {
    for c in removed {
        let multi = f.ftype == FieldType::MultiSelect;
        if meta_store::choice_uses(tx, &obj.table, &f.column, &c.key, multi).await? > 0 {
            return Err(AppError::field("choices", "meta.choice_in_use"));
        }
    }
    Ok(())
}

/// Create an object's table, its metadata row and its initial fields inside `tx` (used by
/// custom objects and by the seeds of standard objects alike).
pub async fn create_object_in(tx: &mut Tx, obj: &ObjectDef, fields: &[FieldDef]) -> Result<()> {
    let b = tx.backend();
    meta_store::insert_object(tx, obj).await?;
    run_ddl(tx, &ddl::create_object_table(b, &obj.table)).await?;
    for f in fields {
        meta_store::insert_field(tx, f).await?;
        run_ddl(tx, &ddl::add_field(b, &obj.table, f)).await?;
    }
    meta_store::bump_epoch(tx).await?;
    Ok(())
}
