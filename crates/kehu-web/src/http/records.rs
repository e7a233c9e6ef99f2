//! Generic record pages for every object (standard and custom), driven by metadata: the
//! create form with per-field errors, and the record page with
//! masked contact details that a permitted user can reveal (audited).

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::picker;
use crate::shell::{render, Form, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use kehu_app::RecordView;
use kehu_core::meta::{FieldDef, FieldType, ObjectDef};
use kehu_core::perm::{Action, Actor};
use kehu_core::Uuid;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;

/// A field as a column or a row of the record page.
pub struct Col {
    pub api: String,
    pub label: String,
}

/// A record prepared for display: id, title and the shown values in column order.
pub struct Row {
    pub id: Uuid,
    pub title: String,
    pub cells: Vec<String>,
}

/// The list of the records of `object` the signed-in user owns.
pub fn mine_href(object: &str) -> String {
    format!("/o/{object}?view=mine")
}

/// Text for a value as a user reads it (labels of options, names of users and records).
pub struct Display<'a> {
    pub lang: &'a str,
    pub names: &'a HashMap<Uuid, String>,
    pub tz: chrono_tz::Tz,
}

impl Display<'_> {
    pub fn value(&self, f: &FieldDef, v: &Json) -> String {
        match (f.ftype, v) {
            (_, Json::Null) => String::new(),
            (FieldType::Select, Json::String(k)) => {
                f.choice(k).map(|c| c.label.get(self.lang).to_string()).unwrap_or_else(|| k.clone())
            }
            (FieldType::MultiSelect, Json::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str())
                .map(|k| f.choice(k).map(|c| c.label.get(self.lang).to_string()).unwrap_or_else(|| k.to_string()))
                .collect::<Vec<_>>()
                .join("、"),
            (FieldType::Tags, Json::Array(a)) => a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("、"),
            (FieldType::Relation | FieldType::User, Json::String(s)) => {
                s.parse::<Uuid>().ok().and_then(|id| self.names.get(&id).cloned()).unwrap_or_else(|| "—".into())
            }
            (FieldType::Boolean, Json::Bool(b)) => if *b { "✓" } else { "✗" }.to_string(),
            (FieldType::Currency, Json::Object(m)) => format!(
                "{} {}",
                m.get("currency").and_then(|c| c.as_str()).unwrap_or(""),
                m.get("amount").and_then(|c| c.as_str()).unwrap_or("")
            ),
            (FieldType::Percent, Json::String(s)) => format!("{s}%"),
            (FieldType::DateTime, Json::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&self.tz).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|_| s.clone()),
            (_, Json::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        }
    }
}

