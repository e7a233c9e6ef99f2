//! What the list page posts: bulk actions (inline with a toast, or a job with a progress bar
//! that htmx polls), CSV export, and saving, updating and deleting views.

use super::{pairs, value_widget, ListState, ValueInput};
use crate::ctx::{redirect_for, UserCtx};
use crate::error::WebResult;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use kehu_app::bulk::{BulkAction, BulkCounts, BulkOutcome, BulkRequest, Selection};
use kehu_app::export::{ExportFormat, ExportRequest};
use kehu_app::jobs::JobView;
use kehu_app::views::ViewInput;
use kehu_core::{AppError, Uuid};
use serde_json::Value as Json;

pub(super) fn form_get<'a>(pairs: &'a [(String, String)], k: &str) -> &'a str {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// The list state a form carries in its `state` field.
fn carried_state(pairs: &[(String, String)]) -> ListState {
    ListState::parse(&super::pairs(Some(form_get(pairs, "state"))))
}

#[derive(Template)]
#[template(path = "lists/job.html")]
struct JobPartial {
    job: Option<JobView>,
    message: String,
    kind: &'static str,
}

fn counts_message(st: &AppState, u: &UserCtx, c: &BulkCounts) -> String {
    st.i18n.get(
        u.ctx.lang,
        "lists-bulk-done",
        &[("done", &c.done.to_string()), ("skipped", &c.skipped.to_string()), ("failed", &c.failed.to_string())],
    )
}

fn reload(mut r: axum::response::Response) -> axum::response::Response {
    r.headers_mut().insert("hx-trigger", HeaderValue::from_static("kehu-reload"));
    r
}

/// `POST /o/{object}/bulk` — `action` with its value, on the checked `ids` or (`all=on`) on
/// every record matching the carried list state.
pub async fn bulk(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let s = carried_state(&pairs);
    let field = form_get(&pairs, "field").to_string();
    let action = match form_get(&pairs, "action") {
        "assign_owner" => BulkAction::AssignOwner {
            owner: form_get(&pairs, "owner").parse::<Uuid>().map_err(|_| AppError::field("owner", "field.required"))?,
        },
        "set_field" => {
            let raw = form_get(&pairs, "value");
            let value = match obj.field(&field).map(|f| f.ftype) {
                _ if raw.trim().is_empty() => Json::Null,
                Some(kehu_core::meta::FieldType::Boolean) => Json::Bool(raw == "true"),
                // Tags are typed as text: the engine splits them as everywhere else.
                Some(kehu_core::meta::FieldType::MultiSelect) => Json::Array(vec![Json::String(raw.to_string())]),
                _ => Json::String(raw.to_string()),
            };
            BulkAction::SetField { field, value }
        }
        "add_tag" => BulkAction::AddTag { field: super::tags_field(&obj).into(), tag: form_get(&pairs, "tag").into() },
        "remove_tag" => {
            BulkAction::RemoveTag { field: super::tags_field(&obj).into(), tag: form_get(&pairs, "tag").into() }
        }
        "delete" => BulkAction::Delete,
        _ => return Err(AppError::invalid("bulk.unknown_action").into()),
    };
    let all = form_get(&pairs, "all") == "on";
    let selection = if all && s.q.trim().is_empty() {
        Selection::Filter(s.filter(&obj))
    } else if all {
        let hits = st.app.search(&u.actor, &s.q, Some(&[object.as_str()]), 100).await?;
        Selection::Ids(hits.into_iter().map(|h| h.id).collect())
    } else {
        let ids: Vec<Uuid> = pairs.iter().filter(|(k, _)| k == "ids").filter_map(|(_, v)| v.parse().ok()).collect();
        Selection::Ids(ids)
    };
    let outcome = st.app.bulk(&u.actor, &BulkRequest { object: object.clone(), action, selection }).await?;
    if !u.ctx.htmx {
        return Ok(redirect_for(&u.ctx, &s.href(&object)));
    }
    match outcome {
        BulkOutcome::Done(c) => {
            let message = counts_message(&st, &u, &c);
            Ok(reload(render(&JobPartial { job: None, message, kind: "ok" })?))
        }
        BulkOutcome::Queued(id) => {
            let job = st.app.job(&u.actor, id).await?;
            let message = st.i18n.get(u.ctx.lang, "lists-job-running", &[("total", &job.total.to_string())]);
            render(&JobPartial { job: Some(job), message, kind: "job" })
        }
    }
}

/// `GET /jobs/{id}` — a job's progress (htmx polls it until it is finished).
pub async fn job(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let job = st.app.job(&u.actor, id).await?;
    if job.finished() {
        let (message, kind) = match &job.error {
            Some(code) => (st.i18n.error(u.ctx.lang, code), "error"),
            None => (counts_message(&st, &u, &job.counts), "ok"),
        };
        return Ok(reload(render(&JobPartial { job: None, message, kind })?));
    }
    let message = st.i18n.get(u.ctx.lang, "lists-job-running", &[("total", &job.total.to_string())]);
    render(&JobPartial { job: Some(job), message, kind: "job" })
}

