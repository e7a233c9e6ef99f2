//! Import of CSV and XLSX files into any object (issue #5).
//!
//! Flow: `import_upload` reads the file (`read.rs`: encoding, delimiter, XLSX) and stores it
//! → `import_settings` proposes a mapping (`mapping.rs`) → `import_configure` checks and
//! keeps the chosen one → `import_dry_run` (`plan.rs`) counts what would happen and lists
//! every row error, writing nothing → `import_start` queues a job whose batches (`run.rs`)
//! write through the record engine → `import_report` / `failed_rows_csv` (`report.rs`) →
//! `import_undo` (`undo.rs`).
//!
//! **Where the file lives.** The upload is decoded once to UTF-8 CSV and stored in the
//! database (`import_chunks`), cut into chunks of `App::import_batch_rows` rows, in the same
//! transaction as the `imports` row. The database is already the one durable store every
//! app server shares (the data dir is local to one machine, and a job may run on any
//! server); its commit is the fsync; backups and archives carry it. One chunk is one batch:
//! the batch's transaction writes the records, the undo log, the failed rows, the counts and
//! the cursor — and deletes the chunk, so the space is given back as the import proceeds
//! and a chunk can never be applied twice.
//!
//! Must never: write a record except through the record engine, or let the dry run and the
//! real run decide differently (they share `Plan::look_up` and `Plan::decide`).

mod check;
mod dups;
pub mod mapping;
pub(crate) mod plan;
pub mod read;
mod report;
mod row;
pub(crate) mod run;
mod undo;

/// The import's job kinds: the import itself, its check (dry run) and its undo. Each job's
/// parameters name the import.
pub(crate) struct ImportJob(pub &'static str);

impl crate::work::JobKind for ImportJob {
    fn name(&self) -> &'static str {
        self.0
    }
    fn batch<'a>(
        &'a self,
        app: &'a App,
        job: &'a crate::jobs::JobRow,
        lease: &'a crate::jobs::Lease,
    ) -> crate::work::BoxFut<'a, Result<bool>> {
        Box::pin(async move {
            let import = job
                .params
                .get("import")
                .and_then(|i| i.as_str())
                .and_then(|s| s.parse::<kehu_core::Uuid>().ok())
                .ok_or_else(|| kehu_core::AppError::internal("import job without import"))?;
            match self.0 {
                "import" => run::job_batch(app, lease, import).await,
                "import_check" => check::job_batch(app, lease, import, job.actor_id).await,
                _ => undo::job_batch(app, lease, import, job.actor_id).await,
            }
        })
    }
}

pub use check::ImportCheck;
pub use mapping::{ImportMode, ImportSettings, SavedMapping};
pub use plan::RowIssue;
pub use report::{FailedRow, ImportCounts, ImportState, ImportView, UndoCounts};

use crate::{App, Result};
use kehu_core::perm::{Action, Actor};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::Raw;
use plan::Plan;
use sea_query::{Alias, Query};
use serde::Serialize;

/// Rows per stored chunk = rows per batch of the real run, unless configured
/// (`KEHU_IMPORT_BATCH_ROWS`). Bigger batches write fewer pages per row — each commit writes
/// every page it touched, and an index with many repeated values (names) touches one page
/// per group — but hold SQLite's single writer longer: about 0.6–0.8 s per 20,000 contacts.
pub const DEFAULT_BATCH_ROWS: usize = 20_000;
/// The range a configured batch size is clamped to.
pub const BATCH_ROWS_RANGE: std::ops::RangeInclusive<usize> = 100..=100_000;
/// Largest number of data rows in one file.
pub const MAX_ROWS: u64 = 2_000_000;
/// Row errors a dry run lists (the counts stay exact beyond).
pub const MAX_LISTED_ERRORS: usize = 10_000;
/// Sample rows kept for the mapping page.
const SAMPLES: usize = 5;

/// What a dry run found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DryRun {
    pub counts: ImportCounts,
    /// Row errors in row order (at most `MAX_LISTED_ERRORS`).
    pub errors: Vec<RowIssue>,
}

