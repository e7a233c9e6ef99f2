//! Background jobs: bulk actions too large for one request. A job row keeps the request
//! (`params`), its state (`pending` → `running` → `done` | `failed`), the progress counts and
//! the cursor (the last record id handled). Every batch is one transaction that changes its
//! records through the engine AND advances the cursor and counts, so a crash loses or repeats
//! nothing: the next run continues after the last committed batch.
//!
//! A batch first touches its job row (`UPDATE … WHERE state IN (pending, running)`), which
//! takes the row lock on PostgreSQL (SQLite has one writer anyway): two servers working on the
//! same job take turns batch by batch and each reads the cursor the other committed.
//!
//! The job runs as the user who asked, re-read at every batch: a disabled user's job stops,
//! a changed role applies at once.

use crate::bulk::{BulkCounts, BulkRequest};
use crate::{App, Result};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::records::col;
use kehu_db::Raw;
use sea_query::{Alias, Query};
use serde::Serialize;

/// A job as its owner sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobView {
    pub id: Uuid,
    pub kind: String,
    pub object: String,
    pub state: String,
    pub total: u64,
    pub counts: BulkCounts,
    pub error: Option<String>,
}

impl JobView {
    pub fn finished(&self) -> bool {
        self.state == "done" || self.state == "failed"
    }
    /// Progress in percent (0–100).
    pub fn percent(&self) -> u64 {
        percent(self.finished(), self.counts.done + self.counts.skipped + self.counts.failed, self.total)
    }
}

/// Progress of a job in percent: 100 once finished, else at most 99.
pub(crate) fn percent(finished: bool, handled: u64, total: u64) -> u64 {
    if finished || total == 0 {
        100
    } else {
        (handled * 100 / total).min(99)
    }
}

