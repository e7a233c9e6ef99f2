//! The dry run ("检查"): what an import would do, every row error, nothing written.
//!
//! `DryRunner` walks the stored chunks with the very `Plan` the real run uses (see `plan.rs`).
//! `import_dry_run` runs it to the end in the caller (`kehu import --dry-run`, tests); the web
//! runs it as a background job (`kind = "import_check"`, `import_check_start`) whose progress
//! the page shows, so a file of a million rows never holds a request open.
//!
//! **A check job and crashes.** A check writes nothing but its progress and, at the end, its
//! result (`import_checks`, with the job's `done` state in the same transaction). Its state
//! across chunks (duplicates within the file, related records that would be created) lives
//! in memory, so a check interrupted by a crash starts again from the first row: it is
//! idempotent because it reads only. It runs under the job framework's lease (`jobs::Lease`),
//! renewed after every chunk with the fencing token: two servers never run the same check at
//! once, and a dead server's check is taken over when its lease runs out.
//!
//! A check belongs to the settings it checked (`import_checks.settings`): changing the
//! mapping makes the page ask for a new one, and a queued check whose settings are no longer
//! the import's ends as failed with `import.check_outdated` without reading a row.

use super::dups::DupIndex;
use super::plan::{self, Conn, Plan, Session};
use super::{csv_to_rows, split_row_no, DryRun, ImportCounts, RowIssue, MAX_LISTED_ERRORS};
use crate::{App, Result};
use kehu_core::perm::Actor;
use kehu_core::{now_micros, AppError, ErrorKind, Uuid};
use kehu_db::Raw;
use serde::Serialize;

/// The dry run over an import's stored chunks, chunk by chunk.
pub(crate) struct DryRunner {
    id: Uuid,
    chunks: i64,
    next: i64,
    headers: Vec<String>,
    plan: Plan,
    dup_cols: Vec<(usize, std::sync::Arc<kehu_core::meta::FieldDef>)>,
    dups: DupIndex,
    session: Session,
    out: DryRun,
}

impl DryRunner {
    /// A dry run of import `id` as `actor` with `settings` (resolved against metadata now).
    pub(crate) async fn new(
        app: &App,
        actor: Actor,
        v: &super::ImportView,
        settings: super::ImportSettings,
    ) -> Result<Self> {
        let plan = Plan::new(app, actor, v.object_id, v.headers.clone(), settings).await?;
        Ok(DryRunner {
            id: v.id,
            chunks: v.chunks,
            next: 0,
            headers: v.headers.clone(),
            dup_cols: plan.dup_columns(),
            plan,
            dups: DupIndex::default(),
            session: Session::default(),
            out: DryRun::default(),
        })
    }

    /// Check the next chunk. `false` when every chunk has been checked.
    pub(crate) async fn step(&mut self, app: &App) -> Result<bool> {
        if self.next >= self.chunks {
            return Ok(false);
        }
        let Some(data) = app.chunk_data(self.id, self.next).await? else {
            return Err(AppError::conflict("import.already_started"));
        };
        self.next += 1;
        let rows: Vec<_> = csv_to_rows(&data)?
            .into_iter()
            .map(|r| {
                let (n, cells) = split_row_no(r);
                let d = self.dups.check(&self.dup_cols, &self.headers, n, &cells);
                (n, cells, d)
            })
            .collect();
        let mut conn = Conn::Db(&app.db);
        for o in self.plan.plan_batch(&mut conn, &mut self.session, rows).await? {
            self.out.counts.add(&o);
            if let plan::Outcome::Failed { issues, .. } = o {
                let room = MAX_LISTED_ERRORS.saturating_sub(self.out.errors.len());
                self.out.errors.extend(issues.into_iter().take(room));
            }
        }
        Ok(self.next < self.chunks)
    }

    /// Rows checked so far.
    pub(crate) fn rows(&self) -> u64 {
        self.out.counts.rows()
    }

    pub(crate) fn finish(mut self) -> DryRun {
        self.out.counts.related_created = self.session.used.len() as u64;
        self.out
    }
}

