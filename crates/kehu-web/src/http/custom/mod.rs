//! Settings → Objects & fields: the pages where an administrator creates, edits and deletes
//! custom objects and adds, edits, reorders and archives fields of any object (select options
//! with colours, which fields the form and the list show). Every check and write lives in
//! `kehu-app` (`manage_metadata`); these pages only present them. Everything works without
//! script (up/down buttons, plain forms); app.js adds drag-to-reorder and live swatches.
//! This file: the objects list and one object's page (its fields in order); `fields.rs`: the
//! field editor (type, options with colours, flags).

mod fields;

pub use fields::{add_field, edit_field, new_field, save_field};

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::auth::redirect_flash;
use crate::shell::{render, Form, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use kehu_app::metadata::{FieldPatch, NewField, NewObject, ObjectPatch, ICONS};
use kehu_core::meta::{Choice, FieldDef, FieldOptions, FieldType, Label, ObjectDef, COLORS};
use kehu_core::perm::Actor;
use kehu_core::{AppError, ErrorKind};
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

type Pairs = axum::Form<Vec<(String, String)>>;

fn need_admin(actor: &Actor) -> Result<(), AppError> {
    if actor.can_manage_metadata() {
        Ok(())
    } else {
        Err(AppError::forbidden("permission.denied"))
    }
}

async fn shell(st: &AppState, u: &UserCtx, title: String, crumbs: &[(String, String)]) -> Shell {
    let mut s = Shell::new(st, &u.ctx, &u.session, &u.actor, title.clone()).await;
    let root = st.i18n.get(u.ctx.lang, "custom-nav", &[]);
    if crumbs.is_empty() && title == root {
        return s.crumb(root, None);
    }
    s = s.crumb(root, Some("/settings/objects"));
    for (label, href) in crumbs {
        s = s.crumb(label.clone(), Some(href));
    }
    s.crumb(title, None)
}

/// The first value of a form name.
fn first<'a>(p: &'a [(String, String)], name: &str) -> &'a str {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).unwrap_or("")
}
fn checked(p: &[(String, String)], name: &str) -> bool {
    p.iter().any(|(k, v)| k == name && (v == "on" || v == "true"))
}
fn all<'a>(p: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    p.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim()).collect()
}

/// An api name from an English label: `Customer tier` → `customer_tier`.
pub fn derive_api_name(label: &str) -> String {
    let mut s = String::new();
    for c in label.trim().chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('_') && !s.is_empty() {
            s.push('_');
        }
    }
    let s = s.trim_end_matches('_').to_string();
    let s = if s.starts_with(|c: char| c.is_ascii_digit()) { format!("f_{s}") } else { s };
    s.chars().take(40).collect()
}

fn label_of(p: &[(String, String)], base: &str) -> Label {
    Label::new(first(p, &format!("{base}_en")), first(p, &format!("{base}_zh")))
}

fn values_of(p: &[(String, String)]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for (k, v) in p {
        m.entry(k.clone()).or_insert_with(|| v.clone());
    }
    m
}

fn fail_status(r: WebResult, e: &AppError) -> WebResult {
    let mut r = r?;
    *r.status_mut() = crate::error::status_of(e);
    Ok(r)
}

// ---- objects overview ----

pub struct ObjRow {
    pub api: String,
    pub label: String,
    pub plural: String,
    pub icon: String,
    pub standard: bool,
    pub archived: bool,
    pub fields: usize,
    pub records: i64,
}

#[derive(Template)]
#[template(path = "custom/objects.html")]
struct ObjectsPage {
    shell: Shell,
    rows: Vec<ObjRow>,
    form: Form,
    icons: Vec<&'static str>,
}

async fn objects_with(st: &AppState, u: &UserCtx, form: Form) -> WebResult {
    let lang = u.ctx.lang.code();
    let rows = st
        .app
        .object_overview(&u.actor)
        .await?
        .into_iter()
        .map(|s| ObjRow {
            api: s.object.api_name.clone(),
            label: s.object.label.get(lang).to_string(),
            plural: s.object.plural.get(lang).to_string(),
            icon: s.object.icon.clone(),
            standard: s.object.is_system,
            archived: s.object.archived,
            fields: s.object.data_fields().count(),
            records: s.records,
        })
        .collect();
    let title = st.i18n.get(u.ctx.lang, "custom-nav", &[]);
    render(&ObjectsPage { shell: shell(st, u, title, &[]).await, rows, form, icons: ICONS.to_vec() })
}

