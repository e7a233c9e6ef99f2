//! The real run: a job (`kind = "import"`) whose every batch is one transaction that decides
//! the next stored chunk of rows (the same `Plan::look_up` and `Plan::decide` as the dry
//! run), writes the records through the record engine (rows, audit, field history, search
//! index, outbox), the undo log (`import_changes`), the failed rows, the counts and the
//! cursor, and deletes the chunk. A crash at any moment leaves either the whole batch or none
//! of it; the next worker run continues with the first chunk left, so no row is lost or
//! applied twice.
//!
//! On SQLite the batches overlap: at the end of batch N's transaction (which sees N's
//! writes) the job reads chunk N + 1 and looks up what it refers to, then decides and builds
//! it on this thread while SQLite's thread commits N (`Ahead`). Batch N + 1's transaction
//! uses that work only if it is the very next write (`Tx::follows`); otherwise — a user
//! saved something in between, another process wrote — it decides afresh.
//!
//! The first step of a job ("prepare") reads every chunk once to find values of the key and
//! unique columns that repeat within the file, and stores those duplicates with their chunk —
//! so the verdict "duplicate in file, first seen on row N" survives a restart even though
//! processed chunks are gone.

use super::dups::DupIndex;
use super::plan::{BatchRow, Conn, Lookups, Outcome, Plan, RowIssue, Session};
use super::{csv_to_rows, split_row_no, ImportCounts};
use crate::records::input::Values;
use crate::records::write::{self, create_statements, WriteCtx};
use crate::{App, Result};
use kehu_core::meta::ObjectDef;
use kehu_core::perm::{Action, Actor, ScopeFilter};
use kehu_core::value::{to_json, Value};
use kehu_core::{new_id, now_micros, AppError, ErrorKind, Uuid};
use kehu_db::records::Record;
use kehu_db::{Backend, InsertInto, Raw, Tx, WriteMark};
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