/// Names for every user and related record referenced by these records.
pub(crate) async fn names(
    st: &AppState,
    actor: &Actor,
    obj: &ObjectDef,
    records: &[RecordView],
) -> HashMap<Uuid, String> {
    let mut users = Vec::new();
    let mut refs: Vec<(String, Uuid)> = Vec::new();
    let schema = st.app.schema().await.ok();
    for f in obj.active() {
        for r in records {
            let Some(id) = r.get(&f.api_name).as_str().and_then(|s| s.parse::<Uuid>().ok()) else { continue };
            match f.ftype {
                FieldType::User => users.push(id),
                FieldType::Relation => {
                    let target =
                        f.options.target.and_then(|t| schema.as_ref()?.object_by_id(t).map(|o| o.api_name.clone()));
                    if let Some(t) = target {
                        refs.push((t, id));
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = st.app.user_names(&users).await.unwrap_or_default();
    refs.sort();
    refs.dedup();
    for (object, id) in refs {
        if let Ok(r) = st.app.get(actor, &object, id).await {
            out.insert(id, title_of(st, &object, &r).await);
        }
    }
    out
}

pub(crate) async fn title_of(st: &AppState, object: &str, r: &RecordView) -> String {
    let schema = st.app.schema().await.ok();
    let tf =
        schema.as_ref().and_then(|s| s.object(object).ok()).and_then(|o| o.title_field().map(|f| f.api_name.clone()));
    tf.and_then(|f| r.get(&f).as_str().map(str::to_owned)).filter(|s| !s.is_empty()).unwrap_or_else(|| "—".into())
}

/// One input of the generated form.
pub struct Input {
    pub api: String,
    pub label: String,
    pub help: String,
    pub kind: &'static str,
    pub required: bool,
    pub value: String,
    pub options: Vec<(String, String, bool)>,
    pub error: String,
    /// Typing here asks for duplicates (see `merge::check`).
    pub dup: bool,
    /// The type-ahead of a relation or user field (kind `picker`).
    pub picker: Option<picker::Picker>,
}

#[derive(Template)]
#[template(path = "records/new.html")]
struct NewPage {
    shell: Shell,
    object: String,
    inputs: Vec<Input>,
    general: Option<String>,
}

async fn inputs(
    st: &AppState,
    u: &UserCtx,
    obj: &ObjectDef,
    form: &Form,
    values: &HashMap<String, Vec<String>>,
) -> Vec<Input> {
    let schema = st.app.schema().await.ok();
    let watched = schema.as_ref().map(|s| crate::http::merge::watched(s, obj)).unwrap_or_default();
    let mut out = Vec::new();
    // Fields chosen for the form under Settings → Objects & fields; required ones always.
    let shown = |f: &FieldDef| f.in_form || f.required;
    for f in obj.active().filter(|f| shown(f) && u.actor.can_write_field(obj, f) && f.api_name != "owner") {
        let selected = values.get(&f.api_name).cloned().unwrap_or_default();
        let mut i = input_for(st, u, schema.as_deref(), f, selected, form.e(&f.api_name).to_string()).await;
        i.dup = watched.contains(&f.api_name);
        if let Some(p) = i.picker.as_mut().filter(|_| i.dup) {
            p.dup = Some(format!("/o/{}/duplicates/check", obj.api_name));
        }
        out.push(i);
    }
    out
}

/// The input of one field, with its current value(s) and error message.
pub async fn input_for(
    st: &AppState,
    u: &UserCtx,
    schema: Option<&kehu_core::meta::Schema>,
    f: &FieldDef,
    selected: Vec<String>,
    error: String,
) -> Input {
    let lang = u.ctx.lang.code();
    let value = selected.first().cloned().unwrap_or_default();
    let (kind, options) = match f.ftype {
        FieldType::LongText => ("textarea", vec![]),
        FieldType::Email => ("email", vec![]),
        FieldType::Phone => ("tel", vec![]),
        FieldType::Url => ("url", vec![]),
        FieldType::Integer | FieldType::Decimal | FieldType::Percent | FieldType::Currency => ("number", vec![]),
        FieldType::Date => ("date", vec![]),
        FieldType::DateTime => ("datetime-local", vec![]),
        FieldType::Boolean => ("checkbox", vec![]),
        FieldType::Select => (
            "select",
            f.options
                .choices
                .iter()
                .filter(|c| !c.archived || selected.contains(&c.key))
                .map(|c| (c.key.clone(), c.label.get(lang).to_string(), selected.contains(&c.key)))
                .collect(),
        ),
        FieldType::MultiSelect => (
            "multi",
            f.options
                .choices
                .iter()
                .filter(|c| !c.archived || selected.contains(&c.key))
                .map(|c| (c.key.clone(), c.label.get(lang).to_string(), selected.contains(&c.key)))
                .collect(),
        ),
        FieldType::User | FieldType::Relation => ("picker", vec![]),
        _ => ("text", vec![]),
    };
    let picker = match schema {
        Some(schema) => picker::for_field(st, u, schema, f, &value).await,
        None => None,
    };
    Input {
        api: f.api_name.clone(),
        label: f.label.get(lang).to_string(),
        help: f.help.as_ref().map(|h| h.get(lang).to_string()).unwrap_or_default(),
        kind,
        required: f.required,
        value,
        options,
        error,
        dup: false,
        picker,
    }
}

/// `GET /o/{object}/new`
pub async fn new_page(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    Query(prefill): Query<HashMap<String, String>>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    u.actor.check(&obj, Action::Create)?;
    let mut defaults = HashMap::new();
    for f in obj.active() {
        if let Some(v) = prefill.get(&f.api_name).filter(|v| !v.is_empty() && v.len() <= 2048) {
            defaults.insert(f.api_name.clone(), vec![v.clone()]);
        } else if let Some(Json::String(s)) = &f.default {
            defaults.insert(f.api_name.clone(), vec![s.clone()]);
        }
    }
    let lang = u.ctx.lang.code();
    let label = obj.label.get(lang).to_string();
    let plural = obj.plural.get(lang).to_string();
    let ins = inputs(&st, &u, &obj, &Form::default(), &defaults).await;
    let title = st.i18n.get(u.ctx.lang, "record-new", &[("object", &label)]);
    let shell = Shell::new(&st, &u.ctx, &u.session, &u.actor, title.clone())
        .await
        .crumb(plural, Some(&format!("/o/{object}")))
        .crumb(title, None);
    render(&NewPage { shell, object, inputs: ins, general: None })
}

/// Form pairs → engine input: several values of one name make a list; empty ones are left out.
pub(crate) fn to_input(
    obj: &ObjectDef,
    pairs: &[(String, String)],
) -> (Map<String, Json>, HashMap<String, Vec<String>>) {
    let mut grouped: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        if k.starts_with('_') {
            continue;
        }
        grouped.entry(k.clone()).or_default().push(v.clone());
    }
    let mut input = Map::new();
    for (k, vals) in &grouped {
        let Some(f) = obj.field(k) else {
            input.insert(k.clone(), Json::String(vals.join(",")));
            continue;
        };
        let v = match f.ftype {
            FieldType::MultiSelect => {
                Json::Array(vals.iter().filter(|s| !s.is_empty()).map(|s| Json::String(s.clone())).collect())
            }
            FieldType::Boolean => Json::Bool(vals.iter().any(|s| s == "on" || s == "true")),
            _ => {
                let s = vals.last().cloned().unwrap_or_default();
                if s.trim().is_empty() {
                    continue;
                }
                Json::String(s)
            }
        };
        input.insert(k.clone(), v);
    }
    (input, grouped)
}

/// `POST /o/{object}/new`
pub async fn create(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let (input, grouped) = to_input(&obj, &pairs);
    match st.app.create(&u.actor, &object, &input).await {
        Ok(r) => Ok(crate::http::auth::redirect_flash(&u.ctx, &format!("/o/{object}/{}", r.id), "flash-created")),
        Err(e) if e.kind == kehu_core::ErrorKind::Invalid || e.kind == kehu_core::ErrorKind::Conflict => {
            let form = Form::default().fail(&st.i18n, u.ctx.lang, &e);
            let lang = u.ctx.lang.code();
            let label = obj.label.get(lang).to_string();
            let plural = obj.plural.get(lang).to_string();
            let ins = inputs(&st, &u, &obj, &form, &grouped).await;
            let title = st.i18n.get(u.ctx.lang, "record-new", &[("object", &label)]);
            let shell = Shell::new(&st, &u.ctx, &u.session, &u.actor, title.clone())
                .await
                .crumb(plural, Some(&format!("/o/{object}")))
                .crumb(title, None);
            let general = form.general.clone().or_else(|| Some(st.i18n.error(u.ctx.lang, &e.code)));
            let mut r = render(&NewPage { shell, object, inputs: ins, general })?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}
