//! The record page of every object: a header with the key facts, every field editable in
//! place (with the record's version, so a concurrent change is refused, not overwritten),
//! related lists, the activity composer (note, call, meeting, task, e-mail log) and the
//! timeline (`timeline.rs`). Also the task tick-box used on the home page (`timeline.rs`) and
//! the notification pages (`notifications.rs`).

mod history;
mod notifications;
mod timeline;

pub use history::{history, revert};
pub use notifications::{notifications, open_notification, read_all};
use timeline::{composer, timeline_partial, Composer, TimelinePartial};
pub use timeline::{log_activity, task_done, task_item, task_link, timeline, Item};

use crate::ctx::{redirect_for, UserCtx};
use crate::error::WebResult;
use crate::http::records::{input_for, names, title_of, to_input, Display, Input};
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use kehu_app::activity::{self, Entry};
use kehu_app::{Count, ListRequest, RecordView};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef, Schema};
use kehu_core::perm::{Action, Actor};
use kehu_core::{AppError, Uuid};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

/// A coloured label: a select option, a tag.
pub struct Chip {
    pub label: String,
    pub color: String,
}

/// One row of the details card.
pub struct FieldRow {
    pub api: String,
    pub label: String,
    pub value: String,
    pub chips: Vec<Chip>,
    pub href: Option<String>,
    pub rich: bool,
    pub masked: bool,
    pub editable: bool,
}

/// Chips for select, multi-select and tag values.
pub fn chips(f: &FieldDef, v: &Json, lang: &str) -> Vec<Chip> {
    let one = |k: &str| match f.choice(k) {
        Some(c) => Chip { label: c.label.get(lang).to_string(), color: c.color.clone() },
        None => Chip { label: k.to_string(), color: "gray".into() },
    };
    match (f.ftype, v) {
        (FieldType::Select, Json::String(k)) => vec![one(k)],
        (FieldType::MultiSelect | FieldType::Tags, Json::Array(a)) => {
            a.iter().filter_map(Json::as_str).map(one).collect()
        }
        _ => Vec::new(),
    }
}

/// Where a relation or URL value links to.
fn link(schema: &Schema, f: &FieldDef, v: &Json) -> Option<String> {
    let s = v.as_str()?;
    match f.ftype {
        FieldType::Relation => {
            let target = schema.object_by_id(f.options.target?)?;
            let id: Uuid = s.parse().ok()?;
            Some(format!("/o/{}/{id}", target.api_name))
        }
        FieldType::Url if s.starts_with("https://") || s.starts_with("http://") => Some(s.to_string()),
        _ => None,
    }
}

/// Text of a value for the page: rich text is cleaned again before it is shown unescaped.
fn shown(d: &Display, f: &FieldDef, v: &Json) -> String {
    if f.options.rich {
        return v.as_str().and_then(kehu_app::rich::sanitize).unwrap_or_default();
    }
    d.value(f, v)
}

async fn field_rows(
    st: &AppState,
    u: &UserCtx,
    actor: &Actor,
    schema: &Schema,
    obj: &ObjectDef,
    r: &RecordView,
) -> Vec<FieldRow> {
    let lang = u.ctx.lang.code();
    // Related records are only named: read them as the request's own (masked) actor, so that
    // revealing this record reveals — and audits — nothing of theirs.
    let names = names(st, &u.actor, obj, std::slice::from_ref(r)).await;
    let d = Display { lang, names: &names, tz: tz(u) };
    let can_edit = actor.check(obj, Action::Update).is_ok();
    // What a user typed first, then the owner, then the system's stamps.
    let mut fields: Vec<&Arc<FieldDef>> = obj.active().filter(|f| r.fields.contains_key(&f.api_name)).collect();
    fields.sort_by_key(|f| (f.builtin, f.api_name != "owner"));
    fields
        .into_iter()
        .map(|f| {
            let v = r.get(&f.api_name);
            FieldRow {
                api: f.api_name.clone(),
                label: f.label.get(lang).to_string(),
                value: shown(&d, f, v),
                chips: chips(f, v, lang),
                href: link(schema, f, v),
                rich: f.options.rich,
                masked: matches!(f.ftype, FieldType::Phone | FieldType::Email) && !actor.sees_unmasked(),
                editable: can_edit && !f.readonly && actor.can_write_field(obj, f),
            }
        })
        .collect()
}

