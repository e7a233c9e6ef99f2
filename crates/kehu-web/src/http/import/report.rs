//! An import after the start: the progress bar (htmx polling, as the bulk job toast), the
//! report (counts, failed rows, their CSV, undo) and the history of imports per object.

use super::{issue_text, shell, title};
use crate::ctx::{redirect_for, UserCtx};
use crate::error::WebResult;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use kehu_app::import::ImportView;
use kehu_core::Uuid;

pub struct FailedView {
    pub row: u64,
    pub text: String,
}

#[derive(Template)]
#[template(path = "import/report.html")]
struct ReportPage {
    shell: Shell,
    v: ImportView,
    failed: Vec<FailedView>,
    error: Option<String>,
    mode: String,
    state_label: String,
}

#[derive(Template)]
#[template(path = "import/progress.html")]
struct ProgressPage {
    shell: Shell,
    v: ImportView,
}

#[derive(Template)]
#[template(path = "import/progress_partial.html")]
struct ProgressPartial {
    shell: Shell,
    v: ImportView,
}

/// Failed rows listed on the report (the CSV has them all).
const SHOWN: u64 = 100;

#[derive(serde::Deserialize)]
pub struct ShowQuery {
    /// A saved mapping to apply on the mapping page.
    mapping: Option<String>,
}

/// `GET /imports/{id}` — mapping before the start, progress while running, then the report.
pub async fn show(
    State(st): State<AppState>,
    u: UserCtx,
    Path(id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> WebResult {
    let v = st.app.import_view(&u.actor, id).await?;
    if v.state == "uploaded" {
        return super::mapping_page(&st, &u, v, q.mapping.as_deref()).await;
    }
    let schema = st.app.schema().await?;
    let obj = schema.object(&v.object)?.clone();
    let t = title(&st, &u, &obj);
    let shell = shell(&st, &u, &obj, t).await;
    if matches!(v.state.as_str(), "queued" | "running" | "undoing") {
        return render(&ProgressPage { shell, v });
    }
    let failed = st
        .app
        .import_failures(&u.actor, id, SHOWN)
        .await?
        .into_iter()
        .map(|f| FailedView {
            row: f.row,
            text: f.issues.iter().map(|i| issue_text(&st.i18n, u.ctx.lang, i)).collect::<Vec<_>>().join("; "),
        })
        .collect();
    let error = v.error.as_deref().map(|c| st.i18n.error(u.ctx.lang, c));
    let mode = v
        .settings
        .as_ref()
        .map(|s| st.i18n.get(u.ctx.lang, &format!("import-mode-{}", s.mode.as_str()), &[]))
        .unwrap_or_default();
    let state_label = st.i18n.get(u.ctx.lang, &format!("import-state-{}", v.state), &[]);
    render(&ReportPage { shell, v, failed, error, mode, state_label })
}

/// `GET /imports/{id}/progress` — the progress bar; when finished, a redirect to the report.
pub async fn progress(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let v = st.app.import_view(&u.actor, id).await?;
    if !matches!(v.state.as_str(), "queued" | "running" | "undoing") {
        return Ok(redirect_for(&u.ctx, &format!("/imports/{id}")));
    }
    let shell = Shell::bare(&st, &u.ctx, String::new());
    render(&ProgressPartial { shell, v })
}

/// `POST /imports/{id}/start` — queue the import.
pub async fn start(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    st.app.import_start(&u.actor, id).await?;
    Ok(redirect_for(&u.ctx, &format!("/imports/{id}")))
}

/// `POST /imports/{id}/undo` — undo the whole import (a job).
pub async fn undo(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    st.app.import_undo(&u.actor, id).await?;
    Ok(redirect_for(&u.ctx, &format!("/imports/{id}")))
}

/// `GET /imports/{id}/failed.csv` — the failed rows with an error column, to fix and import.
pub async fn failed_csv(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let lang = u.ctx.lang;
    let csv = st
        .app
        .failed_rows_csv(&u.actor, id, lang == crate::i18n::Lang::ZhCn, &|i| issue_text(&st.i18n, lang, i))
        .await?;
    let v = st.app.import_view(&u.actor, id).await?;
    let stem: String = v
        .file_name
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(&v.file_name)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    let name = format!("{}-failed.csv", if stem.is_empty() { "import" } else { &stem });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        csv,
    )
        .into_response())
}

pub struct HistoryRow {
    pub id: Uuid,
    pub file_name: String,
    pub at: i64,
    pub state: String,
    pub state_label: String,
    pub created: u64,
    pub updated: u64,
    pub failed: u64,
    pub total: u64,
}

#[derive(Template)]
#[template(path = "import/history.html")]
struct HistoryPage {
    shell: Shell,
    object: String,
    rows: Vec<HistoryRow>,
}

/// `GET /o/{object}/imports` — the imports into an object (own; administrators: all).
pub async fn history(State(st): State<AppState>, u: UserCtx, Path(object): Path<String>) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let rows = st
        .app
        .imports(&u.actor, &object)
        .await?
        .into_iter()
        .map(|v| HistoryRow {
            id: v.id,
            file_name: v.file_name,
            at: v.created_at,
            state_label: st.i18n.get(u.ctx.lang, &format!("import-state-{}", v.state), &[]),
            state: v.state.to_string(),
            created: v.counts.created,
            updated: v.counts.updated,
            failed: v.counts.failed,
            total: v.total_rows,
        })
        .collect();
    let t = st.i18n.get(u.ctx.lang, "import-history", &[]);
    let shell = shell(&st, &u, &obj, t).await;
    render(&HistoryPage { shell, object, rows })
}
