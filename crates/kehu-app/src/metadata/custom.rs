//! Customisation from the settings pages: reorder fields, archive and restore fields, edit an
//! object's labels and icon, delete (archive) and restore custom objects, and the overview
//! with record counts. Each change needs `manage_metadata`, runs in one transaction with its
//! audit entry and bumps the schema epoch, so every server shows it at once.

use super::{check_admin, lock};
use crate::{App, Result};
use kehu_core::meta::{validate_labels, Label, ObjectDef};
use kehu_core::perm::Actor;
use kehu_core::{now_micros, AppError, Uuid};
use kehu_db::journal::{self, AuditEntry};
use kehu_db::{meta_store, Tx};
use std::sync::Arc;

/// Icons an object may take (sprites in the web layer's icon sheet).
pub const ICONS: [&str; 12] =
    ["box", "building", "user", "users", "tree", "mail", "globe", "key", "shield", "code", "home", "settings"];

/// An audit entry for a metadata change (`subject` is the object or field id).
pub(crate) async fn audit(
    tx: &mut Tx,
    actor: &Actor,
    object_id: Uuid,
    subject: Uuid,
    action: &str,
    details: serde_json::Value,
) -> Result<()> {
    let e =
        AuditEntry { at: now_micros(), actor: actor.user_id, object_id, record_id: subject, action, changes: details };
    journal::audit(tx, &[e]).await?;
    Ok(())
}

/// A change to an object's labels or icon; absent members stay as they are.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectPatch {
    pub label: Option<Label>,
    pub plural: Option<Label>,
    pub icon: Option<String>,
}

/// An object on the settings overview.
pub struct ObjectSummary {
    pub object: Arc<ObjectDef>,
    pub records: i64,
}

impl App {
    /// Every object, standard and custom, archived ones last, with its number of live records.
    pub async fn object_overview(&self, actor: &Actor) -> Result<Vec<ObjectSummary>> {
        check_admin(actor)?;
        let schema = self.schema().await?;
        let mut out = Vec::new();
        for o in schema.objects().iter().chain(schema.archived_objects()) {
            let records = meta_store::record_count(&self.db, &o.table).await?;
            out.push(ObjectSummary { object: o.clone(), records });
        }
        Ok(out)
    }

    /// Edit an object's labels and icon.
    pub async fn edit_object(&self, actor: &Actor, api: &str, patch: ObjectPatch) -> Result<Arc<ObjectDef>> {
        check_admin(actor)?;
        let schema = self.schema().await?;
        let mut obj = (**schema.object(api)?).clone();
        obj.label = patch.label.unwrap_or(obj.label);
        obj.plural = patch.plural.unwrap_or(obj.plural);
        validate_labels(&[("label", &obj.label), ("plural", &obj.plural)])?;
        if let Some(i) = patch.icon {
            if !ICONS.contains(&i.as_str()) {
                return Err(AppError::field("icon", "meta.invalid_icon"));
            }
            obj.icon = i;
        }
        let mut tx = self.db.begin().await?;
        meta_store::update_object(&mut tx, &obj).await?;
        audit(&mut tx, actor, obj.id, obj.id, "metadata.object_updated", serde_json::json!({"api_name": obj.api_name}))
            .await?;
        meta_store::bump_epoch(&mut tx).await?;
        tx.commit().await?;
        let schema = self.reload_schema().await?;
        Ok(schema.object(api)?.clone())
    }

    /// Put an object's fields in this order (api names; fields not named keep their relative
    /// order after the named ones). One transaction.
    pub async fn reorder_fields(&self, actor: &Actor, object: &str, order: &[String]) -> Result<()> {
        check_admin(actor)?;
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let mut ids = Vec::new();
        for api in order {
            let f = obj.field_any(api).filter(|f| !f.builtin).ok_or_else(|| AppError::not_found("field.not_found"))?;
            if ids.contains(&f.id) {
                return Err(AppError::invalid("meta.invalid_order"));
            }
            ids.push(f.id);
        }
        for f in obj.fields.iter().filter(|f| !f.builtin) {
            if !ids.contains(&f.id) {
                ids.push(f.id);
            }
        }
        let positions: Vec<(Uuid, i32)> = ids.iter().enumerate().map(|(i, id)| (*id, i as i32)).collect();
        let mut tx = self.db.begin().await?;
        lock(&mut tx).await?;
        meta_store::set_positions(&mut tx, &positions).await?;
        let names: Vec<&str> = order.iter().map(String::as_str).collect();
        audit(&mut tx, actor, obj.id, obj.id, "metadata.fields_reordered", serde_json::json!({"order": names})).await?;
        meta_store::bump_epoch(&mut tx).await?;
        tx.commit().await?;
        self.reload_schema().await?;
        Ok(())
    }

    /// Move one field a place up or down among the object's own fields (the settings page's
    /// buttons, which work without a mouse or script).
    pub async fn move_field(&self, actor: &Actor, object: &str, field: &str, up: bool) -> Result<()> {
        check_admin(actor)?;
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        let mut order: Vec<String> = obj.fields.iter().filter(|f| !f.builtin).map(|f| f.api_name.clone()).collect();
        let i = order.iter().position(|a| a == field).ok_or_else(|| AppError::not_found("field.not_found"))?;
        let j = if up { i.checked_sub(1) } else { Some(i + 1).filter(|&j| j < order.len()) };
        if let Some(j) = j {
            order.swap(i, j);
            self.reorder_fields(actor, object, &order).await?;
        }
        Ok(())
    }

    /// Delete a custom object: it is archived (hidden from navigation, lists, search and the
    /// API; its table and records kept) and can be restored. `confirm` must repeat its name
    /// (api name or label in either language). Standard objects cannot be deleted.
    pub async fn delete_object(&self, actor: &Actor, api: &str, confirm: &str) -> Result<()> {
        check_admin(actor)?;
        let schema = self.schema().await?;
        let mut obj = (**schema.object(api)?).clone();
        if obj.is_system {
            return Err(AppError::forbidden("meta.system_object"));
        }
        let c = confirm.trim();
        if c.is_empty() || (c != obj.api_name && c != obj.label.en && c != obj.label.zh) {
            return Err(AppError::field("confirm", "meta.confirm_mismatch"));
        }
        if schema.objects().iter().any(|o| o.id != obj.id && o.active().any(|f| f.options.target == Some(obj.id))) {
            // Relations of other objects would point into nothing; they are archived first.
            return Err(AppError::invalid("meta.object_referenced"));
        }
        obj.archived = true;
        self.set_object_archived(actor, &obj, "metadata.object_deleted").await
    }

    /// Bring a deleted custom object back with all its records.
    pub async fn restore_object(&self, actor: &Actor, api: &str) -> Result<()> {
        check_admin(actor)?;
        let schema = self.schema().await?;
        let mut obj = (**schema
            .archived_objects()
            .iter()
            .find(|o| o.api_name == api)
            .ok_or_else(|| AppError::not_found("object.not_found"))?)
        .clone();
        obj.archived = false;
        self.set_object_archived(actor, &obj, "metadata.object_restored").await
    }

    async fn set_object_archived(&self, actor: &Actor, obj: &ObjectDef, action: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        lock(&mut tx).await?;
        meta_store::update_object(&mut tx, obj).await?;
        audit(&mut tx, actor, obj.id, obj.id, action, serde_json::json!({"api_name": obj.api_name})).await?;
        meta_store::bump_epoch(&mut tx).await?;
        tx.commit().await?;
        self.reload_schema().await?;
        Ok(())
    }
}
