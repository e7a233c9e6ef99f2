//! Undo of a whole import, as a job (`kind = "import_undo"`): records the import created go
//! to the recycle bin (an engine delete, audited) unless someone changed them since (they stay,
//! counted as conflicts); records it updated get the previous values
//! of the fields it changed back (an engine update, audited) — except fields changed again
//! since, which keep the later value and count as a conflict. Each batch covers a range of
//! row numbers of the undo log in one transaction with its cursor, so an undo resumes after a
//! crash, and asking twice changes nothing more.

use crate::records::write::{Change, WriteCtx};
use crate::{App, Result};
use kehu_core::meta::FieldDef;
use kehu_core::perm::{Action, Actor};
use kehu_core::value::{parse_input, to_json, Value};
use kehu_core::{now_micros, AppError, ErrorKind, Uuid};
use kehu_db::Raw;
use serde_json::Value as Json;

/// Rows of the file per undo batch.
const UNDO_ROWS: i64 = 1000;

/// A stored JSON value back into a typed value (money carries both minor and amount).
fn value_of(f: &FieldDef, j: &Json) -> Option<Value> {
    let j = match j {
        Json::Object(m) if m.contains_key("minor") => {
            let mut m = m.clone();
            m.remove("amount");
            Json::Object(m)
        }
        other => other.clone(),
    };
    parse_input(f, &j).ok()
}

impl App {
    /// Undo an import (queued as a job; returns its id). Allowed to the import's owner and
    /// administrators, with delete and update permission on the object.
    pub async fn import_undo(&self, actor: &Actor, id: Uuid) -> Result<Option<Uuid>> {
        let v = self.import_view(actor, id).await?;
        match v.state.as_str() {
            "undoing" | "undone" => return Ok(None),
            "done" | "failed" => {}
            _ => return Err(AppError::conflict("import.not_finished")),
        }
        let schema = self.schema().await?;
        let obj = schema.object(&v.object)?;
        actor.check(obj, Action::Delete)?;
        if v.counts.updated > 0 {
            actor.check(obj, Action::Update)?;
        }
        let me = actor.user_id.ok_or_else(|| AppError::forbidden("permission.denied"))?;
        let mut tx = self.db.begin().await?;
        let n = tx
            .exec(&Raw::new(
                "UPDATE imports SET state = 'undoing', updated_at = $1 WHERE id = $2 AND state IN ('done', 'failed')",
                vec![now_micros().into(), id.into()],
            ))
            .await?;
        if n != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let params = serde_json::json!({ "import": id });
        let job = crate::jobs::insert_job(&mut tx, "import_undo", me, &v.object, &params, v.total_rows).await?;
        tx.commit().await?;
        Ok(Some(job))
    }
}