/// A check of an import as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportCheck {
    pub job_id: Uuid,
    /// `pending`, `running`, `done` or `failed` (the job's state).
    pub state: String,
    /// Rows checked so far, of `total`.
    pub rows: u64,
    pub total: u64,
    /// The result, once done.
    pub result: Option<DryRun>,
    /// Why it failed (an error code).
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl ImportCheck {
    pub fn finished(&self) -> bool {
        self.state == "done" || self.state == "failed"
    }
    /// Progress in percent (0–100).
    pub fn percent(&self) -> u64 {
        crate::jobs::percent(self.finished(), self.rows, self.total)
    }
}

fn settings_json(s: &super::ImportSettings) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl App {
    /// Count what the import would do and list every row error, writing nothing — here, to
    /// the end (the web runs the same as a job: `import_check_start`).
    pub async fn import_dry_run(&self, actor: &Actor, id: Uuid) -> Result<DryRun> {
        let v = self.import_view(actor, id).await?;
        let settings = v.settings.clone().ok_or_else(|| AppError::invalid("import.not_configured"))?;
        let mut run = DryRunner::new(self, actor.clone(), &v, settings).await?;
        while run.step(self).await? {}
        Ok(run.finish())
    }

    /// Queue a check of the import's current settings (a job); returns its job id. A check of
    /// the same settings still queued or running is returned instead (a double submit is one
    /// check); a finished one is not: the data may have changed since ("重新检查").
    pub async fn import_check_start(&self, actor: &Actor, id: Uuid) -> Result<Uuid> {
        let v = self.import_view(actor, id).await?;
        if v.state != "uploaded" {
            return Err(AppError::conflict("import.already_started"));
        }
        let settings = v.settings.clone().ok_or_else(|| AppError::invalid("import.not_configured"))?;
        // Refuse what the job would refuse (a mapping the user may no longer use) now.
        Plan::new(self, actor.clone(), v.object_id, v.headers.clone(), settings.clone()).await?;
        if let Some(c) = self.import_check(actor, id).await?.filter(|c| !c.finished()) {
            return Ok(c.job_id);
        }
        let mut tx = self.db.begin().await?;
        let params = serde_json::json!({ "import": id });
        let job =
            crate::jobs::insert_job(&mut tx, "import_check", v.owner_id, &v.object, &params, v.total_rows).await?;
        tx.exec(&Raw::new(
            "INSERT INTO import_checks (id, import_id, settings, created_at) VALUES ($1, $2, $3, $4)",
            vec![job.into(), id.into(), settings_json(&settings).into(), now_micros().into()],
        ))
        .await?;
        tx.commit().await?;
        Ok(job)
    }

    /// The newest check of the import's current settings, if any.
    pub async fn import_check(&self, actor: &Actor, id: Uuid) -> Result<Option<ImportCheck>> {
        let v = self.import_view(actor, id).await?;
        let Some(settings) = v.settings.as_ref() else { return Ok(None) };
        let r = self
            .db
            .one(&Raw::new(
                "SELECT c.id, j.state, j.done, j.total, c.counts, c.errors, j.error, c.created_at, c.finished_at \
                 FROM import_checks c JOIN jobs j ON j.id = c.id \
                 WHERE c.import_id = $1 AND c.settings = $2 ORDER BY c.created_at DESC, c.id DESC LIMIT 1",
                vec![id.into(), settings_json(settings).into()],
            ))
            .await?;
        let Some(r) = r else { return Ok(None) };
        let n = |i| r.i64(i).unwrap_or(0).max(0) as u64;
        let result = match (r.str(4), r.str(5)) {
            (Some(c), Some(e)) => Some(DryRun {
                counts: serde_json::from_str::<ImportCounts>(c).map_err(|e| AppError::internal(e.to_string()))?,
                errors: serde_json::from_str::<Vec<RowIssue>>(e).map_err(|e| AppError::internal(e.to_string()))?,
            }),
            _ => None,
        };
        Ok(Some(ImportCheck {
            job_id: r.uuid(0).ok_or_else(|| AppError::internal("check without id"))?,
            state: r.string(1).unwrap_or_default(),
            rows: n(2),
            total: n(3),
            result,
            error: r.string(6),
            created_at: r.i64(7).unwrap_or(0),
            finished_at: r.i64(8),
        }))
    }
}