/// `GET /o/{object}/export?<list state>[&ids=…][&reveal=1][&format=xlsx]` — the list as CSV or XLSX.
pub async fn export(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let p = pairs(raw.as_deref());
    let (s, _) = super::resolve_state(&st, &u.actor, &obj, ListState::parse(&p)).await?;
    let ids: Vec<Uuid> = p.iter().filter(|(k, _)| k == "ids").filter_map(|(_, v)| v.parse().ok()).collect();
    let ids = if !ids.is_empty() {
        Some(ids)
    } else if !s.q.trim().is_empty() {
        Some(st.app.search(&u.actor, &s.q, Some(&[object.as_str()]), 100).await?.into_iter().map(|h| h.id).collect())
    } else {
        None
    };
    let req = ExportRequest {
        object: object.clone(),
        columns: s.cols.clone(),
        filter: s.filter(&obj),
        sort: (!s.sort.is_empty()).then(|| s.sort.clone()),
        ids,
        reveal: form_get(&p, "reveal") == "1",
        lang: u.ctx.lang.code().to_string(),
        tz: u.session.user.time_zone.parse().ok(),
    };
    let format = ExportFormat::parse(form_get(&p, "format"));
    let name = format!("{object}-{}.{}", chrono::Utc::now().format("%Y%m%d-%H%M"), format.extension());
    let mut r = if format == ExportFormat::Csv && req.ids.is_none() {
        // A whole list as CSV: streamed page by page, whatever its size.
        let rx = st.app.export_csv_stream(&u.actor, req).await?;
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let item = rx.recv().await?;
            Some((item.map(axum::body::Bytes::from).map_err(std::io::Error::other), rx))
        });
        axum::body::Body::from_stream(stream).into_response()
    } else {
        st.app.export(&u.actor, &req, format).await?.0.into_response()
    };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

fn view_input(obj: &kehu_core::meta::ObjectDef, pairs: &[(String, String)]) -> ViewInput {
    let s = carried_state(pairs);
    // A board keeps the field it shows (the chosen one or the object's default).
    let layout = (s.layout == "board").then(|| {
        // Readability is checked with the rest of the view.
        let field = super::board::board_field(obj, &s.bf, |_| true).map(|f| f.api_name.clone()).unwrap_or_default();
        kehu_app::views::Layout {
            kind: "board".into(),
            field,
            sum: Some(s.bs.clone()).filter(|x| !x.is_empty()),
            cards: s.bc.iter().take(3).cloned().collect(),
        }
    });
    ViewInput {
        name: form_get(pairs, "name").to_string(),
        team_id: form_get(pairs, "team").parse().ok(),
        columns: s.cols.clone(),
        filter: s.filter(obj),
        sort: s.sort.clone(),
        layout,
    }
}

/// `POST /o/{object}/views` — save the current state as a new view.
pub async fn save_view(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let v = st.app.create_view(&u.actor, &object, &view_input(&obj, &pairs)).await?;
    Ok(crate::http::auth::redirect_flash(&u.ctx, &format!("/o/{object}?view={}", v.id), "flash-lists-view-saved"))
}

/// `POST /o/{object}/views/{id}` — replace a view's columns, filter and sort (and name).
pub async fn update_view(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id)): Path<(String, Uuid)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let cur = st.app.view_by_id(&u.actor, &object, id).await?;
    let mut input = view_input(&obj, &pairs);
    if input.name.trim().is_empty() {
        input.name = cur.name;
    }
    if form_get(&pairs, "team").is_empty() && !pairs.iter().any(|(k, _)| k == "team") {
        input.team_id = cur.team_id;
    }
    st.app.update_view(&u.actor, &object, id, &input).await?;
    Ok(crate::http::auth::redirect_flash(&u.ctx, &format!("/o/{object}?view={id}"), "flash-lists-view-saved"))
}

/// `POST /o/{object}/views/{id}/delete`
pub async fn delete_view(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id)): Path<(String, Uuid)>,
) -> WebResult {
    st.app.delete_view(&u.actor, &object, id).await?;
    Ok(crate::http::auth::redirect_flash(&u.ctx, &format!("/o/{object}"), "flash-lists-view-deleted"))
}

#[derive(Template)]
#[template(path = "lists/value_input.html")]
struct ValuePartial {
    shell: Shell,
    input: ValueInput,
}

/// `GET /o/{object}/bulk-value?field=` — the value widget for "set field" (htmx).
pub async fn value_input(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let p = pairs(raw.as_deref());
    let f = obj.field(form_get(&p, "field")).filter(|f| u.actor.can_write_field(&obj, f)).cloned();
    let input = match f {
        Some(f) => value_widget(&st, &u, &obj, &f, "value", "").await,
        None => ValueInput { name: "value".into(), kind: "text", value: String::new(), options: vec![], picker: None },
    };
    render(&ValuePartial { shell: Shell::bare(&st, &u.ctx, String::new()), input })
}
