//! `POST /api/v1/{object}/merge`: merge duplicates through the record engine (permissions,
//! versions, relations, history and the audit trail are the engine's).

use super::records::RecordOut;
use super::{ErrorBody, JsonBody};
use crate::ctx::ApiCaller;
use crate::error::WebResult;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Json};
use kehu_app::records::MergeRequest;
use kehu_core::Uuid;
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::ToSchema;

/// What to merge. Every record must still be at the version given, else `409` and nothing
/// is written.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The record that stays.
    pub survivor: Uuid,
    /// The records merged into it (1–4); they go to the recycle bin.
    pub merge: Vec<Uuid>,
    /// The version of every record, the survivor's included, e.g. `{"<id>": 3}`.
    #[schema(value_type = Object)]
    pub versions: HashMap<Uuid, i64>,
    /// For some fields, the record whose value the survivor keeps, e.g. `{"phone": "<id>"}`.
    /// Other fields keep the survivor's value, else the first merged record's; tags and
    /// multi-selects are combined.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub values: HashMap<String, Uuid>,
}

/// Merge duplicates into one record: related records of every object move to the survivor,
/// the merged records' history too; the merged records go to the recycle bin.
#[utoipa::path(post, path = "/api/v1/{object}/merge", tag = "records",
    params(("object" = String, Path, description = "Object api name")),
    request_body = MergeBody,
    responses((status = 200, body = RecordOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn merge_records(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(object): Path<String>,
    JsonBody(b): JsonBody<MergeBody>,
) -> WebResult {
    let req = MergeRequest { survivor: b.survivor, merge: b.merge, versions: b.versions, values: b.values };
    let r = st.app.merge(&c.actor, &object, &req).await?;
    let etag = format!("\"{}\"", r.version);
    let mut resp = Json(RecordOut::from(r)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}
