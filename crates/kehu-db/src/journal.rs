//! The journal written in the same transaction as every record change: the audit entry, the
//! field history and the outbox event (consumed later by webhooks, automation, notifications).

use crate::bulk::InsertInto;
use crate::conn::{Db, DbResult, Raw, Tx};
use crate::DbError;
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

/// The values of one audit row under `id`; `changes` is the JSON text of
/// `{"field": [old, new], …}` (bulk writers build it directly, without a `serde_json::Value`).
pub fn audit_row(
    id: Uuid,
    at: i64,
    actor: Option<Uuid>,
    object_id: Uuid,
    record_id: Uuid,
    action: &str,
    changes: String,
) -> Vec<Value> {
    vec![id.into(), at.into(), Value::from(actor), object_id.into(), record_id.into(), action.into(), changes.into()]
}

/// Insert audit entries (multi-row statements).
pub async fn audit(tx: &mut Tx, entries: &[AuditEntry<'_>]) -> DbResult<()> {
    let rows = entries
        .iter()
        .map(|e| audit_row(new_id(), e.at, e.actor, e.object_id, e.record_id, e.action, json_text(&e.changes)));
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

/// One outbox event, e.g. `record.updated`, with its payload.
pub struct Event<'a> {
    pub event: &'a str,
    pub object_id: Uuid,
    pub record_id: Uuid,
    pub payload: serde_json::Value,
    pub at: i64,
}

/// The outbox's columns, in the order of `outbox_row`.
pub fn outbox_into() -> InsertInto {
    InsertInto::new(
        "outbox",
        ["id", "event", "object_id", "record_id", "payload", "audit_id", "created_at", "attempts"],
    )
}

/// What an outbox event says beyond its names: its payload (JSON text), or the audit entry
/// written in the same transaction whose changes are the payload (`record.created`: the
/// created values, which the event would otherwise hold a second time).
pub enum Body {
    Payload(String),
    Audit(Uuid),
}

/// The values of one outbox row.
pub fn outbox_row(event: &str, object_id: Uuid, record_id: Uuid, body: Body, at: i64) -> Vec<Value> {
    let (payload, audit) = match body {
        Body::Payload(p) => (Some(p), None),
        Body::Audit(a) => (None, Some(a)),
    };
    vec![
        new_id().into(),
        event.into(),
        object_id.into(),
        record_id.into(),
        payload.into(),
        Value::from(audit),
        at.into(),
        0i64.into(),
    ]
}

pub async fn outbox(tx: &mut Tx, events: &[Event<'_>]) -> DbResult<()> {
    let rows = events
        .iter()
        .map(|e| outbox_row(e.event, e.object_id, e.record_id, Body::Payload(json_text(&e.payload)), e.at));
    tx.exec_pipeline(outbox_into().statements(tx.backend(), rows)).await.map(|_| ())
}

/// An outbox event as its consumers (webhooks, automation) read it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub id: Uuid,
    pub event: String,
    pub object_id: Option<Uuid>,
    pub record_id: Option<Uuid>,
    pub payload: serde_json::Value,
    pub created_at: i64,
    pub attempts: i64,
}

/// Up to `limit` unprocessed outbox events, oldest first, each with its payload: the stored
/// one, or for an event that names its audit entry, the payload built from that entry —
/// `record.created`: `{"fields": {field: value, …}, "id": …, "object": api_name}`. The audit
/// log is append-only, so a named entry that is missing means a damaged database: an error.
pub async fn pending_events(db: &Db, limit: i64) -> DbResult<Vec<PendingEvent>> {
    let q =
        Raw::new(format!("{PENDING_SELECT} WHERE o.processed_at IS NULL ORDER BY o.id LIMIT $1"), vec![limit.into()]);
    decode_pending(db.all(&q).await?)
}

const PENDING_SELECT: &str = "SELECT o.id, o.event, o.object_id, o.record_id, o.payload, o.audit_id, a.changes, \
     m.api_name, o.created_at, o.attempts FROM outbox o \
     LEFT JOIN audit_log a ON a.id = o.audit_id LEFT JOIN meta_objects m ON m.id = o.object_id";

/// Inside `tx`: up to `limit` unprocessed events that `consumer` has not taken yet, oldest
/// first (as `pending_events`).
pub async fn pending_for(tx: &mut Tx, consumer: &str, limit: i64) -> DbResult<Vec<PendingEvent>> {
    let q = Raw::new(
        format!(
            "{PENDING_SELECT} WHERE o.processed_at IS NULL AND NOT EXISTS \
             (SELECT 1 FROM outbox_consumed c WHERE c.event_id = o.id AND c.consumer = $1) ORDER BY o.id LIMIT $2"
        ),
        vec![consumer.into(), limit.into()],
    );
    decode_pending(tx.all(&q).await?)
}

fn decode_pending(rows: Vec<crate::DbRow>) -> DbResult<Vec<PendingEvent>> {
    let mut out = Vec::new();
    for r in rows {
        let id = r.uuid(0).ok_or_else(|| DbError::Other("outbox event without id".into()))?;
        let event = r.string(1).unwrap_or_default();
        let payload = match (r.str(4), r.uuid(5)) {
            (Some(text), _) => serde_json::from_str(text).map_err(|e| DbError::Other(format!("outbox {id}: {e}")))?,
            (None, Some(audit)) => {
                let changes =
                    r.str(6).ok_or_else(|| DbError::Other(format!("outbox {id}: audit entry {audit} missing")))?;
                let changes: serde_json::Value =
                    serde_json::from_str(changes).map_err(|e| DbError::Other(format!("audit {audit}: {e}")))?;
                audit_payload(&event, r.uuid(3), r.str(7), &changes)
                    .ok_or_else(|| DbError::Other(format!("outbox {id}: no payload for {event} from audit {audit}")))?
            }
            (None, None) => serde_json::Value::Null,
        };
        out.push(PendingEvent {
            id,
            event,
            object_id: r.uuid(2),
            record_id: r.uuid(3),
            payload,
            created_at: r.i64(8).unwrap_or_default(),
            attempts: r.i64(9).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The payload of an event that names its audit entry, from the entry's changes.
fn audit_payload(
    event: &str,
    record_id: Option<Uuid>,
    object: Option<&str>,
    changes: &serde_json::Value,
) -> Option<serde_json::Value> {
    match event {
        "record.created" => {
            let fields: serde_json::Map<String, serde_json::Value> = changes
                .as_object()?
                .iter()
                .map(|(k, v)| (k.clone(), v.get(1).cloned().unwrap_or(serde_json::Value::Null)))
                .collect();
            Some(serde_json::json!({"fields": fields, "id": record_id?, "object": object?, "version": 1}))
        }
        _ => None,
    }
}