/// Run a check job to its end (see the module doc). Returns `false`: no batch is left for
/// this caller, either because it finished or because another runner holds it.
pub(crate) async fn job_batch(app: &App, lease: &crate::jobs::Lease, import: Uuid, actor_id: Uuid) -> Result<bool> {
    let job = lease.id;
    let now = now_micros();
    let taken = app
        .db
        .write(&Raw::new(
            "UPDATE jobs SET state = 'running', done = 0, updated_at = $1, lease_until = $2 WHERE id = $3 \
             AND lease_token = $4 AND state IN ('pending', 'running')",
            vec![now.into(), (now + lease.micros).into(), job.into(), lease.token.into()],
        ))
        .await?;
    if taken != 1 {
        return Ok(false);
    }
    match check(app, lease, import, actor_id).await {
        Ok(out) => {
            let counts = serde_json::to_string(&out.counts).map_err(|e| AppError::internal(e.to_string()))?;
            let errors = serde_json::to_string(&out.errors).map_err(|e| AppError::internal(e.to_string()))?;
            let now = now_micros();
            let mut tx = app.db.begin().await?;
            tx.exec(&Raw::new(
                "UPDATE import_checks SET counts = $1, errors = $2, finished_at = $3 WHERE id = $4",
                vec![counts.into(), errors.into(), now.into(), job.into()],
            ))
            .await?;
            tx.exec(&Raw::new(
                "UPDATE jobs SET state = 'done', done = total, failed = $1, skipped = $2, batches = batches + 1, \
                 updated_at = $3 WHERE id = $4",
                vec![(out.counts.failed as i64).into(), (out.counts.skipped as i64).into(), now.into(), job.into()],
            ))
            .await?;
            tx.commit().await?;
        }
        Err(e) if e.kind == ErrorKind::Internal => return Err(e),
        Err(e) => {
            // The import started or was re-mapped meanwhile, the user lost the permission or
            // was disabled: the check ends with the reason.
            let now = now_micros();
            let mut tx = app.db.begin().await?;
            tx.exec(&Raw::new("UPDATE import_checks SET finished_at = $1 WHERE id = $2", vec![now.into(), job.into()]))
                .await?;
            tx.exec(&Raw::new(
                "UPDATE jobs SET state = 'failed', error = $1, updated_at = $2 WHERE id = $3",
                vec![e.code.clone().into(), now.into(), job.into()],
            ))
            .await?;
            tx.commit().await?;
        }
    }
    Ok(false)
}

/// The check itself, refreshing the job's progress (and lease) after every chunk.
async fn check(app: &App, lease: &crate::jobs::Lease, import: Uuid, actor_id: Uuid) -> Result<DryRun> {
    let job = lease.id;
    let actor = app.actor(actor_id).await?;
    let v = app.import_view(&actor, import).await?;
    if v.state != "uploaded" {
        return Err(AppError::conflict("import.already_started"));
    }
    let checked = app
        .db
        .one(&Raw::new("SELECT settings FROM import_checks WHERE id = $1", vec![job.into()]))
        .await?
        .and_then(|r| r.string(0))
        .ok_or_else(|| AppError::internal("check job without its row"))?;
    let settings = v.settings.clone().filter(|s| settings_json(s) == checked);
    let Some(settings) = settings else { return Err(AppError::conflict("import.check_outdated")) };
    let mut run = DryRunner::new(app, actor, &v, settings).await?;
    while run.step(app).await? {
        let n = app
            .db
            .write(&Raw::new(
                "UPDATE jobs SET done = $1, updated_at = $2, lease_until = $3 WHERE id = $4 AND state = 'running' \
                 AND lease_token = $5",
                vec![
                    (run.rows() as i64).into(),
                    now_micros().into(),
                    (now_micros() + lease.micros).into(),
                    job.into(),
                    lease.token.into(),
                ],
            ))
            .await?;
        if n != 1 {
            return Err(AppError::conflict("import.check_outdated"));
        }
    }
    Ok(run.finish())
}
