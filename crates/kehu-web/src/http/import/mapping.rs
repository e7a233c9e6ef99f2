//! The mapping page (each column with sample values and a field picker, the mode, the key,
//! "create missing related records", save as a named mapping) and the dry-run page.

use super::{issue_text, shell, title};
use crate::ctx::{redirect_for, UserCtx};
use crate::error::WebResult;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use kehu_app::import::mapping::can_be_key;
use kehu_app::import::{ImportCheck, ImportMode, ImportSettings, ImportView};
use kehu_core::meta::FieldType;
use kehu_core::{AppError, Uuid};

pub struct ColView {
    pub index: usize,
    pub header: String,
    pub samples: String,
    pub selected: String,
}

pub struct Opt {
    pub value: String,
    pub label: String,
}

/// A saved mapping in the picker.
#[derive(Clone)]
pub struct SavedOpt {
    pub id: Uuid,
    pub name: String,
    /// The one applied on this page.
    pub selected: bool,
    /// Its creator or an administrator may delete it.
    pub can_delete: bool,
}

#[derive(Template)]
#[template(path = "import/mapping.html")]
struct MappingPage {
    shell: Shell,
    saved: Vec<SavedOpt>,
    /// The saved mapping applied (`?mapping=`), if any: offered for deletion.
    applied: Option<SavedOpt>,
    /// A check of the stored mapping, queued, running or done: linked from the page (the
    /// user who left the check page comes back here through the history).
    check: Option<ImportCheck>,
    v: ImportView,
    cols: Vec<ColView>,
    fields: Vec<Opt>,
    keys: Vec<Opt>,
    mode: &'static str,
    key: String,
    create_missing: bool,
    has_relation: bool,
    error: Option<String>,
}

/// Render the mapping page for `s` (with an error message after a refused save).
pub(crate) async fn render_mapping(
    st: &AppState,
    u: &UserCtx,
    v: ImportView,
    s: ImportSettings,
    error: Option<String>,
) -> WebResult {
    render_mapping_with(st, u, v, s, error, None).await
}

async fn render_mapping_with(
    st: &AppState,
    u: &UserCtx,
    v: ImportView,
    s: ImportSettings,
    error: Option<String>,
    applied: Option<Uuid>,
) -> WebResult {
    let mut saved: Vec<SavedOpt> = st
        .app
        .import_mappings(&u.actor, &v.object)
        .await?
        .into_iter()
        .map(|m| SavedOpt {
            selected: Some(m.id) == applied,
            can_delete: m.deletable_by(&u.actor),
            id: m.id,
            name: m.name,
        })
        .collect();
    saved.sort_by(|a, b| a.name.cmp(&b.name));
    let applied = saved.iter().find(|m| m.selected).cloned();
    let check = match (&applied, &error) {
        (None, None) => st.app.import_check(&u.actor, v.id).await?,
        _ => None,
    };
    let schema = st.app.schema().await?;
    let obj = schema.object(&v.object)?.clone();
    let lang = u.ctx.lang.code();
    let cols = v
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| ColView {
            index: i,
            header: h.clone(),
            samples: v
                .samples
                .iter()
                .filter_map(|r| r.get(i))
                .filter(|c| !c.trim().is_empty())
                .take(3)
                .map(|c| c.chars().take(40).collect::<String>())
                .collect::<Vec<_>>()
                .join(" · "),
            selected: s.columns.get(i).cloned().flatten().unwrap_or_default(),
        })
        .collect();
    let writable = |f: &kehu_core::meta::FieldDef| {
        !f.readonly && (!f.builtin || f.api_name == "owner") && u.actor.can_write_field(&obj, f)
    };
    let fields = obj
        .active()
        .filter(|f| writable(f))
        .map(|f| Opt {
            value: f.api_name.clone(),
            label: format!("{}{}", f.label.get(lang), if f.required { " *" } else { "" }),
        })
        .collect();
    let keys = obj
        .active()
        .filter(|f| writable(f) && can_be_key(f))
        .map(|f| Opt { value: f.api_name.clone(), label: f.label.get(lang).to_string() })
        .collect();
    let has_relation = obj.active().any(|f| f.ftype == FieldType::Relation && writable(f));
    let t = title(st, u, &obj);
    let shell = shell(st, u, &obj, t).await;
    render(&MappingPage {
        shell,
        saved,
        applied,
        check,
        mode: s.mode.as_str(),
        key: s.key.clone().unwrap_or_default(),
        create_missing: s.create_missing,
        v,
        cols,
        fields,
        keys,
        has_relation,
        error,
    })
}

/// Before the start, `GET /imports/{id}` — the mapping; `?mapping={saved id}` shows a saved
/// mapping applied to this file's columns (stored only when the user goes on).
pub async fn mapping_page(st: &AppState, u: &UserCtx, v: ImportView, saved: Option<&str>) -> WebResult {
    let applied = saved.filter(|m| !m.is_empty()).map(|m| m.parse::<Uuid>()).transpose();
    let applied = applied.map_err(|_| AppError::not_found("import.mapping_not_found"))?;
    let s = match applied {
        Some(m) => st.app.import_apply_mapping(&u.actor, v.id, m).await?,
        None => st.app.import_settings(&u.actor, v.id).await?,
    };
    render_mapping_with(st, u, v, s, None, applied).await
}

