//! The journal written in the same transaction as every record change: the audit entry, the
//! field history and the outbox event (consumed later by webhooks, automation, notifications).

use crate::conn::{DbResult, Tx};
use kehu_core::{new_id, Uuid};
use sea_query::{Alias, Query};

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

/// Insert audit entries (one statement for the batch).
pub async fn audit(tx: &mut Tx, entries: &[AuditEntry<'_>]) -> DbResult<()> {
    for chunk in entries.chunks(500) {
        let mut q = Query::insert();
        q.into_table(Alias::new("audit_log"))
            .columns(["id", "at", "actor_id", "object_id", "record_id", "action", "changes"].map(Alias::new));
        for e in chunk {
            q.values_panic([
                new_id().into(),
                e.at.into(),
                sea_query::Value::from(e.actor).into(),
                e.object_id.into(),
                e.record_id.into(),
                e.action.into(),
                e.changes.to_string().into(),
            ]);
        }
        tx.exec(&q).await?;
    }
    Ok(())
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

pub async fn outbox(tx: &mut Tx, events: &[Event<'_>]) -> DbResult<()> {
    for chunk in events.chunks(500) {
        let mut q = Query::insert();
        q.into_table(Alias::new("outbox"))
            .columns(["id", "event", "object_id", "record_id", "payload", "created_at", "attempts"].map(Alias::new));
        for e in chunk {
            q.values_panic([
                new_id().into(),
                e.event.into(),
                e.object_id.into(),
                e.record_id.into(),
                e.payload.to_string().into(),
                e.at.into(),
                0i64.into(),
            ]);
        }
        tx.exec(&q).await?;
    }
    Ok(())
}