/// `GET /settings/objects`
pub async fn objects(State(st): State<AppState>, u: UserCtx) -> WebResult {
    objects_with(&st, &u, Form::with(&[("icon", "box")])).await
}

/// `POST /settings/objects` — create a custom object.
pub async fn create_object(State(st): State<AppState>, u: UserCtx, axum::Form(p): Pairs) -> WebResult {
    need_admin(&u.actor)?;
    let label = label_of(&p, "label");
    let mut plural = label_of(&p, "plural");
    if plural.en.is_empty() {
        plural.en = label.en.clone();
    }
    if plural.zh.is_empty() {
        plural.zh = label.zh.clone();
    }
    let api = match first(&p, "api_name") {
        "" => derive_api_name(&label.en),
        a => a.to_string(),
    };
    let icon = Some(first(&p, "icon").to_string()).filter(|i| ICONS.contains(&i.as_str()));
    let req = NewObject { api_name: api.clone(), label, plural, icon };
    match st.app.create_object(&u.actor, req).await {
        Ok(o) => {
            Ok(redirect_flash(&u.ctx, &format!("/settings/objects/{}", o.api_name), "flash-custom-object-created"))
        }
        Err(e) if e.kind != ErrorKind::Forbidden => {
            let mut form = Form { values: values_of(&p), ..Default::default() }.fail(&st.i18n, u.ctx.lang, &e);
            form.values.insert("api_name".into(), api);
            fail_status(objects_with(&st, &u, form).await, &e)
        }
        Err(e) => Err(e.into()),
    }
}

// ---- one object ----

pub struct FieldRow {
    pub api: String,
    pub label: String,
    pub kind: String,
    pub required: bool,
    pub in_form: bool,
    pub in_list: bool,
    pub archived: bool,
    pub builtin: bool,
    pub choices: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "custom/object.html")]
