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

crate::state_enum!(
    /// Where a job stands.
    JobState { Pending = "pending", Running = "running", Done = "done", Failed = "failed", Cancelled = "cancelled" }
);

/// A job as its owner sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobView {
    pub id: Uuid,
    pub kind: String,
    pub object: String,
    pub state: JobState,
    pub total: u64,
    pub counts: BulkCounts,
    pub error: Option<String>,
}

impl JobView {
    pub fn finished(&self) -> bool {
        matches!(self.state, JobState::Done | JobState::Failed | JobState::Cancelled)
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

/// A worker's hold on a job: the job and the fencing token its claim wrote. Every batch's
/// transaction first `take`s the job with it, so a worker whose lease ran out (another took
/// the job over) cannot commit a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: Uuid,
    pub token: Uuid,
    /// How long a renewal holds (microseconds).
    pub micros: i64,
}

/// Inside a batch's transaction: take the leased job (and, on PostgreSQL, its row lock) if it
/// is still pending or running and the lease is still this worker's; the lease is renewed.
/// `false`: it ended, was cancelled or was taken over — the caller rolls back and stops.
pub(crate) async fn take(tx: &mut kehu_db::Tx, lease: &Lease, now: i64) -> Result<bool> {
    let touched = tx
        .exec(&Raw::new(
            "UPDATE jobs SET state = 'running', updated_at = $1, lease_until = $2 \
             WHERE id = $3 AND lease_token = $4 AND state IN ('pending', 'running')",
            vec![now.into(), (now + lease.micros).into(), lease.id.into(), lease.token.into()],
        ))
        .await?;
    Ok(touched == 1)
}

/// A job row: what its owner sees and who the owner is.
struct JobRecord {
    view: JobView,
    actor_id: Uuid,
}

impl kehu_db::FromRow for JobRecord {
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        let n = |c: &str| r.i64(c).unwrap_or(0).max(0) as u64;
        Ok(JobRecord {
            view: JobView {
                id: r.req_uuid("id")?,
                kind: r.req_string("kind")?,
                object: r.req_string("object")?,
                state: r.state("state")?,
                total: n("total"),
                counts: BulkCounts { done: n("done"), skipped: n("skipped"), failed: n("failed") },
                error: r.string("error"),
            },
            actor_id: r.req_uuid("actor_id")?,
        })
    }
}

