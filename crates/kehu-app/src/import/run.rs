//! The real run: a job (`kind = "import"`) whose every batch is one transaction that plans
//! the next stored chunk of rows (the same `Plan::plan_batch` as the dry run), writes the
//! records through the record engine (rows, audit, field history, search index, outbox),
//! the undo log (`import_changes`), the failed rows, the counts and the cursor, and deletes
//! the chunk. A crash at any moment leaves either the whole batch or none of it; the next
//! worker run continues with the first chunk left, so no row is lost or applied twice.
//!
//! The first step of a job ("prepare") reads every chunk once to find values of the key and
//! unique columns that repeat within the file, and stores those duplicates with their chunk —
//! so the verdict "duplicate in file, first seen on row N" survives a restart even though
//! processed chunks are gone.

use super::dups::DupIndex;
use super::plan::{Conn, Outcome, Plan, RowIssue, Session};
use super::{csv_to_rows, split_row_no, ImportCounts};
use crate::records::input::Values;
use crate::{App, Result};
use kehu_core::meta::ObjectDef;
use kehu_core::perm::{Action, Actor};
use kehu_core::value::{to_json, Value};
use kehu_core::{now_micros, AppError, ErrorKind, Uuid};
use kehu_db::{InsertInto, Raw, Tx};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

/// A row of the undo log.
pub(crate) struct Change {
    pub row: u64,
    pub object_id: Uuid,
    pub record_id: Uuid,
    pub action: &'static str,
    pub changes: Option<Json>,
}

async fn insert_changes(tx: &mut Tx, import: Uuid, changes: &[Change]) -> Result<()> {
    let into =
        InsertInto::new("import_changes", ["import_id", "row_no", "object_id", "record_id", "action", "changes"]);
    let rows = changes.iter().map(|c| {
        vec![
            import.into(),
            (c.row as i64).into(),
            c.object_id.into(),
            c.record_id.into(),
            c.action.into(),
            c.changes.as_ref().map(kehu_db::journal::json_text).into(),
        ]
    });
    tx.exec_pipeline(into.statements(tx.backend(), rows)).await?;
    Ok(())
}

async fn insert_failures(tx: &mut Tx, import: Uuid, rows: &[(u64, Vec<String>, Vec<RowIssue>)]) -> Result<()> {
    let into = InsertInto::new("import_failures", ["import_id", "row_no", "cells", "errors"]);
    let rows = rows.iter().map(|(row, cells, issues)| {
        vec![
            import.into(),
            (*row as i64).into(),
            serde_json::to_string(cells).unwrap_or_default().into(),
            serde_json::to_string(issues).unwrap_or_default().into(),
        ]
    });
    tx.exec_pipeline(into.statements(tx.backend(), rows)).await?;
    Ok(())
}

/// Replace placeholder ids of related records to create by the created records' ids.
fn substitute(values: &mut Values, ids: &HashMap<Uuid, Uuid>) {
    for (_, v) in values.iter_mut() {
        if let Value::Ref(r) = v {
            if let Some(real) = ids.get(r) {
                *v = Value::Ref(*real);
            }
        }
    }
}