/// One batch of an undo job. Returns whether more work remains.
pub(crate) async fn job_batch(app: &App, lease: &crate::jobs::Lease, import: Uuid, actor_id: Uuid) -> Result<bool> {
    let job = lease.id;
    let actor = match app.actor(actor_id).await {
        Ok(a) => a,
        Err(e) if e.kind == ErrorKind::Internal => return Err(e),
        Err(e) => {
            app.db
                .write(&Raw::new(
                    "UPDATE jobs SET state = 'failed', error = $1, updated_at = $2 WHERE id = $3",
                    vec![e.code.clone().into(), now_micros().into(), job.into()],
                ))
                .await?;
            return Ok(false);
        }
    };
    let schema = app.schema().await?;
    let mut tx = app.db.begin().await?;
    let now = now_micros();
    if !crate::jobs::take(&mut tx, lease, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let cursor: i64 = tx
        .one(&Raw::new("SELECT cursor FROM jobs WHERE id = $1", vec![job.into()]))
        .await?
        .and_then(|r| r.string(0))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let last_row: i64 = tx
        .one(&Raw::new("SELECT MAX(row_no) FROM import_changes WHERE import_id = $1", vec![import.into()]))
        .await?
        .and_then(|r| r.i64(0))
        .unwrap_or(0);
    let upto = cursor + UNDO_ROWS;
    let rows = tx
        .all(&Raw::new(
            "SELECT object_id, record_id, action, changes FROM import_changes \
             WHERE import_id = $1 AND row_no > $2 AND row_no <= $3 ORDER BY row_no",
            vec![import.into(), cursor.into(), upto.into()],
        ))
        .await?;
    let (mut deleted, mut restored, mut conflicts) = (0i64, 0i64, 0i64);
    for r in &rows {
        let (Some(oid), Some(rid), Some(action)) = (r.uuid(0), r.uuid(1), r.str(2)) else { continue };
        let Some(obj) = schema.object_by_id(oid).cloned() else {
            conflicts += 1;
            continue;
        };
        if action == "created" {
            let Ok(scope) = actor.check(&obj, Action::Delete) else {
                conflicts += 1;
                continue;
            };
            match app.load_for_write(&mut tx, &obj, rid, &scope).await {
                // Changed by someone since the import created it (a new record is version 1):
                // their work stays; the record is kept and counted as a conflict.
                Ok(cur) if cur.deleted_at.is_none() && cur.version > 1 => conflicts += 1,
                Ok(cur) if cur.deleted_at.is_none() => {
                    let w = WriteCtx { actor: &actor, schema: &schema, obj: &obj, scope: &scope };
                    app.apply(&mut tx, &w, Change::Recycle { cur, delete: true }).await?;
                    deleted += 1;
                }
                Ok(_) => {} // already in the recycle bin
                Err(e) if e.kind == ErrorKind::NotFound => conflicts += 1,
                Err(e) => return Err(e),
            }
            continue;
        }
        let Ok(scope) = actor.check(&obj, Action::Update) else {
            conflicts += 1;
            continue;
        };
        let cur = match app.load_for_write(&mut tx, &obj, rid, &scope).await {
            Ok(c) if c.deleted_at.is_none() => c,
            Ok(_) => {
                conflicts += 1;
                continue;
            }
            Err(e) if e.kind == ErrorKind::NotFound => {
                conflicts += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let diff: serde_json::Map<String, Json> =
            r.str(3).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let mut back = Vec::new();
        let mut conflict = false;
        for (api, pair) in &diff {
            let (Some(f), Some(old), Some(new)) = (obj.field(api), pair.get(0), pair.get(1)) else {
                conflict = true;
                continue;
            };
            let now_json = to_json(f, cur.get(api));
            if &now_json == new {
                match value_of(f, old) {
                    Some(v) => back.push((f.clone(), v)),
                    None => conflict = true,
                }
            } else if &now_json != old {
                conflict = true; // changed again since: the later change stays
            }
        }
        if !back.is_empty() {
            // A savepoint keeps the batch usable when one restore is refused (e.g. its old
            // e-mail is taken by now) — PostgreSQL would otherwise abort the transaction.
            tx.ddl("SAVEPOINT undo_one").await?;
            let w = WriteCtx { actor: &actor, schema: &schema, obj: &obj, scope: &scope };
            match app.apply(&mut tx, &w, Change::Update { cur, vals: back, in_bin: false }).await {
                Ok(_) => {
                    tx.ddl("RELEASE SAVEPOINT undo_one").await?;
                    restored += 1
                }
                Err(e) if e.kind == ErrorKind::Internal => return Err(e),
                Err(_) => {
                    tx.ddl("ROLLBACK TO SAVEPOINT undo_one").await?;
                    tx.ddl("RELEASE SAVEPOINT undo_one").await?;
                    conflict = true
                }
            }
        }
        if conflict {
            conflicts += 1;
        }
    }
    let more = upto < last_row;
    let state = if more { "running" } else { "done" };
    tx.exec(&Raw::new(
        "UPDATE imports SET undo_deleted = undo_deleted + $1, undo_restored = undo_restored + $2, \
         undo_conflicts = undo_conflicts + $3, state = CASE WHEN $4 = 'done' THEN 'undone' ELSE state END, \
         updated_at = $5 WHERE id = $6",
        vec![deleted.into(), restored.into(), conflicts.into(), state.into(), now_micros().into(), import.into()],
    ))
    .await?;
    tx.exec(&Raw::new(
        "UPDATE jobs SET cursor = $1, done = done + $2, failed = failed + $3, batches = batches + 1, state = $4, \
         updated_at = $5 WHERE id = $6",
        vec![
            upto.to_string().into(),
            (deleted + restored).into(),
            conflicts.into(),
            state.into(),
            now_micros().into(),
            job.into(),
        ],
    ))
    .await?;
    tx.commit().await?;
    Ok(more)
}
