//! The timeline of a record (activities, field changes, creation), the activity composer,
//! logging an activity, and ticking tasks off.

use super::*;
use crate::http::enc;

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

/// The kinds a timeline can be filtered by (the activity kinds metadata offers now), with
/// their labels.
fn kind_tabs(shell: &Shell, schema: &Schema, current: &str) -> Vec<(String, String, bool)> {
    let mut out = vec![(String::new(), shell.t("timeline-all"), current.is_empty())];
    for c in activity::kind_choices(schema) {
        let on = current == c.key;
        out.push((c.key, c.label.get(shell.lang_code()).to_string(), on));
    }
    out.push((activity::CHANGES.into(), shell.t("timeline-changes"), current == activity::CHANGES));
    out
}

#[derive(Template)]
#[template(path = "records/timeline.html")]
pub struct TimelinePartial {
    pub(super) shell: Shell,
    pub(super) object: String,
    pub(super) id: Uuid,
    pub(super) kinds: Vec<(String, String, bool)>,
    pub(super) items: Vec<Item>,
    pub(super) more: Option<String>,
    pub(super) append: bool,
}

/// The activity composer: one form per kind, with the users a note may mention.
pub struct Composer {
    pub kinds: Vec<(String, String)>,
    pub outcomes: Vec<(String, String)>,
    pub users: Vec<(String, String)>,
    pub users_json: String,
    pub me: String,
}

pub(super) async fn composer(st: &AppState, u: &UserCtx, schema: &Schema, obj: &ObjectDef) -> Option<Composer> {
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

/// Build the timeline partial of a record.
pub(super) async fn timeline_partial(
    st: &AppState,
    u: &UserCtx,
    schema: &Schema,
    object: &str,
    id: Uuid,
    kind: &str,
    before: Option<activity::Cursor>,
) -> Result<TimelinePartial, AppError> {
    let kinds = activity::split_kinds(kind);
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
            Entry::Activity(r) => items.push(activity_item(&d, act.as_deref(), r, at, now, can_edit_act)),
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
    let more = tl.before.map(|b| format!("/o/{object}/{id}/timeline?kind={}&before={b}", enc(kind)));
    Ok(TimelinePartial {
        kinds: kind_tabs(&shell, schema, kind),
        shell,
        object: object.to_string(),
        id,
        items,
        more,
        append: before.is_some(),
    })
}

/// A changed value as text (rich text reduced to plain text, shortened).
pub(super) fn plain_value(d: &Display, f: &FieldDef, v: &Json) -> String {
    let s = if f.options.rich { v.as_str().map(kehu_app::rich::plain).unwrap_or_default() } else { d.value(f, v) };
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// One activity as a timeline entry or a task row.
pub fn activity_item(
    d: &Display,
    act: Option<&ObjectDef>,
    r: &RecordView,
    at: String,
    now: i64,
    can_edit: bool,
) -> Item {
    let (lang, names) = (d.lang, d.names);
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

#[derive(Deserialize)]
pub struct TimelineQuery {
    #[serde(default)]
    kind: String,
    /// The place the page continues from (`<micros>_<id>`, see `activity::Cursor`).
    #[serde(default)]
    before: Option<String>,
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
    let before = q.before.as_deref().filter(|b| !b.is_empty()).map(activity::Cursor::parse).transpose()?;
    render(&timeline_partial(&st, &u, &schema, &object, id, &q.kind, before).await?)
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
    let shell = Shell::bare(&st, &u.ctx, String::new()).with_user(&u.session);
    let mut t = task_item(&u, &act, &r, f.view == "home");
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

/// A task as a tick-box row; `home` marks the home page's variant (its answer says so).
pub fn task_item(u: &UserCtx, act: &ObjectDef, r: &RecordView, home: bool) -> Item {
    let nm = HashMap::new();
    let d = Display { lang: u.ctx.lang.code(), names: &nm, tz: tz(u) };
    let mut t = activity_item(&d, Some(act), r, String::new(), kehu_core::now_micros(), true);
    if home {
        t.kind = "home".into();
    }
    t
}