impl Plan {
    /// Inside `tx`: write the planned rows of one batch through the engine. Returns the
    /// counts and the rows that failed.
    pub(crate) async fn write_batch(
        &self,
        app: &App,
        tx: &mut Tx,
        session: &Session,
        outcomes: Vec<Outcome>,
    ) -> Result<Written> {
        let mut counts = ImportCounts::default();
        let mut changes: Vec<Change> = Vec::new();
        let mut failed = Vec::new();
        let mut creates: Vec<(u64, Values)> = Vec::new();
        let mut updates = Vec::new();
        for o in outcomes {
            counts.add(&o);
            match o {
                Outcome::Create { row, values } => creates.push((row, values)),
                Outcome::Update { row, cur, values } => updates.push((row, cur, values)),
                Outcome::Failed { row, cells, issues } => failed.push((row, cells, issues)),
                Outcome::Unchanged | Outcome::Skipped => {}
            }
        }
        // Related records the rows name but that do not exist yet (created once each).
        let mut real: HashMap<Uuid, Uuid> = HashMap::new();
        let mut by_target: HashMap<Uuid, Vec<(Uuid, String)>> = HashMap::new();
        for ((target, name), placeholder) in &session.pending {
            if session.used.contains(placeholder) {
                by_target.entry(*target).or_default().push((*placeholder, name.clone()));
            }
        }
        let now = now_micros();
        let first_row = creates.first().map(|c| c.0).or(updates.first().map(|u| u.0)).unwrap_or(0);
        for (target, items) in by_target {
            let t: Arc<ObjectDef> =
                self.schema.object_by_id(target).cloned().ok_or_else(|| AppError::internal("related object gone"))?;
            let scope = self.actor.check(&t, Action::Create)?;
            let title = t.title_field().cloned().ok_or_else(|| AppError::internal("object without title"))?;
            let owner = t.field("owner").cloned().ok_or_else(|| AppError::internal("object without owner"))?;
            let rows: Vec<(String, Values)> = items
                .iter()
                .map(|(_, name)| {
                    let me = self.actor.user_id.map(Value::Ref).unwrap_or(Value::Null);
                    (String::new(), vec![(title.clone(), Value::Text(name.clone())), (owner.clone(), me)])
                })
                .collect();
            let ids = app.create_values(tx, &self.actor, &self.schema, &t, &scope, &rows, now).await?;
            for ((p, _), id) in items.iter().zip(ids) {
                real.insert(*p, id);
                changes.push(Change {
                    row: first_row,
                    object_id: t.id,
                    record_id: id,
                    action: "created",
                    changes: None,
                });
            }
            counts.related_created += items.len() as u64;
        }
        if !creates.is_empty() {
            let scope = self.create_scope.clone().ok_or_else(|| AppError::forbidden("permission.denied"))?;
            let rows: Vec<(String, Values)> = creates
                .iter_mut()
                .map(|(_, v)| {
                    substitute(v, &real);
                    (String::new(), std::mem::take(v))
                })
                .collect();
            let ids = app.create_values(tx, &self.actor, &self.schema, &self.obj, &scope, &rows, now).await?;
            for ((row, _), id) in creates.iter().zip(ids) {
                changes.push(Change {
                    row: *row,
                    object_id: self.obj.id,
                    record_id: id,
                    action: "created",
                    changes: None,
                });
            }
        }
        if !updates.is_empty() {
            let scope = self.update_scope.clone().ok_or_else(|| AppError::forbidden("permission.denied"))?;
            for (row, cur, mut values) in updates {
                substitute(&mut values, &real);
                let mut diff = Map::new();
                for (f, v) in &values {
                    diff.insert(f.api_name.clone(), json!([to_json(f, cur.get(&f.api_name)), to_json(f, v)]));
                }
                let id = cur.id;
                app.update_loaded(tx, &self.actor, &self.schema, &self.obj, &scope, *cur, values).await?;
                changes.push(Change {
                    row,
                    object_id: self.obj.id,
                    record_id: id,
                    action: "updated",
                    changes: Some(Json::Object(diff)),
                });
            }
        }
        changes.sort_by_key(|c| c.row);
        Ok(Written { counts, failed, changes })
    }
}

/// What a batch wrote: counts, failed rows, the undo log.
pub(crate) struct Written {
    pub counts: ImportCounts,
    pub failed: Vec<(u64, Vec<String>, Vec<RowIssue>)>,
    pub changes: Vec<Change>,
}

