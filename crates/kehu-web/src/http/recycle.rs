//! The recycle bin page: deleted records of every object the user may delete, newest deletion
//! first, with who deleted them and when; filter by object or name; restore the ticked records;
//! administrators also purge them and set how long deleted records are kept.

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::enc;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use kehu_app::records::bin::{BinQuery, ItemResult, DEFAULT_RETENTION_DAYS};
use kehu_core::{AppError, Uuid};
use serde::Deserialize;

pub struct BinRow {
    /// `<object>:<id>`, the value of the row's tick box.
    pub key: String,
    pub object_label: String,
    pub title: String,
    pub deleted_at: String,
    pub deleted_by: String,
}

#[derive(Template)]
#[template(path = "recycle/bin.html")]
struct BinPage {
    shell: Shell,
    objects: Vec<(String, String)>,
    object: String,
    q: String,
    rows: Vec<BinRow>,
    next: Option<String>,
    is_admin: bool,
    retention: u32,
    default_retention: u32,
    notice: Option<(bool, String)>,
    failures: Vec<String>,
}

#[derive(Deserialize, Default)]
pub struct BinParams {
    #[serde(default)]
    object: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
}

async fn page(
    st: &AppState,
    u: &UserCtx,
    p: &BinParams,
    notice: Option<(bool, String)>,
    failures: Vec<String>,
) -> WebResult<BinPage> {
    let lang = u.ctx.lang.code();
    let objects: Vec<(String, String)> = st
        .app
        .bin_objects(&u.actor)
        .await?
        .iter()
        .map(|o| (o.api_name.clone(), o.plural.get(lang).to_string()))
        .collect();
    let object = objects.iter().find(|o| o.0 == p.object).map(|o| o.0.clone()).unwrap_or_default();
    let bq = BinQuery {
        object: (!object.is_empty()).then(|| object.clone()),
        q: Some(p.q.clone()),
        cursor: Some(p.cursor.clone()),
        limit: 50,
    };
    let bin = st.app.recycle_bin(&u.actor, &bq).await?;
    let users: Vec<Uuid> = bin.items.iter().filter_map(|i| i.deleted_by).collect();
    let names = st.app.user_names(&users).await.unwrap_or_default();
    let title = st.i18n.get(u.ctx.lang, "bin-title", &[]);
    let shell = Shell::new(st, &u.ctx, &u.session, &u.actor, title.clone()).await.crumb(title, None);
    let untitled = shell.t("bin-untitled");
    let system = shell.t("timeline-system");
    let rows = bin
        .items
        .iter()
        .map(|i| BinRow {
            key: format!("{}:{}", i.object.api_name, i.record.id),
            object_label: i.object.label.get(lang).to_string(),
            title: if i.title.is_empty() { untitled.clone() } else { i.title.clone() },
            deleted_at: shell.time(&i.deleted_at),
            deleted_by: i.deleted_by.and_then(|b| names.get(&b).cloned()).unwrap_or_else(|| system.clone()),
        })
        .collect();
    let next = bin.next.map(|c| format!("/recycle-bin?object={}&q={}&cursor={}", enc(&object), enc(&p.q), enc(&c)));
    Ok(BinPage {
        shell,
        objects,
        object,
        q: p.q.clone(),
        rows,
        next,
        is_admin: u.actor.is_admin(),
        retention: st.app.recycle_retention().await?,
        default_retention: DEFAULT_RETENTION_DAYS,
        notice,
        failures,
    })
}

/// `GET /recycle-bin?object=…&q=…&cursor=…`
pub async fn bin(State(st): State<AppState>, u: UserCtx, Query(p): Query<BinParams>) -> WebResult {
    render(&page(&st, &u, &p, None, Vec::new()).await?)
}

/// The ticked `items` (`<object>:<id>`) of a bin form, and the filter to come back to.
fn parse_form(pairs: &[(String, String)]) -> Result<(Vec<(String, Uuid)>, BinParams), AppError> {
    let mut items = Vec::new();
    let mut p = BinParams::default();
    for (k, v) in pairs {
        match k.as_str() {
            "items" => {
                let (o, id) = v.split_once(':').ok_or_else(|| AppError::invalid("recycle.invalid_selection"))?;
                let id = id.parse().map_err(|_| AppError::invalid("recycle.invalid_selection"))?;
                items.push((o.to_string(), id));
            }
            "object" => p.object = v.clone(),
            "q" => p.q = v.clone(),
            _ => {}
        }
    }
    if items.is_empty() {
        return Err(AppError::invalid("recycle.nothing_selected"));
    }
    Ok((items, p))
}

