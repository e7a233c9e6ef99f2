//! A record's field history page: every change of every field the user may read (who, when,
//! old → new), filtered by field, paged by "older", with "restore this value" on each change
//! the user may write — an ordinary update carrying the version the page was read at.

use super::timeline::plain_value;
use super::tz;
use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::enc;
use crate::http::records::{title_of, Display};
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use kehu_core::meta::FieldType;
use kehu_core::{ErrorKind, Uuid};
use serde::Deserialize;

pub struct ChangeRow {
    pub id: Uuid,
    pub field: String,
    pub old: String,
    pub new: String,
    pub who: String,
    pub at: String,
    pub revertible: bool,
}

#[derive(Template)]
#[template(path = "records/history.html")]
struct HistoryPage {
    shell: Shell,
    object: String,
    id: Uuid,
    version: i64,
    title: String,
    fields: Vec<(String, String)>,
    field: String,
    rows: Vec<ChangeRow>,
    older: Option<String>,
    notice: Option<(bool, String)>,
}

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    #[serde(default)]
    field: String,
    #[serde(default)]
    before: String,
}

async fn page(
    st: &AppState,
    u: &UserCtx,
    object: &str,
    id: Uuid,
    hq: &HistoryQuery,
    notice: Option<(bool, String)>,
) -> WebResult<HistoryPage> {
    let schema = st.app.schema().await?;
    let obj = schema.object(object)?.clone();
    let lang = u.ctx.lang.code();
    let field = obj.field(&hq.field).map(|f| f.api_name.clone()).unwrap_or_default();
    let hp = st.app.field_history(&u.actor, object, id, Some(field.as_str()), Some(hq.before.as_str()), 50).await?;
    let r = &hp.record;
    // Names of the people who changed things, of users and records the values point at.
    let mut users: Vec<Uuid> = hp.changes.iter().filter_map(|c| c.by).collect();
    let mut targets: Vec<(String, Uuid)> = Vec::new();
    for c in &hp.changes {
        for v in [&c.old, &c.new] {
            let Some(ref_id) = v.as_str().and_then(|s| s.parse::<Uuid>().ok()) else { continue };
            match c.field.ftype {
                FieldType::User => users.push(ref_id),
                FieldType::Relation => {
                    if let Some(t) = c.field.options.target.and_then(|t| schema.object_by_id(t)) {
                        targets.push((t.api_name.clone(), ref_id));
                    }
                }
                _ => {}
            }
        }
    }
    let mut names = st.app.user_names(&users).await.unwrap_or_default();
    for (t, rid) in targets {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(rid) {
            if let Ok(rec) = st.app.get(&u.actor, &t, rid).await {
                slot.insert(title_of(st, &t, &rec).await);
            }
        }
    }
    let title = title_of(st, object, r).await;
    let plural = obj.plural.get(lang).to_string();
    let heading = st.i18n.get(u.ctx.lang, "history-title", &[]);
    let shell = Shell::new(st, &u.ctx, &u.session, &u.actor, format!("{heading} · {title}"))
        .await
        .crumb(plural, Some(&format!("/o/{object}")))
        .crumb(title.clone(), Some(&format!("/o/{object}/{id}")))
        .crumb(heading, None);
    let d = Display { lang, names: &names, tz: tz(u) };
    let system = shell.t("timeline-system");
    let rows = hp
        .changes
        .iter()
        .map(|c| ChangeRow {
            id: c.id,
            field: c.field.label.get(lang).to_string(),
            old: plain_value(&d, &c.field, &c.old),
            new: plain_value(&d, &c.field, &c.new),
            who: c.by.and_then(|b| names.get(&b).cloned()).unwrap_or_else(|| system.clone()),
            at: shell.time(&c.at),
            // Restoring the value the field holds now would change nothing.
            revertible: c.revertible && c.old != *r.get(&c.field.api_name),
        })
        .collect();
    let fields = obj
        .active()
        .filter(|f| !f.builtin && u.actor.can_read_field(&obj, f))
        .map(|f| (f.api_name.clone(), f.label.get(lang).to_string()))
        .collect();
    let older = hp.before.map(|b| format!("/o/{object}/{id}/history?field={}&before={}", enc(&field), enc(&b)));
    Ok(HistoryPage {
        shell,
        object: object.to_string(),
        id,
        version: r.version,
        title,
        fields,
        field,
        rows,
        older,
        notice,
    })
}

/// `GET /o/{object}/{id}/history?field=…&before=…`
pub async fn history(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id)): Path<(String, Uuid)>,
    Query(hq): Query<HistoryQuery>,
) -> WebResult {
    render(&page(&st, &u, &object, id, &hq, None).await?)
}

#[derive(Deserialize)]
pub struct RevertForm {
    #[serde(rename = "_version", default)]
    version: i64,
    #[serde(default)]
    field: String,
}

/// `POST /o/{object}/{id}/history/{change}/revert` — set the field back to the value before
/// that change. The page comes back with what happened (a stale version changes nothing).
pub async fn revert(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id, change)): Path<(String, Uuid, Uuid)>,
    axum::Form(f): axum::Form<RevertForm>,
) -> WebResult {
    let hq = HistoryQuery { field: f.field, before: String::new() };
    let notice = match st.app.revert_change(&u.actor, &object, id, change, f.version).await {
        Ok(_) => (true, st.i18n.get(u.ctx.lang, "history-reverted", &[])),
        Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::Invalid) => {
            let msg = st.i18n.error_of(u.ctx.lang, &e);
            let mut resp = render(&page(&st, &u, &object, id, &hq, Some((false, msg))).await?)?;
            *resp.status_mut() = crate::error::status_of(&e);
            return Ok(resp.into_response());
        }
        Err(e) => return Err(e.into()),
    };
    render(&page(&st, &u, &object, id, &hq, Some(notice)).await?)
}