/// Mark an import and its job failed with an error code (the user lost the right, the
/// metadata changed under it).
async fn fail(app: &App, job: Uuid, import: Uuid, code: &str) -> Result<bool> {
    let now = now_micros();
    let mut tx = app.db.begin().await?;
    tx.exec(&Raw::new(
        "UPDATE imports SET state = 'failed', error = $1, updated_at = $2, finished_at = $2 WHERE id = $3",
        vec![code.into(), now.into(), import.into()],
    ))
    .await?;
    tx.exec(&Raw::new(
        "UPDATE jobs SET state = 'failed', error = $1, updated_at = $2 WHERE id = $3",
        vec![code.into(), now.into(), job.into()],
    ))
    .await?;
    tx.commit().await?;
    Ok(false)
}

/// One batch of an import job. Returns whether more work remains.
pub(crate) async fn job_batch(app: &App, job: Uuid, import: Uuid) -> Result<bool> {
    let row = app
        .db
        .one(&Raw::new(
            "SELECT owner_id, object_id, headers, settings, state, prepared, chunks FROM imports WHERE id = $1",
            vec![import.into()],
        ))
        .await?
        .ok_or_else(|| AppError::not_found("import.not_found"))?;
    if !matches!(row.str(4), Some("queued" | "running")) {
        return Ok(false);
    }
    let owner = row.uuid(0).ok_or_else(|| AppError::internal("import without owner"))?;
    let object_id = row.uuid(1).ok_or_else(|| AppError::internal("import without object"))?;
    let headers: Vec<String> =
        row.str(2).and_then(|s| serde_json::from_str(s).ok()).ok_or_else(|| AppError::internal("import headers"))?;
    let settings = row
        .str(3)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| AppError::internal("import without settings"))?;
    let chunks = row.i64(6).unwrap_or(0);
    // The user as they are now: a disabled user or a lost permission stops the import.
    let plan = async {
        let actor: Actor = app.actor(owner).await?;
        Plan::new(app, actor, object_id, headers.clone(), settings).await
    }
    .await;
    let plan = match plan {
        Ok(p) => p,
        Err(e) if e.kind == ErrorKind::Internal => return Err(e),
        Err(e) => return fail(app, job, import, &e.code).await,
    };
    if !row.bool(5).unwrap_or(false) {
        prepare(app, &plan, job, import, chunks).await?;
        return Ok(true);
    }
    let mut tx = app.db.begin().await?;
    let now = now_micros();
    if !crate::jobs::take(&mut tx, job, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let chunk = tx
        .one(&Raw::new(
            "SELECT seq, data, dups FROM import_chunks WHERE import_id = $1 ORDER BY seq LIMIT 1",
            vec![import.into()],
        ))
        .await?;
    let Some(chunk) = chunk else {
        // Every chunk is done.
        tx.exec(&Raw::new(
            "UPDATE imports SET state = 'done', updated_at = $1, finished_at = $1 WHERE id = $2",
            vec![now.into(), import.into()],
        ))
        .await?;
        tx.exec(&Raw::new(
            "UPDATE jobs SET state = 'done', updated_at = $1 WHERE id = $2",
            vec![now.into(), job.into()],
        ))
        .await?;
        tx.commit().await?;
        return Ok(false);
    };
    let seq = chunk.i64(0).unwrap_or(0);
    let dups: HashMap<u64, RowIssue> = chunk
        .str(2)
        .and_then(|s| serde_json::from_str::<Vec<RowIssue>>(s).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.row, i))
        .collect();
    let rows: Vec<_> = csv_to_rows(chunk.str(1).unwrap_or(""))?
        .into_iter()
        .map(|r| {
            let (n, cells) = split_row_no(r);
            let d = dups.get(&n).cloned();
            (n, cells, d)
        })
        .collect();
    let mut session = Session::default();
    let written = match plan.plan_batch(&mut Conn::Tx(&mut tx), &mut session, rows).await {
        Ok(outcomes) => plan.write_batch(app, &mut tx, &session, outcomes).await,
        Err(e) => Err(e),
    };
    let Written { counts, failed, changes } = match written {
        Ok(w) => w,
        Err(e) if e.kind == ErrorKind::Internal || e.code == "db.busy" => return Err(e),
        Err(e) => {
            // The engine refused what the plan allowed (a concurrent change on another
            // server): stop here; the committed batches stay and can be undone.
            tx.rollback().await?;
            return fail(app, job, import, &e.code).await;
        }
    };
    insert_changes(&mut tx, import, &changes).await?;
    insert_failures(&mut tx, import, &failed).await?;
    tx.exec(&Raw::new("DELETE FROM import_chunks WHERE import_id = $1 AND seq = $2", vec![import.into(), seq.into()]))
        .await?;
    let last = seq + 1 >= chunks;
    let state = if last { "done" } else { "running" };
    tx.exec(&Raw::new(
        "UPDATE imports SET created = created + $1, updated = updated + $2, unchanged = unchanged + $3, \
         skipped = skipped + $4, failed = failed + $5, related_created = related_created + $6, \
         next_chunk = $7, state = $8, updated_at = $9, finished_at = CASE WHEN $8 = 'done' THEN $9 ELSE NULL END \
         WHERE id = $10",
        vec![
            (counts.created as i64).into(),
            (counts.updated as i64).into(),
            (counts.unchanged as i64).into(),
            (counts.skipped as i64).into(),
            (counts.failed as i64).into(),
            (counts.related_created as i64).into(),
            (seq + 1).into(),
            state.into(),
            now_micros().into(),
            import.into(),
        ],
    ))
    .await?;
    tx.exec(&Raw::new(
        "UPDATE jobs SET cursor = $1, done = done + $2, skipped = skipped + $3, failed = failed + $4, \
         batches = batches + 1, state = $5, updated_at = $6 WHERE id = $7",
        vec![
            (seq + 1).to_string().into(),
            ((counts.created + counts.updated + counts.unchanged) as i64).into(),
            (counts.skipped as i64).into(),
            (counts.failed as i64).into(),
            state.into(),
            now_micros().into(),
            job.into(),
        ],
    ))
    .await?;
    tx.commit().await?;
    Ok(!last)
}