fn tz(u: &UserCtx) -> chrono_tz::Tz {
    u.session.user.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
}

/// A related list: records of another object whose relation field points here.
pub struct Related {
    pub label: String,
    pub object: String,
    pub field: String,
    pub total: String,
    pub rows: Vec<(Uuid, String, String)>,
    pub can_create: bool,
}

#[derive(Template)]
#[template(path = "records/show.html")]
struct ShowPage {
    shell: Shell,
    object: String,
    id: Uuid,
    version: i64,
    title: String,
    label: String,
    initial: String,
    header: Vec<Chip>,
    owner: String,
    rows: Vec<FieldRow>,
    can_reveal: bool,
    revealed: bool,
    can_delete: bool,
    related: Vec<Related>,
    composer: Option<Composer>,
    timeline: TimelinePartial,
}

#[derive(Template)]
#[template(path = "records/fields_partial.html")]
struct FieldsPartial {
    shell: Shell,
    object: String,
    id: Uuid,
    version: i64,
    rows: Vec<FieldRow>,
    can_reveal: bool,
    revealed: bool,
}

#[derive(Template)]
#[template(path = "records/edit_field.html")]
struct EditField {
    shell: Shell,
    object: String,
    id: Uuid,
    version: i64,
    i: Input,
}

/// Related lists of a record (not activities: they make the timeline).
async fn related(st: &AppState, u: &UserCtx, schema: &Schema, obj: &ObjectDef, id: Uuid) -> Vec<Related> {
    let lang = u.ctx.lang.code();
    let mut out = Vec::new();
    for (o, f) in schema.reverse_relations(obj.id) {
        if o.api_name == activity::OBJECT || u.actor.check(o, Action::Read).is_err() || !u.actor.can_read_field(o, f) {
            continue;
        }
        let req = ListRequest {
            filter: Some(json!({"field": f.api_name, "op": "eq", "value": id})),
            sort: Some(json!("-updated_at")),
            limit: Some(10),
            count: Count::Capped,
            ..Default::default()
        };
        let Ok(page) = st.app.list(&u.actor, &o.api_name, &req).await else { continue };
        let tf = o.title_field().cloned();
        let detail = o
            .data_fields()
            .find(|g| {
                Some(g.id) != tf.as_ref().map(|t| t.id) && g.id != f.id && g.ftype.is_textual() && !g.options.rich
            })
            .cloned();
        let rows = page
            .records
            .iter()
            .map(|r| {
                let title = tf.as_ref().and_then(|t| r.get(&t.api_name).as_str()).unwrap_or("—").to_string();
                let det = detail.as_ref().and_then(|g| r.get(&g.api_name).as_str()).unwrap_or("").to_string();
                (r.id, title, det)
            })
            .collect();
        let total = page.total_text();
        let label = if schema.reverse_relations(obj.id).iter().filter(|(x, _)| x.id == o.id).count() > 1 {
            format!("{} · {}", o.plural.get(lang), f.label.get(lang))
        } else {
            o.plural.get(lang).to_string()
        };
        out.push(Related {
            label,
            object: o.api_name.clone(),
            field: f.api_name.clone(),
            total,
            rows,
            can_create: u.actor.check(o, Action::Create).is_ok(),
        });
    }
    out
}

/// `GET /o/{object}/{id}`
pub async fn show(State(st): State<AppState>, u: UserCtx, Path((object, id)): Path<(String, Uuid)>) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let r = st.app.get(&u.actor, &object, id).await?;
    let lang = u.ctx.lang.code();
    if let Some(user) = u.actor.user_id {
        // "Recently viewed" is noted and written by a background pump, off the page's path.
        st.app.note_view(user, obj.id, id);
    }
    let rows = field_rows(&st, &u, &u.actor, &schema, &obj, &r).await;
    let title = title_of(&st, &object, &r).await;
    let plural = obj.plural.get(lang).to_string();
    let shell = Shell::new(&st, &u.ctx, &u.session, &u.actor, title.clone())
        .await
        .crumb(plural, Some(&format!("/o/{object}")))
        .crumb(title.clone(), None);
    let can_reveal = u.actor.can_reveal() && rows.iter().any(|r| r.masked && !r.value.is_empty());
    let mut header = Vec::new();
    // The object's header chips (its UI settings), readable ones only.
    for api in &obj.ui.header_chips {
        if let Some(f) = obj.field(api).filter(|f| u.actor.can_read_field(&obj, f)) {
            header.extend(chips(f, r.get(api), lang));
        }
    }
    let owner = rows.iter().find(|x| x.api == "owner").map(|x| x.value.clone()).unwrap_or_default();
    let timeline = timeline_partial(&st, &u, &schema, &object, id, "", None).await?;
    render(&ShowPage {
        related: related(&st, &u, &schema, &obj, id).await,
        composer: composer(&st, &u, &schema, &obj).await,
        shell,
        object,
        id,
        version: r.version,
        initial: title.chars().next().map(|c| c.to_uppercase().to_string()).unwrap_or_default(),
        title,
        label: obj.label.get(lang).to_string(),
        header,
        owner,
        rows,
        can_reveal,
        revealed: false,
        can_delete: u.actor.check(&obj, Action::Delete).is_ok(),
        timeline,
    })
}

