//! The journal written in the same transaction as every record change: the audit entry, the
//! field history and the outbox event (consumed later by webhooks, automation, notifications).

use crate::bulk::InsertInto;
use crate::conn::{DbResult, Tx};
use kehu_core::{new_id, Uuid};
use sea_query::{Alias, Query, Value};

/// One audit entry: who did what to which record, with `changes` as
/// `{"field": [old, new], …}`.
pub struct AuditEntry<'a> {
    pub at: i64,
    pub actor: Option<Uuid>,
    pub object_id: Uuid,
    pub record_id: Uuid,
    pub action: &'a str,
    pub changes: serde_json::Value,
}

/// The audit log's columns, in the order of `audit_row`.
pub fn audit_into() -> InsertInto {
    InsertInto::new("audit_log", ["id", "at", "actor_id", "object_id", "record_id", "action", "changes"])
}

/// The values of one audit row; `changes` is the JSON text of `{"field": [old, new], …}`
/// (bulk writers build it directly, without a `serde_json::Value`).
pub fn audit_row(
    at: i64,
    actor: Option<Uuid>,
    object_id: Uuid,
    record_id: Uuid,
    action: &str,
    changes: String,
) -> Vec<Value> {
    vec![
        new_id().into(),
        at.into(),
        Value::from(actor),
        object_id.into(),
        record_id.into(),
        action.into(),
        changes.into(),
    ]
}

/// Insert audit entries (multi-row statements).
pub async fn audit(tx: &mut Tx, entries: &[AuditEntry<'_>]) -> DbResult<()> {
    let rows =
        entries.iter().map(|e| audit_row(e.at, e.actor, e.object_id, e.record_id, e.action, json_text(&e.changes)));
    tx.exec_pipeline(audit_into().statements(tx.backend(), rows)).await.map(|_| ())
}

/// JSON text of a value (`serde_json::to_string`, which is faster than its `Display`).
pub fn json_text(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// One change of one field, for the record page's history.
pub struct FieldChange {
    pub field_id: Uuid,
    pub old: Option<String>,
    pub new: Option<String>,
}

pub async fn field_history(
    tx: &mut Tx,
    at: i64,
    actor: Option<Uuid>,
    object_id: Uuid,
    record_id: Uuid,
    changes: &[FieldChange],
) -> DbResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut q = Query::insert();
    q.into_table(Alias::new("field_history")).columns(
        ["id", "record_id", "object_id", "field_id", "old_value", "new_value", "at", "actor_id"].map(Alias::new),
    );
    for c in changes {
        q.values_panic([
            new_id().into(),
            record_id.into(),
            object_id.into(),
            c.field_id.into(),
            c.old.clone().into(),
            c.new.clone().into(),
            at.into(),
            sea_query::Value::from(actor).into(),
        ]);
    }
    tx.exec(&q).await.map(|_| ())
}

/// One outbox event, e.g. `record.created`.
pub struct Event<'a> {
    pub event: &'a str,
    pub object_id: Uuid,
    pub record_id: Uuid,
    pub payload: serde_json::Value,
    pub at: i64,
}

/// The outbox's columns, in the order of `outbox_row`.
pub fn outbox_into() -> InsertInto {
    InsertInto::new("outbox", ["id", "event", "object_id", "record_id", "payload", "created_at", "attempts"])
}

/// The values of one outbox row; `payload` is the event's JSON text.
pub fn outbox_row(event: &str, object_id: Uuid, record_id: Uuid, payload: String, at: i64) -> Vec<Value> {
    vec![new_id().into(), event.into(), object_id.into(), record_id.into(), payload.into(), at.into(), 0i64.into()]
}

pub async fn outbox(tx: &mut Tx, events: &[Event<'_>]) -> DbResult<()> {
    let rows = events.iter().map(|e| outbox_row(e.event, e.object_id, e.record_id, json_text(&e.payload), e.at));
    tx.exec_pipeline(outbox_into().statements(tx.backend(), rows)).await.map(|_| ())
}
