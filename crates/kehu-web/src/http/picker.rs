//! The relation and user picker: a type-ahead that asks the server for choices within the
//! user's scope (`GET /pick/{object}?q=`, `/pick/_users`), shows the current value even when
//! it is old or not visible to the user, and submits only a value the user chose (a hidden
//! input holds the chosen id; what is typed is never sent). Used by create and edit forms,
//! in-place edit, filters and bulk set; `assets/app.js` ("picker") drives it.

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use kehu_app::records::pick::Pick;
use kehu_core::meta::{FieldDef, FieldType, Schema};
use kehu_core::Uuid;
use serde::Deserialize;

/// Where user pickers ask (object api names never start with `_`).
pub const USERS: &str = "_users";

/// One picker as a form shows it.
pub struct Picker {
    /// The hidden input's name (the form field).
    pub name: String,
    /// The text box's id (a `<label for>` points at it).
    pub id: String,
    /// `/pick/{object}`.
    pub source: String,
    /// The chosen id, `$me`, or empty.
    pub value: String,
    /// What the text box shows for it.
    pub label: String,
    /// Offer "me" (filters on user fields).
    pub me: bool,
    pub autofocus: bool,
    /// A choice asks this duplicate check (the new-record form's watched fields).
    pub dup: Option<String>,
}

/// The picker of a relation or user field (named after it, with the id `f-<field>`), or
/// `None` for other fields. `value` is the stored id (or `$me` in a filter); its label is read
/// for the user, so an old record shows too.
pub async fn for_field(st: &AppState, u: &UserCtx, schema: &Schema, f: &FieldDef, value: &str) -> Option<Picker> {
    let object = match f.ftype {
        FieldType::User => USERS.to_string(),
        FieldType::Relation => schema.object_by_id(f.options.target?)?.api_name.clone(),
        _ => return None,
    };
    let label = label_of(st, u, &object, value).await;
    Some(Picker {
        name: f.api_name.clone(),
        id: format!("f-{}", f.api_name),
        source: format!("/pick/{object}"),
        value: value.into(),
        label,
        me: false,
        autofocus: false,
        dup: None,
    })
}

async fn label_of(st: &AppState, u: &UserCtx, object: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if value == "$me" {
        return st.i18n.get(u.ctx.lang, "lists-me", &[]);
    }
    let Ok(id) = value.parse::<Uuid>() else { return value.to_string() };
    let found = if object == USERS {
        st.app.user_names(&[id]).await.ok().and_then(|m| m.get(&id).cloned())
    } else {
        st.app.pick_label(&u.actor, object, id).await.ok().flatten()
    };
    found.unwrap_or_else(|| st.i18n.get(u.ctx.lang, "picker-not-visible", &[]))
}

#[derive(Deserialize)]
pub struct PickQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    me: Option<String>,
}

#[derive(Template)]
#[template(path = "picker_options.html")]
struct Options {
    shell: Shell,
    me: Option<String>,
    picks: Vec<Pick>,
}

/// `GET /pick/{object}?q=&me=1` — the choices of a picker (an HTML fragment of options).
pub async fn pick(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    Query(pq): Query<PickQuery>,
) -> WebResult {
    let picks =
        if object == USERS { st.app.pick_users(&pq.q).await? } else { st.app.pick(&u.actor, &object, &pq.q).await? };
    let me_label = st.i18n.get(u.ctx.lang, "lists-me", &[]);
    let me = (object == USERS && pq.me.is_some() && (pq.q.trim().is_empty() || me_label.contains(pq.q.trim())))
        .then_some(me_label);
    render(&Options { shell: Shell::bare(&st, &u.ctx, String::new()), me, picks })
}
