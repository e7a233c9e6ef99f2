//! Field history and the recycle bin through the API: a record's changes (newest first, paged
//! with `before`), reverting one change (`If-Match` required), and purging a deleted record
//! for good (administrators). The engine checks permissions, masking and versions.

use super::records::{if_match, parse_id, precondition, with_etag, RecordOut};
use super::ErrorBody;
use crate::ctx::ApiCaller;
use crate::error::WebResult;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use kehu_core::{AppError, Uuid};
use serde::{Deserialize, Serialize};
use serde_json::Value as JVal;
use utoipa::{IntoParams, ToSchema};

/// One change of one field.
#[derive(Serialize, ToSchema)]
pub struct ChangeOut {
    pub id: Uuid,
    /// The field's api name.
    pub field: String,
    /// The value before the change (masked like the record's own values).
    #[schema(value_type = Object)]
    pub old: JVal,
    #[schema(value_type = Object)]
    pub new: JVal,
    /// When, in microseconds since 1970 (UTC).
    pub at: i64,
    /// The user who made the change (none: Kehu itself).
    pub by: Option<Uuid>,
}

/// A page of changes; `before` fetches older ones.
#[derive(Serialize, ToSchema)]
pub struct HistoryOut {
    pub changes: Vec<ChangeOut>,
    pub before: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct HistoryParams {
    /// Only this field's changes (api name).
    pub field: Option<String>,
    /// The `before` of the previous page.
    pub before: Option<String>,
    /// At most this many changes (1–200, default 50).
    pub limit: Option<u64>,
}

/// A record's field history.
#[utoipa::path(get, path = "/api/v1/{object}/{id}/history", tag = "records",
    params(("object" = String, Path, description = "Object api name"), ("id" = Uuid, Path), HistoryParams),
    responses((status = 200, body = HistoryOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn record_history(
    State(st): State<AppState>,
    c: ApiCaller,
    Path((object, id)): Path<(String, String)>,
    Query(p): Query<HistoryParams>,
) -> WebResult {
    let h = st
        .app
        .field_history(
            &c.actor,
            &object,
            parse_id(&id)?,
            p.field.as_deref(),
            p.before.as_deref(),
            p.limit.unwrap_or(50),
        )
        .await?;
    let changes = h
        .changes
        .into_iter()
        .map(|x| ChangeOut { id: x.id, field: x.field.api_name.clone(), old: x.old, new: x.new, at: x.at, by: x.by })
        .collect();
    Ok(Json(HistoryOut { changes, before: h.before }).into_response())
}

/// Set a field back to the value it had before one change (`If-Match`: the record's version).
#[utoipa::path(post, path = "/api/v1/{object}/{id}/history/{change}/revert", tag = "records",
    params(("object" = String, Path, description = "Object api name"), ("id" = Uuid, Path), ("change" = Uuid, Path),
        ("If-Match" = String, Header, description = "The record's version")),
    responses((status = 200, body = RecordOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 428, body = ErrorBody)))]
pub async fn revert_change(
    State(st): State<AppState>,
    c: ApiCaller,
    Path((object, id, change)): Path<(String, String, String)>,
    headers: axum::http::HeaderMap,
) -> WebResult {
    let version = if_match(&headers)?.ok_or_else(|| AppError::invalid("request.precondition_required"))?;
    let change: Uuid = change.parse().map_err(|_| AppError::not_found("history.not_found"))?;
    let r = st.app.revert_change(&c.actor, &object, parse_id(&id)?, change, version).await.map_err(precondition)?;
    Ok(with_etag(r, StatusCode::OK))
}

/// Delete a record of the recycle bin for good (administrators; it must be deleted first).
#[utoipa::path(post, path = "/api/v1/{object}/{id}/purge", tag = "records",
    params(("object" = String, Path, description = "Object api name"), ("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn purge_record(
    State(st): State<AppState>,
    c: ApiCaller,
    Path((object, id)): Path<(String, String)>,
) -> WebResult {
    let res = st.app.purge_many(&c.actor, &[(object, parse_id(&id)?)]).await?;
    match res.into_iter().next().and_then(|r| r.error) {
        Some(e) => Err(e.into()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