async fn fields_response(
    st: &AppState,
    u: &UserCtx,
    actor: &Actor,
    object: String,
    r: &RecordView,
    revealed: bool,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let rows = field_rows(st, u, actor, &schema, &obj, r).await;
    let can_reveal = !revealed && u.actor.can_reveal() && rows.iter().any(|x| x.masked && !x.value.is_empty());
    let shell = Shell::bare(st, &u.ctx, String::new());
    render(&FieldsPartial { shell, object, id: r.id, version: r.version, rows, can_reveal, revealed })
}

/// `POST /o/{object}/{id}/reveal` — the field list with phone numbers and e-mails unmasked;
/// refused without the permission, audited with it.
pub async fn reveal(State(st): State<AppState>, u: UserCtx, Path((object, id)): Path<(String, Uuid)>) -> WebResult {
    let actor = u.actor.revealing()?;
    let r = st.app.get(&actor, &object, id).await?;
    if !u.ctx.htmx {
        return Ok(redirect_for(&u.ctx, &format!("/o/{object}/{id}")));
    }
    fields_response(&st, &u, &actor, object, &r, true).await
}

/// `GET /o/{object}/{id}/fields` — the details card (after cancelling an edit).
pub async fn fields(State(st): State<AppState>, u: UserCtx, Path((object, id)): Path<(String, Uuid)>) -> WebResult {
    let r = st.app.get(&u.actor, &object, id).await?;
    fields_response(&st, &u, &u.actor, object, &r, false).await
}

/// The current value(s) of a field as form values.
fn form_values(f: &FieldDef, v: &Json, tz: chrono_tz::Tz) -> Vec<String> {
    match (f.ftype, v) {
        (_, Json::Null) => Vec::new(),
        (_, Json::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        (FieldType::Boolean, Json::Bool(b)) => vec![b.to_string()],
        (FieldType::Currency, Json::Object(m)) => {
            vec![m.get("amount").and_then(Json::as_str).unwrap_or("").to_string()]
        }
        (FieldType::DateTime, Json::String(s)) => vec![chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_default()],
        (FieldType::Tags, _) => Vec::new(),
        (_, Json::String(s)) => vec![s.clone()],
        (_, other) => vec![other.to_string()],
    }
}

async fn edit_form(
    st: &AppState,
    u: &UserCtx,
    object: &str,
    r: &RecordView,
    f: &FieldDef,
    values: Vec<String>,
    error: String,
) -> WebResult {
    let schema = st.app.schema().await?;
    let mut i = input_for(st, u, Some(&schema), f, values.clone(), error).await;
    if let Some(p) = i.picker.as_mut() {
        p.id = format!("f-in-{}", f.api_name);
        p.autofocus = true;
    }
    if f.ftype == FieldType::Tags {
        i.value = r
            .get(&f.api_name)
            .as_array()
            .map(|a| a.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        if !values.is_empty() {
            i.value = values.join(", ");
        }
    }
    if f.api_name == "owner" {
        i.kind = "select";
    }
    let shell = Shell::bare(st, &u.ctx, String::new());
    render(&EditField { shell, object: object.to_string(), id: r.id, version: r.version, i })
}

fn editable_field(actor: &Actor, obj: &ObjectDef, api: &str) -> Result<Arc<FieldDef>, AppError> {
    let f = obj.field(api).cloned().ok_or_else(|| AppError::not_found("field.unknown"))?;
    actor.check(obj, Action::Update)?;
    if f.readonly || !actor.can_write_field(obj, &f) {
        return Err(AppError::forbidden("permission.field_denied"));
    }
    Ok(f)
}

/// `GET /o/{object}/{id}/field/{field}` — the in-place editor of one field.
pub async fn edit(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id, field)): Path<(String, Uuid, String)>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let f = editable_field(&u.actor, &obj, &field)?;
    let r = st.app.get(&u.actor, &object, id).await?;
    let vals = form_values(&f, r.get(&f.api_name), tz(&u));
    edit_form(&st, &u, &object, &r, &f, vals, String::new()).await
}

