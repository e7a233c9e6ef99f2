//! The record page of every object: a header with the key facts, every field editable in
//! place (with the record's version, so a concurrent change is refused, not overwritten),
//! related lists, the activity composer (note, call, meeting, task, e-mail log) and the
//! timeline. Also the task tick-box used on the home page, and the notification pages.

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
    let names = names(st, actor, obj, std::slice::from_ref(r)).await;
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

/// One entry of the timeline, ready to show.
pub struct Item {
    pub id: String,
    pub kind: String,
    pub kind_label: String,
    pub color: String,
    pub who: String,
    pub at: String,
    pub subject: String,
    pub body: String,
    pub outcome: Option<Chip>,
    pub due: String,
    pub overdue: bool,
    pub done: bool,
    pub version: i64,
    pub change: Option<(String, String, String)>,
    pub can_edit: bool,
    /// The record a task belongs to (on the home page).
    pub link: Option<(String, String)>,
}

/// The kinds a timeline can be filtered by, with their labels.
fn kind_tabs(shell: &Shell, act: Option<&ObjectDef>, current: &str) -> Vec<(String, String, bool)> {
    let mut out = vec![(String::new(), shell.t("timeline-all"), current.is_empty())];
    if let Some(f) = act.and_then(|a| a.field("kind")) {
        for c in &f.options.choices {
            out.push((c.key.clone(), c.label.get(shell.lang_code()).to_string(), current == c.key));
        }
    }
    out.push((activity::CHANGES.into(), shell.t("timeline-changes"), current == activity::CHANGES));
    out
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

#[derive(Template)]
#[template(path = "records/timeline.html")]
pub struct TimelinePartial {
    shell: Shell,
    object: String,
    id: Uuid,
    kinds: Vec<(String, String, bool)>,
    items: Vec<Item>,
    more: Option<String>,
    append: bool,
}

/// The activity composer: one form per kind, with the users a note may mention.
pub struct Composer {
    pub kinds: Vec<(String, String)>,
    pub outcomes: Vec<(String, String)>,
    pub users: Vec<(String, String)>,
    pub users_json: String,
    pub me: String,
}

async fn composer(st: &AppState, u: &UserCtx, schema: &Schema, obj: &ObjectDef) -> Option<Composer> {
    let act = schema.object(activity::OBJECT).ok()?;
    if u.actor.check(act, Action::Create).is_err() || activity::links_to(schema, obj).is_empty() {
        return None;
    }
    let lang = u.ctx.lang.code();
    let choices = |api: &str| -> Vec<(String, String)> {
        act.field(api)
            .map(|f| f.options.choices.iter().map(|c| (c.key.clone(), c.label.get(lang).to_string())).collect())
            .unwrap_or_default()
    };
    let users: Vec<(String, String)> =
        st.app.user_choices().await.unwrap_or_default().into_iter().map(|(id, n)| (id.to_string(), n)).collect();
    let users_json = serde_json::to_string(&users.iter().map(|(_, n)| n).collect::<Vec<_>>()).unwrap_or_default();
    Some(Composer {
        kinds: choices("kind"),
        outcomes: choices("outcome"),
        users,
        users_json,
        me: u.session.user.id.to_string(),
    })
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
        let total = match (page.total, page.total_is_capped) {
            (Some(n), true) => format!("{n}+"),
            (Some(n), false) => n.to_string(),
            _ => String::new(),
        };
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

/// Build the timeline partial of a record.
async fn timeline_partial(
    st: &AppState,
    u: &UserCtx,
    schema: &Schema,
    object: &str,
    id: Uuid,
    kind: &str,
    before: Option<i64>,
) -> Result<TimelinePartial, AppError> {
    let kinds = activity::parse_kinds(kind)?;
    let tl = st.app.timeline(&u.actor, object, id, &kinds, before, 30).await?;
    let shell = Shell::bare(st, &u.ctx, String::new()).with_user(&u.session);
    let lang = u.ctx.lang.code();
    let act = schema.object(activity::OBJECT).ok().cloned();
    let obj = schema.object(object)?.clone();
    let mut users = Vec::new();
    let mut recs = Vec::new();
    for it in &tl.items {
        match &it.entry {
            Entry::Activity(r) => {
                recs.push(r.clone());
                for k in ["owner", "created_by"] {
                    if let Some(x) = r.get(k).as_str().and_then(|s| s.parse().ok()) {
                        users.push(x);
                    }
                }
            }
            Entry::Change { by, .. } | Entry::Created { by } => users.extend(*by),
        }
    }
    let mut nm = st.app.user_names(&users).await.unwrap_or_default();
    // Names of records a change points at (a relation changed).
    let changed_targets: Vec<(String, Uuid)> = tl
        .items
        .iter()
        .filter_map(|it| match &it.entry {
            Entry::Change { field, new, old, .. } if field.ftype == FieldType::Relation => {
                let t = schema.object_by_id(field.options.target?)?.api_name.clone();
                Some(
                    [old, new]
                        .into_iter()
                        .filter_map(move |v| Some((t.clone(), v.as_str()?.parse().ok()?)))
                        .collect::<Vec<_>>(),
                )
            }
            _ => None,
        })
        .flatten()
        .collect();
    for (t, rid) in changed_targets {
        if let Ok(r) = st.app.get(&u.actor, &t, rid).await {
            nm.insert(rid, title_of(st, &t, &r).await);
        }
    }
    let d = Display { lang, names: &nm, tz: tz(u) };
    let now = kehu_core::now_micros();
    let can_edit_act = act.as_ref().is_some_and(|a| u.actor.check(a, Action::Update).is_ok());
    let mut items = Vec::new();
    for it in &tl.items {
        let at = shell.time(&it.at);
        match &it.entry {
            Entry::Activity(r) => items.push(activity_item(&d, &nm, act.as_deref(), r, at, now, can_edit_act, lang)),
            Entry::Change { by, field, old, new } => items.push(Item {
                id: String::new(),
                kind: "change".into(),
                kind_label: shell.t("timeline-change"),
                color: "gray".into(),
                who: by.and_then(|b| nm.get(&b).cloned()).unwrap_or_else(|| shell.t("timeline-system")),
                at,
                subject: String::new(),
                body: String::new(),
                outcome: None,
                due: String::new(),
                overdue: false,
                done: false,
                version: 0,
                change: Some((
                    field.label.get(lang).to_string(),
                    plain_value(&d, field, old),
                    plain_value(&d, field, new),
                )),
                can_edit: false,
                link: None,
            }),
            Entry::Created { by } => items.push(Item {
                id: String::new(),
                kind: "created".into(),
                kind_label: shell.t1("timeline-created", "object", obj.label.get(lang)),
                color: "gray".into(),
                who: by.and_then(|b| nm.get(&b).cloned()).unwrap_or_else(|| shell.t("timeline-system")),
                at,
                subject: String::new(),
                body: String::new(),
                outcome: None,
                due: String::new(),
                overdue: false,
                done: false,
                version: 0,
                change: None,
                can_edit: false,
                link: None,
            }),
        }
    }
    let more = tl.before.map(|b| format!("/o/{object}/{id}/timeline?kind={kind}&before={b}"));
    Ok(TimelinePartial {
        kinds: kind_tabs(&shell, act.as_deref(), kind),
        shell,
        object: object.to_string(),
        id,
        items,
        more,
        append: before.is_some(),
    })
}

/// A changed value as text (rich text reduced to plain text, shortened).
fn plain_value(d: &Display, f: &FieldDef, v: &Json) -> String {
    let s = if f.options.rich { v.as_str().map(kehu_app::rich::plain).unwrap_or_default() } else { d.value(f, v) };
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// One activity as a timeline entry or a task row.
#[allow(clippy::too_many_arguments)]
pub fn activity_item(
    d: &Display,
    names: &HashMap<Uuid, String>,
    act: Option<&ObjectDef>,
    r: &RecordView,
    at: String,
    now: i64,
    can_edit: bool,
    lang: &str,
) -> Item {
    let kind = r.get("kind").as_str().unwrap_or("note").to_string();
    let kf = act.and_then(|a| a.field("kind"));
    let (kind_label, color) = kf
        .and_then(|f| f.choice(&kind))
        .map(|c| (c.label.get(lang).to_string(), c.color.clone()))
        .unwrap_or_else(|| (kind.clone(), "gray".into()));
    let who_id = r.get("created_by").as_str().or(r.get("owner").as_str()).and_then(|s| s.parse::<Uuid>().ok());
    let due_micros = activity::micros(r, "due_at");
    let done = r.get("done").as_bool().unwrap_or(false);
    let outcome =
        act.and_then(|a| a.field("outcome")).and_then(|f| chips(f, r.get("outcome"), lang).into_iter().next());
    Item {
        id: r.id.to_string(),
        kind: kind.clone(),
        kind_label,
        color,
        who: who_id.and_then(|w| names.get(&w).cloned()).unwrap_or_default(),
        at,
        subject: r.get("subject").as_str().unwrap_or("").to_string(),
        body: r.get("body").as_str().and_then(kehu_app::rich::sanitize).unwrap_or_default(),
        outcome,
        due: due_micros
            .map(|m| {
                chrono::DateTime::from_timestamp_micros(m)
                    .map(|t| t.with_timezone(&d.tz).format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default()
            })
            .unwrap_or_default(),
        overdue: kind == "task" && !done && due_micros.is_some_and(|m| m < now),
        done,
        version: r.version,
        change: None,
        can_edit,
        link: None,
    }
}

/// `GET /o/{object}/{id}`
pub async fn show(State(st): State<AppState>, u: UserCtx, Path((object, id)): Path<(String, Uuid)>) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let r = st.app.get(&u.actor, &object, id).await?;
    let lang = u.ctx.lang.code();
    if let Some(user) = u.actor.user_id {
        // "Recently viewed" is remembered after the answer, off the page's critical path.
        let app = st.app.clone();
        let oid = obj.id;
        tokio::spawn(async move {
            let _ = app.touch_recent(user, oid, id).await;
        });
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
    for api in ["lifecycle_stage", "kind", "tags"] {
        if let Some(f) = obj.field(api) {
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
    let (mut input, grouped) = to_input(&obj, &mine);
    if !input.contains_key(&f.api_name) {
        input.insert(f.api_name.clone(), Json::Null);
    }
    if f.ftype == FieldType::Tags {
        if let Some(Json::String(s)) = input.get(&f.api_name).cloned() {
            let tags: Vec<Json> =
                s.split([',', '，', '、']).map(str::trim).filter(|t| !t.is_empty()).map(|t| json!(t)).collect();
            input.insert(f.api_name.clone(), Json::Array(tags));
        }
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

#[derive(Deserialize)]
pub struct TimelineQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    before: Option<i64>,
}

/// `GET /o/{object}/{id}/timeline` — the timeline (filtered by kind, or its next page).
pub async fn timeline(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id)): Path<(String, Uuid)>,
    Query(q): Query<TimelineQuery>,
) -> WebResult {
    let schema = st.app.schema().await?;
    if !u.ctx.htmx {
        return Ok(redirect_for(&u.ctx, &format!("/o/{object}/{id}")));
    }
    render(&timeline_partial(&st, &u, &schema, &object, id, &q.kind, q.before).await?)
}

/// `POST /o/{object}/{id}/activities` — log a note, call, meeting, task or e-mail on a record
/// (a contact's activity also belongs to the contact's company).
pub async fn log_activity(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id)): Path<(String, Uuid)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let act = schema.object(activity::OBJECT)?.clone();
    let rec = st.app.get(&u.actor, &object, id).await?;
    let links = activity::links_to(&schema, &obj);
    let link = links.first().ok_or_else(|| AppError::invalid("activity.not_linkable"))?;
    let allowed = ["kind", "subject", "body", "due_at", "remind_at", "outcome", "owner"];
    let mine: Vec<(String, String)> = pairs.iter().filter(|(k, _)| allowed.contains(&k.as_str())).cloned().collect();
    let (mut input, _) = to_input(&act, &mine);
    for k in ["due_at", "remind_at"] {
        if let Some(Json::String(s)) = input.get(k).cloned() {
            input.insert(k.into(), json!(local_to_utc(&s, tz(&u))));
        }
    }
    input.insert(link.api_name.clone(), json!(id));
    // The company of a contact: the activity shows on both timelines.
    if let Some(cf) = act.field("company").filter(|c| c.id != link.id && !input.contains_key("company")) {
        if let Some(comp) =
            obj.fields.iter().find(|f| f.ftype == FieldType::Relation && f.options.target == cf.options.target)
        {
            if let Some(cid) = rec.get(&comp.api_name).as_str() {
                input.insert("company".into(), json!(cid));
            }
        }
    }
    match st.app.create(&u.actor, activity::OBJECT, &input).await {
        Ok(_) => {
            if !u.ctx.htmx {
                return Ok(crate::http::auth::redirect_flash(&u.ctx, &format!("/o/{object}/{id}"), "flash-logged"));
            }
            let mut resp = render(&timeline_partial(&st, &u, &schema, &object, id, "", None).await?)?;
            toast_trigger(&mut resp, &st.i18n.get(u.ctx.lang, "flash-logged", &[]));
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
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

#[derive(Template)]
#[template(path = "records/task_row.html")]
struct TaskRow {
    shell: Shell,
    t: Item,
}

#[derive(Deserialize)]
pub struct DoneForm {
    #[serde(rename = "_version")]
    version: i64,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    view: String,
}

/// `POST /activities/{id}/done` — tick a task off (or on again).
pub async fn task_done(
    State(st): State<AppState>,
    u: UserCtx,
    Path(id): Path<Uuid>,
    axum::Form(f): axum::Form<DoneForm>,
) -> WebResult {
    let done = f.done.as_deref().is_some_and(|v| v == "on" || v == "true");
    let r = st
        .app
        .update(&u.actor, activity::OBJECT, id, f.version, &Map::from_iter([("done".into(), json!(done))]))
        .await?;
    if !u.ctx.htmx {
        return Ok(redirect_for(&u.ctx, "/"));
    }
    let schema = st.app.schema().await?;
    let act = schema.object(activity::OBJECT)?.clone();
    let lang = u.ctx.lang.code();
    let nm = HashMap::new();
    let d = Display { lang, names: &nm, tz: tz(&u) };
    let shell = Shell::bare(&st, &u.ctx, String::new()).with_user(&u.session);
    let mut t = activity_item(&d, &nm, Some(&act), &r, String::new(), kehu_core::now_micros(), true, lang);
    t.kind = if f.view == "home" { "home".into() } else { t.kind };
    if f.view == "home" {
        t.link = task_link(&st, &u, &schema, &r).await;
    }
    let mut resp = render(&TaskRow { shell, t })?.into_response();
    let key = if done { "flash-task-done" } else { "flash-task-open" };
    toast_trigger(&mut resp, &st.i18n.get(u.ctx.lang, key, &[]));
    Ok(resp)
}

/// The record an activity belongs to (its first readable relation), as (href, title).
pub async fn task_link(st: &AppState, u: &UserCtx, schema: &Schema, r: &RecordView) -> Option<(String, String)> {
    let act = schema.object(activity::OBJECT).ok()?;
    for f in act.active().filter(|f| f.ftype == FieldType::Relation) {
        let Some(rid) = r.get(&f.api_name).as_str().and_then(|s| s.parse::<Uuid>().ok()) else { continue };
        let Some(t) = f.options.target.and_then(|t| schema.object_by_id(t)) else { continue };
        if let Ok(rec) = st.app.get(&u.actor, &t.api_name, rid).await {
            return Some((format!("/o/{}/{rid}", t.api_name), title_of(st, &t.api_name, &rec).await));
        }
    }
    None
}

pub fn task_item(st: &AppState, u: &UserCtx, act: &ObjectDef, r: &RecordView) -> Item {
    let lang = u.ctx.lang.code();
    let nm = HashMap::new();
    let d = Display { lang, names: &nm, tz: tz(u) };
    let _ = st;
    let mut t = activity_item(&d, &nm, Some(act), r, String::new(), kehu_core::now_micros(), true, lang);
    t.kind = "home".into();
    t
}

pub struct NoteView {
    pub id: Uuid,
    pub text: String,
    pub at: String,
    pub read: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    shell: Shell,
    items: Vec<NoteView>,
}

/// `GET /notifications`
pub async fn notifications(State(st): State<AppState>, u: UserCtx) -> WebResult {
    let list = st.app.notifications(&u.actor, 100).await?;
    let lang = u.ctx.lang.code();
    let shell = Shell::new(&st, &u.ctx, &u.session, &u.actor, st.i18n.get(u.ctx.lang, "notifications", &[]))
        .await
        .crumb(st.i18n.get(u.ctx.lang, "notifications", &[]), None);
    let items = list
        .into_iter()
        .map(|n| {
            let who = n.actor_name.clone().unwrap_or_else(|| shell.t("timeline-system"));
            let title = n
                .record
                .as_ref()
                .and_then(|r| {
                    let o = n.object.as_ref()?;
                    let tf = o.title_field()?;
                    r.get(&tf.api_name).as_str().map(str::to_owned)
                })
                .or_else(|| {
                    n.record
                        .as_ref()
                        .map(|_| n.object.as_ref().map(|o| o.label.get(lang).to_string()).unwrap_or_default())
                })
                .unwrap_or_else(|| shell.t("notification-hidden"));
            let key = match n.kind.as_str() {
                "mention" => "notification-mention",
                "assigned" => "notification-assigned",
                _ => "notification-reminder",
            };
            let text = st.i18n.get(u.ctx.lang, key, &[("who", &who), ("title", &title)]);
            NoteView { id: n.id, text, at: shell.time(&n.at), read: n.read }
        })
        .collect();
    render(&NotificationsPage { shell, items })
}

/// `GET /notifications/{id}` — mark read and open what it is about.
pub async fn open_notification(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let user = u.session.user.id;
    let list = st.app.notifications(&u.actor, 200).await?;
    let n = list.into_iter().find(|n| n.id == id).ok_or_else(|| AppError::not_found("notification.not_found"))?;
    st.app.mark_read(user, Some(id)).await?;
    let schema = st.app.schema().await?;
    let to = match (&n.object, &n.record) {
        (Some(o), Some(r)) if o.api_name == activity::OBJECT => task_link(&st, &u, &schema, r)
            .await
            .map(|(h, _)| h)
            .unwrap_or_else(|| format!("/o/{}/{}", o.api_name, r.id)),
        (Some(o), Some(r)) => format!("/o/{}/{}", o.api_name, r.id),
        _ => "/notifications".into(),
    };
    Ok(axum::response::Redirect::to(&to).into_response())
}

/// `POST /notifications/read` — mark every notification read.
pub async fn read_all(State(st): State<AppState>, u: UserCtx) -> WebResult {
    st.app.mark_read(u.session.user.id, None).await?;
    Ok(redirect_for(&u.ctx, "/notifications"))
}