/// `POST /imports/{id}/mappings/{mapping}/delete` — delete a saved mapping (its creator or
/// an administrator), back to the import's mapping page.
pub async fn delete_mapping(
    State(st): State<AppState>,
    u: UserCtx,
    Path((id, mapping)): Path<(Uuid, Uuid)>,
) -> WebResult {
    let v = st.app.import_view(&u.actor, id).await?;
    st.app.delete_import_mapping(&u.actor, &v.object, mapping).await?;
    Ok(redirect_for(&u.ctx, &format!("/imports/{id}")))
}

/// `POST /imports/{id}/map` — keep the mapping (and save it by name), then start the dry run.
pub async fn map(
    State(st): State<AppState>,
    u: UserCtx,
    Path(id): Path<Uuid>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let v = st.app.import_view(&u.actor, id).await?;
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let s = ImportSettings {
        mode: ImportMode::parse(&get("mode")).unwrap_or_default(),
        key: Some(get("key")).filter(|k| !k.is_empty()),
        columns: (0..v.headers.len()).map(|i| Some(get(&format!("col_{i}"))).filter(|c| !c.is_empty())).collect(),
        create_missing: get("create_missing") == "1",
    };
    let save_as = get("save_as");
    match st.app.import_configure(&u.actor, id, &s, Some(save_as.as_str())).await {
        Ok(()) => {
            start_check(&st, &u, &v).await?;
            Ok(redirect_for(&u.ctx, &format!("/imports/{id}/check")))
        }
        Err(e) if e.kind == kehu_core::ErrorKind::Internal => Err(e.into()),
        Err(e) => {
            let mut msg = st.i18n.error(u.ctx.lang, &e.code);
            for f in &e.fields {
                let label = st
                    .app
                    .schema()
                    .await?
                    .object(&v.object)
                    .ok()
                    .and_then(|o| o.field(&f.field).map(|fd| fd.label.get(u.ctx.lang.code()).to_string()))
                    .unwrap_or_else(|| f.field.clone());
                msg.push_str(&format!(" {label}: {}", st.i18n.error(u.ctx.lang, &f.code)));
            }
            render_mapping(&st, &u, v, s, Some(msg)).await
        }
    }
}

pub struct IssueView {
    pub row: u64,
    pub text: String,
}

#[derive(Template)]
#[template(path = "import/check.html")]
struct CheckPage {
    shell: Shell,
    v: ImportView,
    check: Option<ImportCheck>,
    /// The check is done: the import can start from here.
    ready: bool,
    failed: bool,
    /// Something would be written.
    can_start: bool,
    /// Why the check failed, translated.
    error: String,
    issues: Vec<IssueView>,
    more: usize,
}

#[derive(Template)]
#[template(path = "import/check_progress.html")]
struct CheckProgress {
    shell: Shell,
    v: ImportView,
    c: ImportCheck,
}

/// Row errors shown on a page (the failed-rows CSV has them all).
const SHOWN: usize = 500;

/// Queue a check of the import's settings; a file of one batch or less is checked right
/// here, so its page shows the result at once (the job is taken as any other: if the worker
/// got it first, the page shows its progress instead).
async fn start_check(st: &AppState, u: &UserCtx, v: &ImportView) -> Result<(), crate::error::WebError> {
    let job = st.app.import_check_start(&u.actor, v.id).await?;
    if v.total_rows <= st.app.import_batch_rows() as u64 {
        st.app.run_job_batch(job).await?;
    }
    Ok(())
}

/// `GET /imports/{id}/check` — the dry run: its progress, then what would happen and every
/// row error.
pub async fn check(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let v = st.app.import_view(&u.actor, id).await?;
    if v.state != "uploaded" {
        return Ok(redirect_for(&u.ctx, &format!("/imports/{id}")));
    }
    if v.settings.is_none() {
        return Err(AppError::invalid("import.not_configured").into());
    }
    let check = st.app.import_check(&u.actor, id).await?;
    let dry = check.as_ref().and_then(|c| c.result.as_ref());
    let issues = dry
        .map(|d| {
            d.errors
                .iter()
                .take(SHOWN)
                .map(|i| IssueView { row: i.row, text: issue_text(&st.i18n, u.ctx.lang, i) })
                .collect()
        })
        .unwrap_or_default();
    let more = dry.map(|d| d.errors.len().saturating_sub(SHOWN)).unwrap_or(0);
    let ready = dry.is_some();
    let can_start = dry.is_some_and(|d| d.counts.created + d.counts.updated > 0);
    let failed = check.as_ref().is_some_and(|c| c.state == "failed");
    let error =
        check.as_ref().and_then(|c| c.error.as_deref()).map(|code| st.i18n.error(u.ctx.lang, code)).unwrap_or_default();
    let schema = st.app.schema().await?;
    let obj = schema.object(&v.object)?.clone();
    let t = title(&st, &u, &obj);
    let shell = shell(&st, &u, &obj, t).await;
    render(&CheckPage { shell, v, ready, failed, can_start, error, issues, more, check })
}

/// `POST /imports/{id}/check` — check again (the data may have changed since).
pub async fn check_again(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let v = st.app.import_view(&u.actor, id).await?;
    start_check(&st, &u, &v).await?;
    Ok(redirect_for(&u.ctx, &format!("/imports/{id}/check")))
}

/// `GET /imports/{id}/check/progress` — the check's progress bar; when it has finished, a
/// redirect to the check page.
pub async fn check_progress(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let v = st.app.import_view(&u.actor, id).await?;
    match st.app.import_check(&u.actor, id).await? {
        Some(c) if !c.finished() && v.state == "uploaded" => {
            let shell = Shell::bare(&st, &u.ctx, String::new());
            render(&CheckProgress { shell, v, c })
        }
        _ => Ok(redirect_for(&u.ctx, &format!("/imports/{id}/check"))),
    }
}