/// `POST /o/{object}/{id}/field/{field}` — save one field; answers with the details card, or
/// with the editor again and the error under the input.
pub async fn save(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id, field)): Path<(String, Uuid, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let f = editable_field(&u.actor, &obj, &field)?;
    let version: i64 = pairs
        .iter()
        .find(|(k, _)| k == "_version")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| AppError::invalid("record.version_required"))?;
    let mine: Vec<(String, String)> = pairs.iter().filter(|(k, _)| *k == f.api_name).cloned().collect();
    // Tags stay the text typed: the engine splits them (`kehu_core::value::split_list`), as it
    // does for the API and imports.
    let (mut input, grouped) = to_input(&obj, &mine);
    if !input.contains_key(&f.api_name) {
        input.insert(f.api_name.clone(), Json::Null);
    }
    if f.ftype == FieldType::DateTime {
        if let Some(Json::String(s)) = input.get(&f.api_name).cloned() {
            input.insert(f.api_name.clone(), json!(local_to_utc(&s, tz(&u))));
        }
    }
    match st.app.update(&u.actor, &object, id, version, &input).await {
        Ok(r) => {
            let mut resp = fields_response(&st, &u, &u.actor, object, &r, false).await?;
            resp.headers_mut()
                .insert(HeaderName::from_static("hx-retarget"), HeaderValue::from_static("#record-fields"));
            resp.headers_mut().insert(HeaderName::from_static("hx-reswap"), HeaderValue::from_static("outerHTML"));
            Ok(resp)
        }
        Err(e) if matches!(e.kind, kehu_core::ErrorKind::Invalid | kehu_core::ErrorKind::Conflict) => {
            let msg = e
                .fields
                .first()
                .map(|fe| st.i18n.error(u.ctx.lang, &fe.code))
                .unwrap_or_else(|| st.i18n.error(u.ctx.lang, &e.code));
            let r = st.app.get(&u.actor, &object, id).await?;
            let vals = grouped.get(&f.api_name).cloned().unwrap_or_default();
            let mut resp = edit_form(&st, &u, &object, &r, &f, vals, msg).await?;
            if e.kind == kehu_core::ErrorKind::Conflict {
                // Someone else changed the record: the editor now carries the new version.
                resp.headers_mut().insert(HeaderName::from_static("x-kehu-conflict"), HeaderValue::from_static("1"));
            }
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

/// A `datetime-local` value in the user's zone → RFC 3339 UTC (other text is passed on and
/// judged by the engine).
pub fn local_to_utc(s: &str, tz: chrono_tz::Tz) -> String {
    use chrono::TimeZone;
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .ok()
        .and_then(|n| tz.from_local_datetime(&n).earliest())
        .map(|d| d.with_timezone(&chrono::Utc).to_rfc3339())
        .unwrap_or_else(|| s.to_string())
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(rename = "_version")]
    version: i64,
}

/// `POST /o/{object}/{id}/delete` — to the recycle bin.
pub async fn delete(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id)): Path<(String, Uuid)>,
    axum::Form(f): axum::Form<DeleteForm>,
) -> WebResult {
    st.app.delete(&u.actor, &object, id, Some(f.version)).await?;
    Ok(crate::http::auth::redirect_flash(&u.ctx, &format!("/o/{object}"), "flash-deleted"))
}

/// Ask the page to show a toast once htmx has swapped the answer in.
pub fn toast_trigger(resp: &mut Response, message: &str) {
    // Header values are ASCII: everything else goes as JSON \u escapes.
    let mut v = String::new();
    for c in json!({"kehu:toast": {"kind": "ok", "message": message}}).to_string().chars() {
        if c.is_ascii() {
            v.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                v.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    if let Ok(h) = HeaderValue::from_str(&v) {
        resp.headers_mut().insert(HeaderName::from_static("hx-trigger"), h);
    }
}