impl kehu_db::FromRow for JobRow {
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(JobRow {
            id: r.req_uuid("id")?,
            kind: r.req_string("kind")?,
            actor_id: r.req_uuid("actor_id")?,
            params: serde_json::from_str(&r.string("params").unwrap_or_default()).unwrap_or(serde_json::Value::Null),
            state: r.state("state")?,
            attempts: r.i64("attempts").unwrap_or(0),
        })
    }
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
        let JobRecord { view, actor_id } =
            self.db.row(&q).await?.ok_or_else(|| AppError::not_found("job.not_found"))?;
        if actor.user_id != Some(actor_id) && !actor.is_admin() {
            return Err(AppError::not_found("job.not_found"));
        }
        Ok(view)
    }

    /// Run one batch of job `id` now, if no other worker holds it: lease it, run the batch,
    /// let go of it. Returns whether more work remains (the CLI and tests step with this).
    pub async fn run_job_batch(&self, id: Uuid) -> Result<bool> {
        let Some(lease) = self.claim_job(Some(id)).await? else { return Ok(false) };
        let r = self.job_step(&lease).await;
        self.release_job(&lease).await?;
        r
    }

    /// Lease the next due job (or job `only`), if one is free.
    pub async fn claim_job(&self, only: Option<Uuid>) -> Result<Option<Lease>> {
        let token = new_id();
        let now = now_micros();
        let mut tx = self.db.begin().await?;
        let micros = self.lease_micros();
        let ids = kehu_db::work::lease(&mut tx, &kehu_db::work::JOBS, token, now + micros, now, only, 1).await?;
        tx.commit().await?;
        Ok(ids.first().map(|id| Lease { id: *id, token, micros }))
    }

    /// Let go of a lease (the job stays where its last batch left it).
    pub async fn release_job(&self, lease: &Lease) -> Result<()> {
        self.db
            .write(&Raw::new(
                "UPDATE jobs SET lease_until = NULL WHERE id = $1 AND lease_token = $2",
                vec![lease.id.into(), lease.token.into()],
            ))
            .await?;
        Ok(())
    }

    /// One batch of a leased job, dispatched to its kind. An internal error (a bug, the
    /// database gone) is not the job's end: the attempt is counted and the job waits with
    /// exponential backoff (1 s, 2 s, 4 s … at most an hour) while other jobs run, and fails
    /// with the error after `MAX_ATTEMPTS`. A refusal (the user lost the right) ends it at once.
    pub async fn job_step(&self, lease: &Lease) -> Result<bool> {
        let job: JobRow = self
            .db
            .row(&Raw::new(
                "SELECT id, kind, actor_id, params, state, attempts FROM jobs WHERE id = $1",
                vec![lease.id.into()],
            ))
            .await?
            .ok_or_else(|| AppError::not_found("job.not_found"))?;
        if !matches!(job.state, JobState::Pending | JobState::Running) {
            return Ok(false);
        }
        let result = match crate::modules::job_kind(&job.kind) {
            Some(kind) => kind.batch(self, &job, lease).await,
            None => Err(AppError::internal(format!("unknown job kind {}", job.kind))),
        };
        match result {
            Ok(more) => {
                if job.attempts > 0 {
                    self.db
                        .write(&Raw::new(
                            "UPDATE jobs SET attempts = 0 WHERE id = $1 AND lease_token = $2",
                            vec![lease.id.into(), lease.token.into()],
                        ))
                        .await?;
                }
                if !more {
                    // Nothing more for now, yet the job may still be open (its kind waits for
                    // something): look again in a few seconds rather than at once.
                    self.db
                        .write(&Raw::new(
                            "UPDATE jobs SET run_after = $1 WHERE id = $2 AND lease_token = $3 \
                             AND state IN ('pending', 'running')",
                            vec![(now_micros() + 5_000_000).into(), lease.id.into(), lease.token.into()],
                        ))
                        .await?;
                }
                Ok(more)
            }
            Err(e) => {
                let attempts = job.attempts + 1;
                let now = now_micros();
                let (state, run_after) = if attempts >= MAX_ATTEMPTS {
                    (JobState::Failed, now)
                } else {
                    (JobState::Running, now + backoff_micros(attempts))
                };
                tracing::warn!(job = %lease.id, kind = %job.kind, attempts, error = %e, "job batch failed");
                self.db
                    .write(&Raw::new(
                        "UPDATE jobs SET attempts = $1, run_after = $2, state = $3, error = $4, lease_until = NULL, \
                         updated_at = $5 WHERE id = $6 AND lease_token = $7",
                        vec![
                            attempts.into(),
                            run_after.into(),
                            state.as_str().into(),
                            e.code.clone().into(),
                            now.into(),
                            lease.id.into(),
                            lease.token.into(),
                        ],
                    ))
                    .await?;
                Err(e)
            }
        }
    }

    /// Work on due jobs until none is left: lease one, run its batches while the lease holds
    /// (at most `SLICE` at a time, so a long job shares the worker), let go, take the next.
    /// A job whose batch failed waits out its backoff and does not hold up the others.
    /// Returns the number of jobs worked on.
    pub async fn run_jobs(&self) -> Result<usize> {
        let mut worked = 0;
        let started = std::time::Instant::now();
        while let Some(lease) = self.claim_job(None).await? {
            worked += 1;
            let slice = std::time::Instant::now();
            let r = loop {
                match self.job_step(&lease).await {
                    Ok(true) if slice.elapsed() < SLICE => continue,
                    other => break other,
                }
            };
            self.release_job(&lease).await?;
            if let Err(e) = r {
                if e.kind != kehu_core::ErrorKind::Internal {
                    tracing::info!(job = %lease.id, code = %e.code, "job stopped");
                }
            }
            if started.elapsed() > SLICE * 6 {
                break;
            }
        }
        Ok(worked)
    }

    /// Cancel a job of the actor (administrators: any job): it stops before its next batch;
    /// what its committed batches did stays.
    pub async fn cancel_job(&self, actor: &kehu_core::perm::Actor, id: Uuid) -> Result<JobView> {
        let job = self.job(actor, id).await?;
        if job.finished() {
            return Err(AppError::conflict("job.finished"));
        }
        self.db
            .write(&Raw::new(
                "UPDATE jobs SET state = 'cancelled', error = 'job.cancelled', updated_at = $1, lease_until = NULL \
                 WHERE id = $2 AND state IN ('pending', 'running')",
                vec![now_micros().into(), id.into()],
            ))
            .await?;
        self.job(actor, id).await
    }
}

