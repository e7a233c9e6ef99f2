//! Metadata routes: the objects and fields the caller can see, and (with the `admin` scope and
//! a role that manages metadata) new objects and fields. Changes show at once in the record
//! routes and in the OpenAPI document.

use super::{ErrorBody, JsonBody};
use crate::ctx::ApiCaller;
use crate::error::WebResult;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use kehu_app::metadata::{FieldPatch, NewField, NewObject};
use kehu_core::meta::{FieldDef, ObjectDef};
use kehu_core::perm::{Action, Actor};
use serde::Serialize;
use serde_json::Value as JVal;
use utoipa::ToSchema;

/// A label in both languages.
#[derive(Serialize, ToSchema)]
pub struct LabelDoc {
    pub en: String,
    #[serde(rename = "zh-CN")]
    pub zh: String,
}

/// A field of an object.
#[derive(Serialize, ToSchema)]
pub struct FieldDoc {
    pub api_name: String,
    /// text, long_text, integer, decimal, currency, percent, boolean, date, datetime, email,
    /// phone, url, single_select, multi_select, relation, user, tags
    #[serde(rename = "type")]
    pub ftype: String,
    pub label: LabelDoc,
    pub help: Option<LabelDoc>,
    pub required: bool,
    pub unique: bool,
    pub filterable: bool,
    pub searchable: bool,
    #[schema(value_type = Object)]
    pub default: Option<JVal>,
    /// choices (select), target (relation), scale, max_length, currency
    #[schema(value_type = Object)]
    pub options: JVal,
    pub position: i32,
    pub archived: bool,
    /// Shown in the create form (required fields always are).
    pub in_form: bool,
    /// A default list column.
    pub in_list: bool,
    pub builtin: bool,
    pub readonly: bool,
}

/// An object (standard or custom) with the fields the caller may read.
#[derive(Serialize, ToSchema)]
pub struct ObjectDoc {
    pub api_name: String,
    pub label: LabelDoc,
    pub plural: LabelDoc,
    pub icon: String,
    pub is_system: bool,
    pub fields: Vec<FieldDoc>,
}

/// `POST /api/v1/meta/objects`
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewObjectDoc {
    /// Lower-case letters, digits and `_`, starting with a letter.
    api_name: String,
    label: LabelDoc,
    plural: LabelDoc,
    icon: Option<String>,
}

/// `POST /api/v1/meta/objects/{object}/fields`
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewFieldDoc {
    api_name: String,
    /// One of the field types (see `FieldDoc.type`).
    #[schema(rename = "type")]
    ftype: String,
    label: LabelDoc,
    help: Option<LabelDoc>,
    required: Option<bool>,
    unique: Option<bool>,
    filterable: Option<bool>,
    searchable: Option<bool>,
    #[schema(value_type = Object)]
    default: Option<JVal>,
    /// `{"choices": [{"key", "label": {"en", "zh-CN"}, "color"}], "scale", "max_length", "currency"}`
    #[schema(value_type = Object)]
    options: Option<JVal>,
    /// For relations: the api name of the target object.
    target_object: Option<String>,
    position: Option<i32>,
    /// Shown in the create form (default true).
    in_form: Option<bool>,
    /// A default list column (default false).
    in_list: Option<bool>,
}

/// `PATCH /api/v1/meta/objects/{object}/fields/{field}` (absent members stay as they are)
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FieldPatchDoc {
    api_name: Option<String>,
    label: Option<LabelDoc>,
    help: Option<LabelDoc>,
    required: Option<bool>,
    unique: Option<bool>,
    filterable: Option<bool>,
    searchable: Option<bool>,
    #[schema(value_type = Object)]
    default: Option<JVal>,
    #[schema(value_type = Object)]
    choices: Option<JVal>,
    max_length: Option<u32>,
    position: Option<i32>,
    archived: Option<bool>,
    in_form: Option<bool>,
    in_list: Option<bool>,
}

/// A field as the API shows it (internal ids left out).
fn field_json(f: &FieldDef) -> JVal {
    let mut v = serde_json::to_value(f).unwrap_or(JVal::Null);
    if let Some(m) = v.as_object_mut() {
        m.remove("id");
        m.remove("object_id");
    }
    v
}