/// The undo log's rows and the failed rows, as statements.
fn log_statements(
    backend: Backend,
    import: Uuid,
    changes: &[Change],
    failed: &[(u64, Vec<String>, Vec<RowIssue>)],
) -> Vec<Raw> {
    let into =
        InsertInto::new("import_changes", ["import_id", "row_no", "object_id", "record_id", "action", "changes"]);
    let changes = into.statements(
        backend,
        changes.iter().map(|c| {
            vec![
                import.into(),
                (c.row as i64).into(),
                c.object_id.into(),
                c.record_id.into(),
                c.action.into(),
                c.changes.as_ref().map(kehu_db::journal::json_text).into(),
            ]
        }),
    );
    let into = InsertInto::new("import_failures", ["import_id", "row_no", "cells", "errors"]);
    let failures = into.statements(
        backend,
        failed.iter().map(|(row, cells, issues)| {
            vec![
                import.into(),
                (*row as i64).into(),
                serde_json::to_string(cells).unwrap_or_default().into(),
                serde_json::to_string(issues).unwrap_or_default().into(),
            ]
        }),
    );
    changes.chain(failures).collect()
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

/// Records of one object to create, with their statements built.
struct CreateSet {
    obj: Arc<ObjectDef>,
    scope: ScopeFilter,
    rows: Vec<(String, Values)>,
    ids: Vec<Uuid>,
    stmts: Vec<Raw>,
}

impl CreateSet {
    /// New ids for `rows` and the engine's statements creating them.
    fn build(
        backend: Backend,
        actor: &Actor,
        obj: Arc<ObjectDef>,
        scope: ScopeFilter,
        rows: Vec<(String, Values)>,
        now: i64,
    ) -> Result<CreateSet> {
        let ids: Vec<Uuid> = rows.iter().map(|_| new_id()).collect();
        let stmts = create_statements(backend, actor, &obj, &scope, &rows, &ids, now)?.collect();
        Ok(CreateSet { obj, scope, rows, ids, stmts })
    }

    /// The undo log's "created" entries, each at its spreadsheet row.
    fn created<'a>(&'a self, rows: impl Iterator<Item = u64> + 'a) -> impl Iterator<Item = Change> + 'a {
        self.ids.iter().zip(rows).map(|(id, row)| Change {
            row,
            object_id: self.obj.id,
            record_id: *id,
            action: "created",
            changes: None,
        })
    }
}

/// A batch decided and built, ready to write. Building needs no database access, so a
/// batch read and looked up at the end of the previous batch's transaction is built while
/// the database commits that transaction (see `job_batch`).
pub(crate) struct Prepared {
    counts: ImportCounts,
    /// Related records first (the rows refer to them), then the object's own.
    creates: Vec<CreateSet>,
    updates: Vec<(u64, Record, Values)>,
    /// The undo log and the failed rows.
    log: Vec<Raw>,
}

impl Plan {
    /// Decide a batch's rows (given its lookups) and build everything it writes: the
    /// records through the engine's statements, the undo log, the failed rows.
    pub(crate) fn prepare(
        &self,
        backend: Backend,
        import: Uuid,
        found: &Lookups,
        rows: Vec<BatchRow>,
    ) -> Result<Prepared> {
        let mut session = Session::default();
        let outcomes = self.decide(&mut session, found, rows);
        let mut counts = ImportCounts::default();
        let mut changes: Vec<Change> = Vec::new();
        let mut failed = Vec::new();
        let mut creates: Vec<(u64, Values)> = Vec::new();
        let mut updates = Vec::new();
        for o in outcomes {
            counts.add(&o);
            match o {
                Outcome::Create { row, values } => creates.push((row, values)),
                Outcome::Update { row, cur, values } => updates.push((row, *cur, values)),
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
        let mut sets = Vec::new();
        for (target, items) in by_target {
            let t: Arc<ObjectDef> =
                self.schema.object_by_id(target).cloned().ok_or_else(|| AppError::internal("related object gone"))?;
            let scope = self.actor.check(&t, Action::Create)?;
            let title = t.title_field().cloned().ok_or_else(|| AppError::internal("object without title"))?;
            let owner = t.field("owner").cloned().ok_or_else(|| AppError::internal("object without owner"))?;
            let me = self.actor.user_id.map(Value::Ref).unwrap_or(Value::Null);
            let rows: Vec<(String, Values)> = items
                .iter()
                .map(|(_, name)| {
                    (String::new(), vec![(title.clone(), Value::Text(name.clone())), (owner.clone(), me.clone())])
                })
                .collect();
            let set = CreateSet::build(backend, &self.actor, t, scope, rows, now)?;
            real.extend(items.iter().map(|(p, _)| *p).zip(set.ids.iter().copied()));
            changes.extend(set.created(std::iter::repeat(first_row)));
            counts.related_created += items.len() as u64;
            sets.push(set);
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
            let set = CreateSet::build(backend, &self.actor, self.obj.clone(), scope, rows, now)?;
            changes.extend(set.created(creates.iter().map(|(row, _)| *row)));
            sets.push(set);
        }
        if !updates.is_empty() && self.update_scope.is_none() {
            return Err(AppError::forbidden("permission.denied"));
        }
        for (row, cur, values) in &mut updates {
            substitute(values, &real);
            let mut diff = Map::new();
            for (f, v) in values.iter() {
                diff.insert(f.api_name.clone(), json!([to_json(f, cur.get(&f.api_name)), to_json(f, v)]));
            }
            changes.push(Change {
                row: *row,
                object_id: self.obj.id,
                record_id: cur.id,
                action: "updated",
                changes: Some(Json::Object(diff)),
            });
        }
        changes.sort_by_key(|c| c.row);
        let log = log_statements(backend, import, &changes, &failed);
        Ok(Prepared { counts, creates: sets, updates, log })
    }

    /// Inside `tx`: write a prepared batch through the engine. Returns its counts.
    async fn write(&self, app: &App, tx: &mut Tx, batch: Prepared) -> Result<ImportCounts> {
        for set in batch.creates {
            let w = WriteCtx { actor: &self.actor, schema: &self.schema, obj: &set.obj, scope: &set.scope };
            let stmts = Box::new(set.stmts.into_iter());
            app.apply(tx, &w, write::Change::Create { rows: &set.rows, ids: &set.ids, stmts }).await?;
        }
        if let Some(scope) = &self.update_scope {
            for (_, cur, values) in batch.updates {
                let w = WriteCtx { actor: &self.actor, schema: &self.schema, obj: &self.obj, scope };
                app.apply(tx, &w, write::Change::Update { cur, vals: values, in_bin: false }).await?;
            }
        }
        tx.exec_pipeline(batch.log.into_iter()).await?;
        Ok(batch.counts)
    }
}

/// The next batch of an import, read, looked up and built at the end of the previous
/// batch's transaction (SQLite only). Valid only for the transaction that directly follows
/// that one: if any other write came between, it is dropped and the batch decided afresh.
pub(crate) struct Ahead {
    import: Uuid,
    seq: i64,
    mark: WriteMark,
    batch: Prepared,
}

/// Read stored chunk `seq`'s rows with their duplicate-in-file issues.
async fn chunk_rows(tx: &mut Tx, import: Uuid, seq: i64) -> Result<Vec<BatchRow>> {
    let chunk = tx
        .one(&Raw::new(
            "SELECT data, dups FROM import_chunks WHERE import_id = $1 AND seq = $2",
            vec![import.into(), seq.into()],
        ))
        .await?
        .ok_or_else(|| AppError::internal("import chunk gone"))?;
    let dups: HashMap<u64, RowIssue> = chunk
        .str(1)
        .and_then(|s| serde_json::from_str::<Vec<RowIssue>>(s).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.row, i))
        .collect();
    Ok(csv_to_rows(chunk.str(0).unwrap_or(""))?
        .into_iter()
        .map(|r| {
            let (n, cells) = split_row_no(r);
            let d = dups.get(&n).cloned();
            (n, cells, d)
        })
        .collect())
}

/// The first stored chunk after `seq` (None: the import has no more).
async fn next_chunk(tx: &mut Tx, import: Uuid, after: i64) -> Result<Option<i64>> {
    Ok(tx
        .one(&Raw::new(
            "SELECT seq FROM import_chunks WHERE import_id = $1 AND seq > $2 ORDER BY seq LIMIT 1",
            vec![import.into(), after.into()],
        ))
        .await?
        .and_then(|r| r.i64(0)))
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
pub(crate) async fn job_batch(app: &App, lease: &crate::jobs::Lease, import: Uuid) -> Result<bool> {
    let job = lease.id;
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
    // What the previous batch read and built for this one, if it was this import's.
    // (Taken whatever import it was for, so a stopped import's batch is not kept.)
    let ahead = app.import_ahead.lock().ok().and_then(|mut a| a.take()).filter(|a| a.import == import);
    let mut tx = app.db.begin().await?;
    let now = now_micros();
    if !crate::jobs::take(&mut tx, lease, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let Some(seq) = next_chunk(&mut tx, import, -1).await? else {
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
    let ahead = match ahead {
        Some(a) if a.seq == seq && tx.follows(&a.mark).await? => Some(a.batch),
        _ => None,
    };
    let from_ahead = ahead.is_some();
    let batch = match ahead {
        Some(b) => Ok(b),
        None => {
            async {
                let rows = chunk_rows(&mut tx, import, seq).await?;
                let found = plan.look_up(&mut Conn::Tx(&mut tx), &rows).await?;
                plan.prepare(tx.backend(), import, &found, rows)
            }
            .await
        }
    };
    let written = match batch {
        Ok(b) => plan.write(app, &mut tx, b).await,
        Err(e) => Err(e),
    };
    let counts = match written {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::Internal || e.code == "db.busy" => return Err(e),
        Err(_) if from_ahead => {
            // Built ahead and refused: decide the batch again in a transaction of its own.
            tx.rollback().await?;
            return Ok(true);
        }
        Err(e) => {
            // The engine refused what the plan allowed (a concurrent change on another
            // server): stop here; the committed batches stay and can be undone.
            tx.rollback().await?;
            return fail(app, job, import, &e.code).await;
        }
    };
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
    // Read the next batch and look up what it refers to now, in this transaction, which
    // holds this batch's writes; build it while the database commits. On SQLite only: the
    // next transaction can tell whether any other write came between (`Tx::follows`).
    let mut next = None;
    if let (false, Some(mark)) = (last, tx.write_mark().await?) {
        if let Some(seq) = next_chunk(&mut tx, import, seq).await? {
            let rows = chunk_rows(&mut tx, import, seq).await?;
            let found = plan.look_up(&mut Conn::Tx(&mut tx), &rows).await?;
            next = Some((seq, mark, rows, found));
        }
    }
    let backend = tx.backend();
    // `join` polls the commit first, which hands it to the database's thread.
    let (committed, ahead) = futures_util::future::join(tx.commit(), async {
        let (seq, mark, rows, found) = next?;
        let batch = plan.prepare(backend, import, &found, rows).ok()?;
        Some(Ahead { import, seq, mark, batch })
    })
    .await;
    committed?;
    if let (Some(a), Ok(mut slot)) = (ahead, app.import_ahead.lock()) {
        *slot = Some(a);
    }
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