/// A job as its kind's batch function reads it.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: Uuid,
    pub kind: String,
    pub actor_id: Uuid,
    pub params: serde_json::Value,
    pub state: JobState,
    pub attempts: i64,
}

/// Failed attempts (internal errors) before a job fails for good.
pub const MAX_ATTEMPTS: i64 = 8;

/// How long one worker keeps a job before letting others have a turn.
const SLICE: std::time::Duration = std::time::Duration::from_secs(10);

/// The wait after the `attempt`-th failure: 2^(attempt-1) s, at most an hour, with up to a
/// quarter of jitter so jobs that failed together do not retry together.
pub fn backoff_micros(attempt: i64) -> i64 {
    use rand::Rng;
    let base = 1_000_000i64.saturating_mul(1i64 << (attempt - 1).clamp(0, 12)).min(3_600_000_000);
    base + rand::thread_rng().gen_range(0..=base / 4)
}

/// The bulk action kind: bulk changes too large for one request.
pub(crate) struct BulkJob;

impl crate::work::JobKind for BulkJob {
    fn name(&self) -> &'static str {
        "bulk"
    }
    fn batch<'a>(&'a self, app: &'a App, job: &'a JobRow, lease: &'a Lease) -> crate::work::BoxFut<'a, Result<bool>> {
        Box::pin(bulk_batch(app, job, lease))
    }
}

async fn bulk_batch(app: &App, job: &JobRow, lease: &Lease) -> Result<bool> {
    let id = job.id;
    // Check the request again as the user is now (before the batch's transaction: the
    // checks read the database on their own connections).
    let prepared = async {
        let actor = app.actor(job.actor_id).await?;
        let req: BulkRequest =
            serde_json::from_value(job.params.clone()).map_err(|e| AppError::internal(format!("job params: {e}")))?;
        let p = app.prepare_bulk(&actor, &req).await?;
        Ok::<_, AppError>((actor, p))
    }
    .await;
    let now = now_micros();
    let (actor, p) = match prepared {
        Ok(x) => x,
        Err(e) if e.kind == kehu_core::ErrorKind::Internal => return Err(e),
        Err(e) => {
            // The user was disabled, lost the permission, or the field is gone: stop.
            app.db
                .write(&Raw::new(
                    "UPDATE jobs SET state = 'failed', error = $1, updated_at = $2 WHERE id = $3",
                    vec![e.code.clone().into(), now.into(), id.into()],
                ))
                .await?;
            return Ok(false);
        }
    };
    let mut tx = app.db.begin().await?;
    // Take the job (and, on PostgreSQL, its row lock) before reading where it stands.
    if !take(&mut tx, lease, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let cursor = tx
        .one(&Raw::new("SELECT cursor FROM jobs WHERE id = $1", vec![id.into()]))
        .await?
        .and_then(|r| r.string(0))
        .unwrap_or_default();
    let after = if cursor.is_empty() { None } else { cursor.parse::<Uuid>().ok() };
    let r = app.bulk_batch(&mut tx, &actor, &p, after).await?;
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