/// CSV text of rows (what a chunk stores).
pub(crate) fn rows_to_csv(rows: &[Vec<String>]) -> Result<String> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    for r in rows {
        w.write_record(r).map_err(|e| AppError::internal(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| AppError::internal(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| AppError::internal(e.to_string()))
}

/// Rows of a stored chunk, numbered from `first_row` (the stored row numbers list).
pub(crate) fn csv_to_rows(data: &str) -> Result<Vec<Vec<String>>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(data.as_bytes());
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| AppError::internal(format!("chunk: {e}")))?;
        out.push(rec.iter().map(str::to_string).collect());
    }
    Ok(out)
}

/// A chunk row carries its spreadsheet row number as its first cell.
pub(crate) fn split_row_no(mut cells: Vec<String>) -> (u64, Vec<String>) {
    let n = if cells.is_empty() { 0 } else { cells.remove(0).parse().unwrap_or(0) };
    (n, cells)
}

impl App {
    /// Set the rows per import batch (the server and the CLI do, from the configuration);
    /// clamped to `BATCH_ROWS_RANGE`. Applies to files uploaded from now on.
    pub fn set_import_batch_rows(&self, rows: usize) {
        let rows = rows.clamp(*BATCH_ROWS_RANGE.start(), *BATCH_ROWS_RANGE.end());
        self.import_batch_rows.store(rows, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn import_batch_rows(&self) -> usize {
        self.import_batch_rows.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Read an uploaded file and keep it for importing into `object`. Nothing is imported yet.
    pub async fn import_upload(
        &self,
        actor: &Actor,
        object: &str,
        file_name: &str,
        bytes: &[u8],
        sheet: Option<&str>,
    ) -> Result<Uuid> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let me = actor.user_id.ok_or_else(|| AppError::forbidden("permission.denied"))?;
        if actor.check(&obj, Action::Create).is_err() {
            actor.check(&obj, Action::Update)?;
        }
        let mut chunks: Vec<(u64, String)> = Vec::new();
        let batch_rows = self.import_batch_rows();
        let mut pending: Vec<Vec<String>> = Vec::with_capacity(batch_rows);
        let mut samples: Vec<Vec<String>> = Vec::new();
        let mut total: u64 = 0;
        let mut first_row = 0;
        let info = read::read_table(file_name, bytes, sheet, |row_no, cells| {
            total += 1;
            if total > MAX_ROWS {
                return Err(AppError::invalid("import.too_many_rows"));
            }
            if samples.len() < SAMPLES {
                samples.push(cells.clone());
            }
            if pending.is_empty() {
                first_row = row_no;
            }
            let mut r = Vec::with_capacity(cells.len() + 1);
            r.push(row_no.to_string());
            r.extend(cells);
            pending.push(r);
            if pending.len() == batch_rows {
                chunks.push((first_row, rows_to_csv(&pending)?));
                pending.clear();
            }
            Ok(())
        })?;
        if !pending.is_empty() {
            chunks.push((first_row, rows_to_csv(&pending)?));
        }
        if total == 0 {
            return Err(AppError::invalid("import.no_rows"));
        }
        let id = new_id();
        let now = now_micros();
        let name: String = file_name.chars().filter(|c| !c.is_control()).take(200).collect();
        let json = |v: &dyn erased::Ser| v.to_json();
        let mut tx = self.db.begin().await?;
        let q = Query::insert()
            .into_table(Alias::new("imports"))
            .columns(
                [
                    "id",
                    "object_id",
                    "owner_id",
                    "file_name",
                    "format",
                    "encoding",
                    "headers",
                    "headers_key",
                    "samples",
                    "total_rows",
                    "chunks",
                    "state",
                    "next_chunk",
                    "prepared",
                    "created",
                    "updated",
                    "unchanged",
                    "skipped",
                    "failed",
                    "related_created",
                    "undo_deleted",
                    "undo_restored",
                    "undo_conflicts",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                id.into(),
                obj.id.into(),
                me.into(),
                name.into(),
                info.format.into(),
                info.encoding.into(),
                json(&info.headers).into(),
                mapping::headers_key(&info.headers).into(),
                json(&samples).into(),
                (total as i64).into(),
                (chunks.len() as i64).into(),
                "uploaded".into(),
                0i64.into(),
                false.into(),
                0i64.into(),
                0i64.into(),
                0i64.into(),
                0i64.into(),
                0i64.into(),
                0i64.into(),
                0i64.into(),
                0i64.into(),
                0i64.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        tx.exec(&q).await?;
        for (seq, (first, data)) in chunks.into_iter().enumerate() {
            tx.exec(&Raw::new(
                "INSERT INTO import_chunks (import_id, seq, first_row, data) VALUES ($1, $2, $3, $4)",
                vec![id.into(), (seq as i64).into(), (first as i64).into(), data.into()],
            ))
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The settings to propose for an uploaded file (the stored ones once configured).
    pub async fn import_settings(&self, actor: &Actor, id: Uuid) -> Result<ImportSettings> {
        let v = self.import_view(actor, id).await?;
        if let Some(s) = v.settings {
            return Ok(s);
        }
        let schema = self.schema().await?;
        let obj = schema.object(&v.object)?;
        self.suggest_settings(obj, &v.headers).await
    }

    /// Check and keep the settings of an upload not started yet (optionally also saved as a
    /// named mapping).
    pub async fn import_configure(
        &self,
        actor: &Actor,
        id: Uuid,
        settings: &ImportSettings,
        save_as: Option<&str>,
    ) -> Result<()> {
        let v = self.import_view(actor, id).await?;
        if v.state != "uploaded" {
            return Err(AppError::conflict("import.already_started"));
        }
        let schema = self.schema().await?;
        let obj = schema.object(&v.object)?;
        mapping::validate(actor, &schema, obj, settings, v.headers.len())?;
        if let Some(name) = save_as.filter(|n| !n.trim().is_empty()) {
            self.save_import_mapping(actor, &v.object, name, &v.headers, settings).await?;
        }
        let json = serde_json::to_string(settings).map_err(|e| AppError::internal(e.to_string()))?;
        self.db
            .write(&Raw::new(
                "UPDATE imports SET settings = $1, updated_at = $2 WHERE id = $3 AND state = 'uploaded'",
                vec![json.into(), now_micros().into(), id.into()],
            ))
            .await?;
        Ok(())
    }

    /// Queue the import as a background job. Returns the job id.
    pub async fn import_start(&self, actor: &Actor, id: Uuid) -> Result<Uuid> {
        let v = self.import_view(actor, id).await?;
        if v.state != "uploaded" {
            return v.job_id.ok_or_else(|| AppError::conflict("import.already_started"));
        }
        let settings = v.settings.clone().ok_or_else(|| AppError::invalid("import.not_configured"))?;
        Plan::new(self, actor.clone(), v.object_id, v.headers.clone(), settings).await?;
        let mut tx = self.db.begin().await?;
        let taken = tx
            .exec(&Raw::new(
                "UPDATE imports SET state = 'queued', updated_at = $1 WHERE id = $2 AND state = 'uploaded'",
                vec![now_micros().into(), id.into()],
            ))
            .await?;
        if taken != 1 {
            tx.rollback().await?;
            return self
                .import_view(actor, id)
                .await?
                .job_id
                .ok_or_else(|| AppError::conflict("import.already_started"));
        }
        let params = serde_json::json!({ "import": id });
        let job = crate::jobs::insert_job(&mut tx, "import", v.owner_id, &v.object, &params, v.total_rows).await?;
        tx.exec(&Raw::new("UPDATE imports SET job_id = $1 WHERE id = $2", vec![job.into(), id.into()])).await?;
        tx.commit().await?;
        Ok(job)
    }

    pub(crate) async fn chunk_data(&self, id: Uuid, seq: i64) -> Result<Option<String>> {
        let r = self
            .db
            .one(&Raw::new(
                "SELECT data FROM import_chunks WHERE import_id = $1 AND seq = $2",
                vec![id.into(), seq.into()],
            ))
            .await?;
        Ok(r.and_then(|r| r.string(0)))
    }
}

/// `serde_json::to_string` for the few values stored as JSON text.
mod erased {
    pub(super) trait Ser {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".into())
        }
    }
}