/// The notice and the per-record failures of a restore or purge.
fn outcome(st: &AppState, u: &UserCtx, results: &[ItemResult], ok_key: &str) -> (Option<(bool, String)>, Vec<String>) {
    let done = results.iter().filter(|r| r.error.is_none()).count();
    let mut failures = Vec::new();
    for r in results.iter().filter(|r| r.error.is_some()) {
        let msg = r.error.as_ref().map(|e| st.i18n.error_of(u.ctx.lang, e)).unwrap_or_default();
        let what = if r.title.is_empty() { st.i18n.get(u.ctx.lang, "bin-untitled", &[]) } else { r.title.clone() };
        failures.push(format!("{what}: {msg}"));
    }
    let mut notice = st.i18n.get(u.ctx.lang, ok_key, &[("count", &done.to_string())]);
    if !failures.is_empty() {
        let fail_key = if ok_key == "bin-purged" { "bin-purge-failed" } else { "bin-restore-failed" };
        notice.push(' ');
        notice.push_str(&st.i18n.get(u.ctx.lang, fail_key, &[("failed", &failures.len().to_string())]));
    }
    (Some((failures.is_empty(), notice)), failures)
}

/// The bin page with the error's message, answered with the error's status.
async fn error_page(st: &AppState, u: &UserCtx, p: &BinParams, e: &AppError) -> WebResult {
    let msg = st.i18n.error_of(u.ctx.lang, e);
    let mut r = render(&page(st, u, p, Some((false, msg)), Vec::new()).await?)?;
    *r.status_mut() = crate::error::status_of(e);
    Ok(r.into_response())
}

async fn act(st: AppState, u: UserCtx, pairs: Vec<(String, String)>, purge: bool) -> WebResult {
    let (items, p) = match parse_form(&pairs) {
        Ok(x) => x,
        Err(e) => return error_page(&st, &u, &parse_form_params(&pairs), &e).await,
    };
    let results =
        if purge { st.app.purge_many(&u.actor, &items).await? } else { st.app.restore_many(&u.actor, &items).await? };
    let key = if purge { "bin-purged" } else { "bin-restored" };
    let (notice, failures) = outcome(&st, &u, &results, key);
    render(&page(&st, &u, &p, notice, failures).await?)
}

fn parse_form_params(pairs: &[(String, String)]) -> BinParams {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    BinParams { object: get("object"), q: get("q"), cursor: String::new() }
}

/// `POST /recycle-bin/restore` — `items=<object>:<id>` for each ticked record.
pub async fn restore(
    State(st): State<AppState>,
    u: UserCtx,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    act(st, u, pairs, false).await
}

/// `POST /recycle-bin/purge` — administrators only.
pub async fn purge(
    State(st): State<AppState>,
    u: UserCtx,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    act(st, u, pairs, true).await
}

#[derive(Deserialize)]
pub struct RetentionForm {
    #[serde(default)]
    days: String,
}

/// `POST /recycle-bin/retention` — how many days deleted records are kept (0: until purged).
pub async fn retention(State(st): State<AppState>, u: UserCtx, axum::Form(f): axum::Form<RetentionForm>) -> WebResult {
    let res = match f.days.trim().parse::<u32>() {
        Ok(d) => st.app.set_recycle_retention(&u.actor, d).await,
        Err(_) => Err(AppError::field("days", "recycle.invalid_retention")),
    };
    let notice = match res {
        Ok(()) => (true, st.i18n.get(u.ctx.lang, "flash-saved", &[])),
        Err(e) if e.kind == kehu_core::ErrorKind::Forbidden => return Err(e.into()),
        Err(e) => return error_page(&st, &u, &BinParams::default(), &e).await,
    };
    render(&page(&st, &u, &BinParams::default(), Some(notice), Vec::new()).await?)
}