struct ObjectPage {
    shell: Shell,
    api: String,
    standard: bool,
    fields: Vec<FieldRow>,
    form: Form,
    icons: Vec<&'static str>,
    types: Vec<(&'static str, String)>,
}

fn type_name(st: &AppState, u: &UserCtx, t: FieldType) -> String {
    st.i18n.get(u.ctx.lang, &format!("custom-type-{}", t.as_str().replace('_', "-")), &[])
}

async fn object_with(st: &AppState, u: &UserCtx, api: &str, form: Option<Form>) -> WebResult {
    need_admin(&u.actor)?;
    let schema = st.app.schema().await?;
    let obj = schema.object(api)?.clone();
    let lang = u.ctx.lang.code();
    // The object's own fields in their order, then the owner (other built-ins are not editable
    // and not worth the room).
    let fields = obj
        .fields
        .iter()
        .filter(|f| !f.builtin)
        .chain(obj.fields.iter().filter(|f| f.builtin && f.api_name == "owner"))
        .map(|f| FieldRow {
            api: f.api_name.clone(),
            label: f.label.get(lang).to_string(),
            kind: type_name(st, u, f.ftype),
            required: f.required,
            in_form: f.in_form || f.required,
            in_list: f.in_list,
            archived: f.archived,
            builtin: f.builtin,
            choices: f
                .options
                .choices
                .iter()
                .filter(|c| !c.archived)
                .map(|c| (c.label.get(lang).to_string(), c.color.clone()))
                .collect(),
        })
        .collect();
    let form = form.unwrap_or_else(|| {
        Form::with(&[
            ("label_en", &obj.label.en),
            ("label_zh", &obj.label.zh),
            ("plural_en", &obj.plural.en),
            ("plural_zh", &obj.plural.zh),
            ("icon", &obj.icon),
        ])
    });
    let title = obj.label.get(lang).to_string();
    let types = FieldType::ALL.iter().map(|t| (t.as_str(), type_name(st, u, *t))).collect();
    render(&ObjectPage {
        shell: shell(st, u, title, &[]).await,
        api: obj.api_name.clone(),
        standard: obj.is_system,
        fields,
        form,
        icons: ICONS.to_vec(),
        types,
    })
}

/// `GET /settings/objects/{object}`
pub async fn object(State(st): State<AppState>, u: UserCtx, Path(api): Path<String>) -> WebResult {
    object_with(&st, &u, &api, None).await
}

/// `POST /settings/objects/{object}` — labels and icon.
pub async fn update_object(
    State(st): State<AppState>,
    u: UserCtx,
    Path(api): Path<String>,
    axum::Form(p): Pairs,
) -> WebResult {
    need_admin(&u.actor)?;
    let patch = ObjectPatch {
        label: Some(label_of(&p, "label")),
        plural: Some(label_of(&p, "plural")),
        icon: Some(first(&p, "icon").to_string()),
    };
    match st.app.edit_object(&u.actor, &api, patch).await {
        Ok(_) => Ok(redirect_flash(&u.ctx, &format!("/settings/objects/{api}"), "flash-saved")),
        Err(e) if e.kind == ErrorKind::Invalid => {
            let form = Form { values: values_of(&p), ..Default::default() }.fail(&st.i18n, u.ctx.lang, &e);
            fail_status(object_with(&st, &u, &api, Some(form)).await, &e)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /settings/objects/{object}/delete` — archive a custom object; its name must be typed.
pub async fn delete_object(
    State(st): State<AppState>,
    u: UserCtx,
    Path(api): Path<String>,
    axum::Form(p): Pairs,
) -> WebResult {
    need_admin(&u.actor)?;
    match st.app.delete_object(&u.actor, &api, first(&p, "confirm")).await {
        Ok(()) => Ok(redirect_flash(&u.ctx, "/settings/objects", "flash-custom-object-deleted")),
        Err(e) if e.kind == ErrorKind::Invalid => {
            let form = Form::default().fail(&st.i18n, u.ctx.lang, &e);
            fail_status(object_with(&st, &u, &api, Some(form)).await, &e)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /settings/objects/{object}/restore`
pub async fn restore_object(State(st): State<AppState>, u: UserCtx, Path(api): Path<String>) -> WebResult {
    st.app.restore_object(&u.actor, &api).await?;
    Ok(redirect_flash(&u.ctx, &format!("/settings/objects/{api}"), "flash-custom-object-restored"))
}

/// `POST /settings/objects/{object}/order` — `order` repeated, from the drag-and-drop list.
pub async fn reorder(
    State(st): State<AppState>,
    u: UserCtx,
    Path(api): Path<String>,
    axum::Form(p): Pairs,
) -> WebResult {
    let order: Vec<String> = all(&p, "order").into_iter().map(str::to_owned).collect();
    st.app.reorder_fields(&u.actor, &api, &order).await?;
    Ok(redirect_flash(&u.ctx, &format!("/settings/objects/{api}"), "flash-saved"))
}

/// `POST /settings/objects/{object}/fields/{field}/move` — `dir` = up | down.
pub async fn move_field(
    State(st): State<AppState>,
    u: UserCtx,
    Path((api, field)): Path<(String, String)>,
    axum::Form(p): Pairs,
) -> WebResult {
    st.app.move_field(&u.actor, &api, &field, first(&p, "dir") == "up").await?;
    Ok(redirect_flash(&u.ctx, &format!("/settings/objects/{api}#field-{field}"), "flash-saved"))
}

/// `POST /settings/objects/{object}/fields/{field}/archive` — `archived` = true | false.
pub async fn archive_field(
    State(st): State<AppState>,
    u: UserCtx,
    Path((api, field)): Path<(String, String)>,
    axum::Form(p): Pairs,
) -> WebResult {
    let archived = first(&p, "archived") == "true";
    let patch = FieldPatch { archived: Some(archived), ..Default::default() };
    st.app.update_field(&u.actor, &api, &field, patch).await?;
    let key = if archived { "flash-custom-field-archived" } else { "flash-custom-field-restored" };
    Ok(redirect_flash(&u.ctx, &format!("/settings/objects/{api}"), key))
}
