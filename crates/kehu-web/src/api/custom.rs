//! Customisation routes of the metadata API: edit an object, delete (archive) and restore a
//! custom object, and put an object's fields in order. Each needs the `admin` scope and a role
//! that manages metadata; the checks themselves live in `kehu-app`.

use super::meta::object_json;
use super::{ErrorBody, JsonBody};
use crate::ctx::ApiCaller;
use crate::error::WebResult;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use kehu_app::metadata::ObjectPatch;
use serde::Deserialize;
use serde_json::Value as JVal;
use utoipa::{IntoParams, ToSchema};

/// `PATCH /api/v1/meta/objects/{object}` (absent members stay as they are)
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ObjectPatchDoc {
    label: Option<super::meta::LabelDoc>,
    plural: Option<super::meta::LabelDoc>,
    /// box, building, user, users, tree, mail, globe, key, shield, code, home, settings
    icon: Option<String>,
}

/// Edit an object's labels and icon.
#[utoipa::path(patch, path = "/api/v1/meta/objects/{object}", tag = "metadata",
    params(("object" = String, Path, description = "Object api name")),
    request_body = ObjectPatchDoc,
    responses((status = 200, body = super::meta::ObjectDoc), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_object(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(object): Path<String>,
    JsonBody(b): JsonBody<ObjectPatch>,
) -> WebResult<Json<JVal>> {
    let o = st.app.edit_object(&c.actor, &object, b).await?;
    Ok(Json(object_json(&o, &c.actor)))
}

#[derive(Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// The object's api name or label, repeated as confirmation.
    confirm: String,
}

/// Delete a custom object: archived (gone from the API, lists and search; table and records
/// kept) and restorable. Standard objects cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/meta/objects/{object}", tag = "metadata",
    params(("object" = String, Path, description = "Object api name"), DeleteQuery),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete_object(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(object): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> WebResult {
    st.app.delete_object(&c.actor, &object, &q.confirm).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Bring a deleted custom object back with its records.
#[utoipa::path(post, path = "/api/v1/meta/objects/{object}/restore", tag = "metadata",
    params(("object" = String, Path, description = "Object api name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn restore_object(State(st): State<AppState>, c: ApiCaller, Path(object): Path<String>) -> WebResult {
    st.app.restore_object(&c.actor, &object).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /api/v1/meta/objects/{object}/fields/order`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldOrder {
    /// Field api names in their new order; fields left out follow in their current order.
    order: Vec<String>,
}

/// Put an object's fields in order (forms and default list columns follow it).
#[utoipa::path(put, path = "/api/v1/meta/objects/{object}/fields/order", tag = "metadata",
    params(("object" = String, Path, description = "Object api name")),
    request_body = FieldOrder,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reorder_fields(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(object): Path<String>,
    JsonBody(b): JsonBody<FieldOrder>,
) -> WebResult {
    st.app.reorder_fields(&c.actor, &object, &b.order).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