/// Insert a pending job of `kind` for user `actor` inside `tx` (bulk actions, imports, undo
/// of imports). Returns its id.
pub(crate) async fn insert_job(
    tx: &mut kehu_db::Tx,
    kind: &str,
    actor: Uuid,
    object: &str,
    params: &serde_json::Value,
    total: u64,
) -> Result<Uuid> {
    let id = new_id();
    let now = now_micros();
    let q = Query::insert()
        .into_table(Alias::new("jobs"))
        .columns(
            [
                "id",
                "kind",
                "actor_id",
                "object",
                "params",
                "state",
                "total",
                "done",
                "failed",
                "skipped",
                "cursor",
                "batches",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            id.into(),
            kind.into(),
            actor.into(),
            object.into(),
            params.to_string().into(),
            "pending".into(),
            (total as i64).into(),
            0i64.into(),
            0i64.into(),
            0i64.into(),
            "".into(),
            0i64.into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    tx.exec(&q).await?;
    Ok(id)
}

const JOB_COLS: [&str; 10] =
    ["id", "kind", "object", "state", "total", "done", "skipped", "failed", "error", "actor_id"];

/// Inside a batch's transaction: take job `id` (and, on PostgreSQL, its row lock) if it is
/// still pending or running. `false`: it ended meanwhile — the caller rolls back and stops.
pub(crate) async fn take(tx: &mut kehu_db::Tx, id: Uuid, now: i64) -> Result<bool> {
    let touched = tx
        .exec(&Raw::new(
            "UPDATE jobs SET state = 'running', updated_at = $1 WHERE id = $2 AND state IN ('pending', 'running')",
            vec![now.into(), id.into()],
        ))
        .await?;
    Ok(touched == 1)
}

fn job_from_row(r: &kehu_db::DbRow) -> Option<(JobView, Uuid)> {
    let n = |i| r.i64(i).unwrap_or(0).max(0) as u64;
    Some((
        JobView {
            id: r.uuid(0)?,
            kind: r.string(1)?,
            object: r.string(2)?,
            state: r.string(3)?,
            total: n(4),
            counts: BulkCounts { done: n(5), skipped: n(6), failed: n(7) },
            error: r.string(8),
        },
        r.uuid(9)?,
    ))
}

impl App {
    /// Queue a bulk request as a job for `actor`.
    pub(crate) async fn enqueue_job(
        &self,
        actor: &kehu_core::perm::Actor,
        req: &BulkRequest,
        total: u64,
    ) -> Result<Uuid> {
        let me = actor.user_id.ok_or_else(|| AppError::forbidden("permission.denied"))?;
        let params = serde_json::to_value(req).map_err(|e| AppError::internal(e.to_string()))?;
        let mut tx = self.db.begin().await?;
        let id = insert_job(&mut tx, "bulk", me, &req.object, &params, total).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A job of the actor (administrators see every job).
    pub async fn job(&self, actor: &kehu_core::perm::Actor, id: Uuid) -> Result<JobView> {
        let q = Query::select()
            .columns(JOB_COLS.map(Alias::new))
            .from(Alias::new("jobs"))
            .and_where(col("id").eq(id))
            .to_owned();
        let (job, owner) = self
            .db
            .one(&q)
            .await?
            .as_ref()
            .and_then(job_from_row)
            .ok_or_else(|| AppError::not_found("job.not_found"))?;
        if actor.user_id != Some(owner) && !actor.is_admin() {
            return Err(AppError::not_found("job.not_found"));
        }
        Ok(job)
    }

    /// Run one batch of a job in one transaction. Returns whether more work remains.
    pub async fn run_job_batch(&self, id: Uuid) -> Result<bool> {
        let row = self
            .db
            .one(&Raw::new("SELECT actor_id, params, state, kind FROM jobs WHERE id = $1", vec![id.into()]))
            .await?
            .ok_or_else(|| AppError::not_found("job.not_found"))?;
        if !matches!(row.str(2), Some("pending" | "running")) {
            return Ok(false);
        }
        // Dispatch by kind: imports, their checks and their undo run their own batches.
        if let Some(kind @ ("import" | "import_undo" | "import_check")) = row.str(3) {
            let import = serde_json::from_str::<serde_json::Value>(row.str(1).unwrap_or(""))
                .ok()
                .and_then(|p| p.get("import").and_then(|i| i.as_str()).and_then(|s| s.parse::<Uuid>().ok()))
                .ok_or_else(|| AppError::internal("import job without import"))?;
            if kind == "import" {
                return crate::import::run::job_batch(self, id, import).await;
            }
            let actor = row.uuid(0).ok_or_else(|| AppError::internal("job without actor"))?;
            return if kind == "import_check" {
                crate::import::check_batch(self, id, import, actor).await
            } else {
                crate::import::undo_batch(self, id, import, actor).await
            };
        }
        // Check the request again as the user is now (before the batch's transaction: the
        // checks read the database on their own connections).
        let prepared = async {
            let actor = self.actor(row.uuid(0).ok_or_else(|| AppError::internal("job without actor"))?).await?;
            let req: BulkRequest = serde_json::from_str(row.str(1).unwrap_or(""))
                .map_err(|e| AppError::internal(format!("job params: {e}")))?;
            let p = self.prepare_bulk(&actor, &req).await?;
            Ok::<_, AppError>((actor, p))
        }
        .await;
        let now = now_micros();
        let (actor, p) = match prepared {
            Ok(x) => x,
            Err(e) if e.kind == kehu_core::ErrorKind::Internal => return Err(e),
            Err(e) => {
                // The user was disabled, lost the permission, or the field is gone: stop.
                self.db
                    .write(&Raw::new(
                        "UPDATE jobs SET state = 'failed', error = $1, updated_at = $2 WHERE id = $3",
                        vec![e.code.clone().into(), now.into(), id.into()],
                    ))
                    .await?;
                return Ok(false);
            }
        };
        let mut tx = self.db.begin().await?;
        // Take the job (and, on PostgreSQL, its row lock) before reading where it stands.
        if !take(&mut tx, id, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let cursor = tx
            .one(&Raw::new("SELECT cursor FROM jobs WHERE id = $1", vec![id.into()]))
            .await?
            .and_then(|r| r.string(0))
            .unwrap_or_default();
        let after = if cursor.is_empty() { None } else { cursor.parse::<Uuid>().ok() };
        let r = self.bulk_batch(&mut tx, &actor, &p, after).await?;
        let cursor = r.last.map(|u| u.to_string()).unwrap_or(cursor);
        let state = if r.more { "running" } else { "done" };
        tx.exec(&Raw::new(
            "UPDATE jobs SET cursor = $1, done = done + $2, skipped = skipped + $3, failed = failed + $4, \
             batches = batches + 1, state = $5, updated_at = $6 WHERE id = $7",
            vec![
                cursor.into(),
                (r.counts.done as i64).into(),
                (r.counts.skipped as i64).into(),
                (r.counts.failed as i64).into(),
                state.into(),
                now_micros().into(),
                id.into(),
            ],
        ))
        .await?;
        tx.commit().await?;
        Ok(r.more)
    }

    /// Run every pending or unfinished job to completion (the worker calls this; tests too).
    /// Returns the number of jobs worked on.
    pub async fn run_jobs(&self) -> Result<usize> {
        // A check runs in one go under a lease (`import::check`): one another runner holds is
        // not picked, so the worker does not spin on it.
        let stale = now_micros() - crate::import::CHECK_LEASE_MICROS;
        let q = Raw::new(
            "SELECT id FROM jobs WHERE state = 'pending' \
             OR (state = 'running' AND (kind <> 'import_check' OR updated_at < $1)) \
             ORDER BY created_at LIMIT 20",
            vec![stale.into()],
        );
        let ids: Vec<Uuid> = self.db.all(&q).await?.iter().filter_map(|r| r.uuid(0)).collect();
        for id in &ids {
            while self.run_job_batch(*id).await? {}
        }
        Ok(ids.len())
    }

    /// The worker loop `kehu serve` starts: run jobs, then wait a moment.
    pub async fn job_worker(self: std::sync::Arc<Self>) {
        loop {
            match self.run_jobs().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "jobs"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}
