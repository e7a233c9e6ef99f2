//! What an import did: its row in `imports` as its owner (or an administrator) sees it, the
//! history of imports per object, the failed rows, and the CSV of the failed rows (original
//! columns plus an error column, UTF-8 with BOM) that can be fixed and imported again as is.

use super::mapping::ImportSettings;
use super::plan::{Outcome, RowIssue};
use crate::{App, Result};
use kehu_core::perm::Actor;
use kehu_core::{AppError, Uuid};
use kehu_db::records::col;
use kehu_db::Raw;
use sea_query::{Alias, Order, Query};
use serde::Serialize;

/// Row counts of a dry run or a real run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Related records (e.g. companies) created because a row named them.
    pub related_created: u64,
}

impl ImportCounts {
    pub(crate) fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Create { .. } => self.created += 1,
            Outcome::Update { .. } => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed { .. } => self.failed += 1,
        }
    }
    /// Rows handled so far.
    pub fn rows(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.skipped + self.failed
    }
}

/// What an undo did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UndoCounts {
    /// Created records moved to the recycle bin.
    pub deleted: u64,
    /// Updated records given their previous values back.
    pub restored: u64,
    /// Records changed again after the import (their later changes were kept).
    pub conflicts: u64,
}

crate::state_enum!(
    /// Where an import stands: uploaded → queued → running → done | failed; undoing → undone.
    ImportState {
        Uploaded = "uploaded",
        Queued = "queued",
        Running = "running",
        Done = "done",
        Failed = "failed",
        Undoing = "undoing",
        Undone = "undone",
    }
);

/// An import as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportView {
    pub id: Uuid,
    pub object: String,
    pub object_id: Uuid,
    pub owner_id: Uuid,
    pub file_name: String,
    pub format: String,
    pub encoding: String,
    pub headers: Vec<String>,
    pub samples: Vec<Vec<String>>,
    pub total_rows: u64,
    pub chunks: i64,
    pub settings: Option<ImportSettings>,
    pub state: ImportState,
    pub counts: ImportCounts,
    pub undo: UndoCounts,
    pub error: Option<String>,
    pub job_id: Option<Uuid>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl ImportView {
    pub fn percent(&self) -> u64 {
        match self.state {
            ImportState::Done | ImportState::Failed | ImportState::Undone => 100,
            _ if self.total_rows == 0 => 0,
            _ => (self.counts.rows() * 100 / self.total_rows).min(99),
        }
    }
    pub fn finished(&self) -> bool {
        matches!(self.state, ImportState::Done | ImportState::Failed | ImportState::Undone)
    }
}

/// A failed row: its cells as they were in the file and its problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedRow {
    pub row: u64,
    pub cells: Vec<String>,
    pub issues: Vec<RowIssue>,
}

const COLS: [&str; 28] = [
    "id",
    "object_id",
    "owner_id",
    "file_name",
    "format",
    "encoding",
    "headers",
    "samples",
    "total_rows",
    "chunks",
    "settings",
    "state",
    "created",
    "updated",
    "unchanged",
    "skipped",
    "failed",
    "related_created",
    "undo_deleted",
    "undo_restored",
    "undo_conflicts",
    "error",
    "job_id",
    "created_at",
    "finished_at",
    "next_chunk",
    "prepared",
    "updated_at",
];

impl kehu_db::FromRow for ImportView {
    /// Everything but `object`, the object's api name, which the caller fills in from metadata.
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        let n = |c: &str| r.i64(c).unwrap_or(0).max(0) as u64;
        Ok(ImportView {
            id: r.req_uuid("id")?,
            object: String::new(),
            object_id: r.req_uuid("object_id")?,
            owner_id: r.req_uuid("owner_id")?,
            file_name: r.req_string("file_name")?,
            format: r.req_string("format")?,
            encoding: r.req_string("encoding")?,
            headers: json_column(r, "headers")?,
            samples: json_column(r, "samples")?,
            total_rows: n("total_rows"),
            chunks: r.i64("chunks").unwrap_or(0),
            settings: r.string("settings").and_then(|s| serde_json::from_str(&s).ok()),
            state: r.state("state")?,
            counts: ImportCounts {
                created: n("created"),
                updated: n("updated"),
                unchanged: n("unchanged"),
                skipped: n("skipped"),
                failed: n("failed"),
                related_created: n("related_created"),
            },
            undo: UndoCounts {
                deleted: n("undo_deleted"),
                restored: n("undo_restored"),
                conflicts: n("undo_conflicts"),
            },
            error: r.string("error"),
            job_id: r.uuid("job_id"),
            created_at: r.req_i64("created_at")?,
            finished_at: r.i64("finished_at"),
        })
    }
}