/// Find the rows whose key or unique values repeat an earlier row's, store them with their
/// chunks, and mark the import prepared — one transaction, repeated whole after a crash.
async fn prepare(app: &App, plan: &Plan, job: Uuid, import: Uuid, chunks: i64) -> Result<()> {
    let cols = plan.dup_columns();
    let mut found: Vec<(i64, Vec<RowIssue>)> = Vec::new();
    if !cols.is_empty() {
        let mut idx = DupIndex::default();
        for seq in 0..chunks {
            let Some(data) = app.chunk_data(import, seq).await? else { continue };
            let mut here = Vec::new();
            for r in csv_to_rows(&data)? {
                let (n, cells) = split_row_no(r);
                if let Some(d) = idx.check(&cols, &plan.headers, n, &cells) {
                    here.push(d);
                }
            }
            if !here.is_empty() {
                found.push((seq, here));
            }
        }
    }
    let now = now_micros();
    let mut tx = app.db.begin().await?;
    for (seq, issues) in found {
        let json = serde_json::to_string(&issues).map_err(|e| AppError::internal(e.to_string()))?;
        tx.exec(&Raw::new(
            "UPDATE import_chunks SET dups = $1 WHERE import_id = $2 AND seq = $3",
            vec![json.into(), import.into(), seq.into()],
        ))
        .await?;
    }
    tx.exec(&Raw::new(
        "UPDATE imports SET prepared = $1, state = 'running', updated_at = $2 WHERE id = $3",
        vec![true.into(), now.into(), import.into()],
    ))
    .await?;
    tx.exec(&Raw::new(
        "UPDATE jobs SET state = 'running', updated_at = $1 WHERE id = $2",
        vec![now.into(), job.into()],
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}
