//! Field history of a record: every change of every field the actor may read, newest first,
//! with who made it and when (phone numbers and e-mails masked as elsewhere); and reverting a
//! field to the value it had before one of those changes — an ordinary update through the
//! engine, with the version the user read, so it is audited and leaves its own history entry.

use super::RecordView;
use crate::{App, Result};
use kehu_core::meta::{FieldDef, FieldType};
use kehu_core::perm::Actor;
use kehu_core::{AppError, Uuid};
use kehu_db::Raw;
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// One change of one field.
#[derive(Debug, Clone)]
pub struct FieldChangeView {
    pub id: Uuid,
    pub field: Arc<FieldDef>,
    /// The value before the change (masked where the actor sees masked values).
    pub old: Json,
    pub new: Json,
    pub at: i64,
    pub by: Option<Uuid>,
    /// Whether the actor may set the field back to `old` (field active and writable).
    pub revertible: bool,
}

/// A page of history; `before` continues with older changes.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The record as the actor sees it (reading it checked the permission and scope).
    pub record: RecordView,
    pub changes: Vec<FieldChangeView>,
    pub before: Option<String>,
}

/// A value as `field_history` stores it (JSON text), masked when the reader sees contact
/// details masked. The timeline shows changes through this too.
pub(crate) fn stored_value(field: &FieldDef, raw: Option<String>, unmasked: bool) -> Json {
    let v = raw.and_then(|s| serde_json::from_str::<Json>(&s).ok()).unwrap_or(Json::Null);
    match (&v, field.ftype) {
        (Json::String(s), FieldType::Phone | FieldType::Email) if !unmasked => Json::String(super::mask(field, s)),
        _ => v,
    }
}

/// A stored value as the engine's input takes it.
fn as_input(f: &FieldDef, v: Json) -> Json {
    match (f.ftype, v) {
        // Money is stored as {minor, currency, amount}; the input takes minor or amount.
        (FieldType::Currency, Json::Object(mut m)) => {
            if m.contains_key("minor") {
                m.remove("amount");
            }
            Json::Object(m)
        }
        (_, v) => v,
    }
}

impl App {
    /// Changes of a record's fields, newest first (`field`: only that field's).
    pub async fn field_history(
        &self,
        actor: &Actor,
        object: &str,
        id: Uuid,
        field: Option<&str>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<HistoryPage> {
        // Reading the record checks the object permission and the record scope.
        let record = self.get(actor, object, id).await?;
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let limit = limit.clamp(1, 200);
        let mut sql = String::from(
            "SELECT id, field_id, old_value, new_value, at, actor_id FROM field_history WHERE record_id = $1",
        );
        let mut vals: Vec<sea_query::Value> = vec![id.into()];
        if let Some(api) = field.filter(|f| !f.is_empty()) {
            let f = obj.field(api).filter(|f| actor.can_read_field(&obj, f));
            let f = f.ok_or_else(|| AppError::field("field", "history.unknown_field"))?;
            vals.push(f.id.into());
            sql.push_str(&format!(" AND field_id = ${}", vals.len()));
        }
        if let Some((at, hid)) =
            before.filter(|b| !b.is_empty()).map(|b| super::parse_time_cursor(b, "before")).transpose()?
        {
            vals.push(at.into());
            let a = vals.len();
            vals.push(hid.into());
            sql.push_str(&format!(" AND (at < ${a} OR (at = ${a} AND id < ${}))", vals.len()));
        }
        sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT {}", limit + 1));
        let unmasked = actor.sees_unmasked();
        let mut changes = Vec::new();
        let rows = self.db.all(&Raw::new(sql, vals)).await?;
        let more = rows.len() as u64 > limit;
        let mut before = None;
        for row in rows.iter().take(limit as usize) {
            let (Some(hid), Some(at)) = (row.uuid(0), row.i64(4)) else { continue };
            before = Some(format!("{at}_{hid}"));
            let Some(field) = row.uuid(1).and_then(|fid| obj.fields.iter().find(|f| f.id == fid)) else { continue };
            if !actor.can_read_field(&obj, field) {
                continue;
            }
            let parse = |raw| stored_value(field, raw, unmasked);
            changes.push(FieldChangeView {
                id: hid,
                field: field.clone(),
                old: parse(row.string(2)),
                new: parse(row.string(3)),
                at,
                by: row.uuid(5),
                revertible: !field.archived && !field.readonly && actor.can_write_field(&obj, field),
            });
        }
        Ok(HistoryPage { record, changes, before: if more { before } else { None } })
    }

    /// Set a field back to the value it had before change `change` — an ordinary update with
    /// the version the caller read (a stale version is a conflict and changes nothing).
    pub async fn revert_change(
        &self,
        actor: &Actor,
        object: &str,
        id: Uuid,
        change: Uuid,
        version: i64,
    ) -> Result<RecordView> {
        self.get(actor, object, id).await?;
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let row = self
            .db
            .one(&Raw::new(
                "SELECT field_id, old_value FROM field_history WHERE id = $1 AND record_id = $2",
                vec![change.into(), id.into()],
            ))
            .await?
            .ok_or_else(|| AppError::not_found("history.not_found"))?;
        let field = row
            .uuid(0)
            .and_then(|fid| obj.fields.iter().find(|f| f.id == fid))
            .filter(|f| !f.archived && !f.readonly)
            .ok_or_else(|| AppError::invalid("history.not_revertible"))?;
        if !actor.can_write_field(&obj, field) {
            return Err(AppError::forbidden("permission.field_denied"));
        }
        let old = row.string(1).and_then(|s| serde_json::from_str::<Json>(&s).ok()).unwrap_or(Json::Null);
        let mut patch = Map::new();
        patch.insert(field.api_name.clone(), as_input(field, old));
        self.update(actor, object, id, version, &patch).await
    }
}