/// A JSON text column that must parse.
fn json_column<T: serde::de::DeserializeOwned>(r: &kehu_db::NamedRow, c: &str) -> kehu_db::conn::DbResult<T> {
    let text = r.req_string(c)?;
    serde_json::from_str(&text).map_err(|e| kehu_db::DbError::Other(format!("column {c}: {e}")))
}

/// The view with its object's api name from metadata.
fn named(mut v: ImportView, schema: &kehu_core::meta::Schema) -> ImportView {
    v.object = schema.object_by_id(v.object_id).map(|o| o.api_name.clone()).unwrap_or_default();
    v
}

impl App {
    /// An import of the actor (administrators see every import).
    pub async fn import_view(&self, actor: &Actor, id: Uuid) -> Result<ImportView> {
        let schema = self.schema().await?;
        let q = Query::select()
            .columns(COLS.map(Alias::new))
            .from(Alias::new("imports"))
            .and_where(col("id").eq(id))
            .to_owned();
        let v = named(
            self.db.row::<ImportView>(&q).await?.ok_or_else(|| AppError::not_found("import.not_found"))?,
            &schema,
        );
        if actor.user_id != Some(v.owner_id) && !actor.is_admin() {
            return Err(AppError::not_found("import.not_found"));
        }
        Ok(v)
    }

    /// Imports into an object, newest first: the actor's own (administrators: everyone's).
    pub async fn imports(&self, actor: &Actor, object: &str) -> Result<Vec<ImportView>> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        let mut q = Query::select();
        q.columns(COLS.map(Alias::new))
            .from(Alias::new("imports"))
            .and_where(col("object_id").eq(obj.id))
            .order_by(Alias::new("created_at"), Order::Desc)
            .limit(200);
        if !actor.is_admin() {
            q.and_where(col("owner_id").eq(actor.user_id.unwrap_or_default()));
        }
        Ok(self.db.rows::<ImportView>(&q).await?.into_iter().map(|v| named(v, &schema)).collect())
    }

    /// Failed rows of an import in row order (at most `limit`).
    pub async fn import_failures(&self, actor: &Actor, id: Uuid, limit: u64) -> Result<Vec<FailedRow>> {
        self.import_view(actor, id).await?;
        let rows = self
            .db
            .all(&Raw::new(
                "SELECT row_no, cells, errors FROM import_failures WHERE import_id = $1 ORDER BY row_no LIMIT $2",
                vec![id.into(), (limit as i64).into()],
            ))
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(FailedRow {
                    row: r.i64(0)? as u64,
                    cells: serde_json::from_str(r.str(1)?).ok()?,
                    issues: serde_json::from_str(r.str(2)?).ok()?,
                })
            })
            .collect())
    }

    /// The failed rows as CSV: the file's columns plus an error column (its header in
    /// Chinese when `zh`) with each row's problems (`describe` turns one into text in the
    /// user's language). UTF-8 with BOM; cells neutralised against formulas (the import
    /// strips that apostrophe again, and ignores the error column).
    pub async fn failed_rows_csv(
        &self,
        actor: &Actor,
        id: Uuid,
        zh: bool,
        describe: &(dyn Fn(&RowIssue) -> String + Sync),
    ) -> Result<Vec<u8>> {
        let error_header = super::mapping::ERROR_HEADERS[usize::from(zh)];
        let v = self.import_view(actor, id).await?;
        let mut out = String::from("\u{feff}");
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = String>| {
            let cells: Vec<String> = cells.map(|c| crate::export::csv_cell(&c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        };
        let width = v.headers.len();
        let keep: Vec<usize> =
            (0..width).filter(|i| !super::mapping::ERROR_HEADERS.contains(&v.headers[*i].as_str())).collect();
        line(&mut out, &mut keep.iter().map(|i| v.headers[*i].clone()).chain([error_header.to_string()]));
        let mut after: i64 = -1;
        loop {
            let rows = self
                .db
                .all(&Raw::new(
                    "SELECT row_no, cells, errors FROM import_failures WHERE import_id = $1 AND row_no > $2 \
                     ORDER BY row_no LIMIT 2000",
                    vec![id.into(), after.into()],
                ))
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                after = r.i64(0).unwrap_or(after);
                let cells: Vec<String> = r.str(1).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
                let issues: Vec<RowIssue> = r.str(2).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
                let text = issues.iter().map(describe).collect::<Vec<_>>().join("; ");
                line(&mut out, &mut keep.iter().map(|i| cells.get(*i).cloned().unwrap_or_default()).chain([text]));
            }
        }
        Ok(out.into_bytes())
    }
}