/// The object as this actor sees it (unreadable and archived fields left out).
pub fn object_json(o: &ObjectDef, actor: &Actor) -> JVal {
    let fields: Vec<JVal> =
        o.fields.iter().filter(|f| !f.archived && actor.can_read_field(o, f)).map(|f| field_json(f)).collect();
    let mut v = serde_json::to_value(o).unwrap_or(JVal::Null);
    if let Some(m) = v.as_object_mut() {
        m.remove("id");
        m.insert("fields".into(), JVal::Array(fields));
    }
    v
}

/// The objects the caller may read.
#[utoipa::path(get, path = "/api/v1/meta/objects", tag = "metadata",
    responses((status = 200, body = Vec<ObjectDoc>), (status = 401, body = ErrorBody)))]
pub async fn list_objects(State(st): State<AppState>, c: ApiCaller) -> WebResult<Json<JVal>> {
    let schema = st.app.schema().await?;
    let list: Vec<JVal> = schema
        .objects()
        .iter()
        .filter(|o| c.actor.check(o, Action::Read).is_ok())
        .map(|o| object_json(o, &c.actor))
        .collect();
    Ok(Json(JVal::Array(list)))
}

/// One object with its fields.
#[utoipa::path(get, path = "/api/v1/meta/objects/{object}", tag = "metadata",
    params(("object" = String, Path, description = "Object api name")),
    responses((status = 200, body = ObjectDoc), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_object(State(st): State<AppState>, c: ApiCaller, Path(object): Path<String>) -> WebResult<Json<JVal>> {
    let schema = st.app.schema().await?;
    let o = schema.object(&object)?;
    c.actor.check(o, Action::Read)?;
    Ok(Json(object_json(o, &c.actor)))
}

/// Create a custom object (a real table; it appears at once in the API).
#[utoipa::path(post, path = "/api/v1/meta/objects", tag = "metadata",
    request_body = NewObjectDoc,
    responses((status = 201, body = ObjectDoc), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_object(State(st): State<AppState>, c: ApiCaller, JsonBody(b): JsonBody<NewObject>) -> WebResult {
    let o = st.app.create_object(&c.actor, b).await?;
    Ok((StatusCode::CREATED, Json(object_json(&o, &c.actor))).into_response())
}

/// Add a field to an object (a real column).
#[utoipa::path(post, path = "/api/v1/meta/objects/{object}/fields", tag = "metadata",
    params(("object" = String, Path, description = "Object api name")),
    request_body = NewFieldDoc,
    responses((status = 201, body = FieldDoc), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_field(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(object): Path<String>,
    JsonBody(b): JsonBody<NewField>,
) -> WebResult {
    let f = st.app.add_field(&c.actor, &object, b).await?;
    Ok((StatusCode::CREATED, Json(field_json(&f))).into_response())
}

/// Change a field (rename, labels, required, unique, options, archive …).
#[utoipa::path(patch, path = "/api/v1/meta/objects/{object}/fields/{field}", tag = "metadata",
    params(("object" = String, Path, description = "Object api name"), ("field" = String, Path, description = "Field api name")),
    request_body = FieldPatchDoc,
    responses((status = 200, body = FieldDoc), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_field(
    State(st): State<AppState>,
    c: ApiCaller,
    Path((object, field)): Path<(String, String)>,
    JsonBody(b): JsonBody<FieldPatch>,
) -> WebResult<Json<JVal>> {
    let f = st.app.update_field(&c.actor, &object, &field, b).await?;
    Ok(Json(field_json(&f)))
}

/// The caller.
#[derive(Serialize, ToSchema)]
pub struct MeDoc {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub locale: String,
    pub time_zone: String,
    pub role: String,
    /// The API token's scopes (all of them for a browser session).
    pub scopes: Vec<String>,
}

/// Who is calling.
#[utoipa::path(get, path = "/api/v1/me", tag = "metadata", responses((status = 200, body = MeDoc), (status = 401, body = ErrorBody)))]
pub async fn me(State(st): State<AppState>, c: ApiCaller) -> WebResult<Json<MeDoc>> {
    let id = c.actor.user_id.ok_or_else(|| kehu_core::AppError::forbidden("auth.required"))?;
    let u = st.app.user_info(id).await?.ok_or_else(|| kehu_core::AppError::not_found("user.not_found"))?;
    Ok(Json(MeDoc {
        id: u.id,
        email: u.email,
        name: u.name,
        locale: u.locale,
        time_zone: u.time_zone,
        role: c.actor.role.key.clone(),
        scopes: c.scopes.iter().map(|s| s.key().to_string()).collect(),
    }))
}
