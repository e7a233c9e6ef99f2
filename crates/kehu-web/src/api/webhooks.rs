//! Webhook endpoints through the API (administrators, `admin` scope): add (the secret is in
//! the answer, once), list, read, change, delete, rotate the secret, send a test event, the
//! delivery log and replays. The work is `kehu_app::webhooks`.

use super::{ErrorBody, JsonBody};
use crate::ctx::ApiCaller;
use crate::error::WebResult;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use kehu_app::webhooks::{Delivery, Endpoint, EndpointInput};
use kehu_core::Uuid;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An endpoint (its secret is never shown again after it was created or rotated).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EndpointDoc {
    id: Uuid,
    url: String,
    description: String,
    /// Objects whose events it gets (empty: all).
    objects: Vec<String>,
    /// Events it gets (empty: all): record.created, record.updated, record.deleted,
    /// record.restored, record.merged, record.purged.
    events: Vec<String>,
    enabled: bool,
    /// ok, failing (deliveries gave up), gone (the receiver answered 410 and it was disabled).
    state: String,
    last_error: Option<String>,
    /// Microseconds since 1970 (UTC).
    created_at: i64,
}

/// What to send to add or change an endpoint.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EndpointInputDoc {
    /// http(s) URL of a public address (private addresses only for allow-listed hosts).
    url: String,
    description: Option<String>,
    objects: Option<Vec<String>>,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// An endpoint with its signing secret (`whsec_…`), shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[schema(value_type = EndpointDoc)]
    endpoint: Endpoint,
    secret: String,
}

/// One delivery of the log.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeliveryDoc {
    /// Also the `webhook-id` header of every attempt.
    id: Uuid,
    endpoint_id: Uuid,
    event: String,
    /// pending, delivered, failed, cancelled
    state: String,
    attempts: i64,
    next_at: i64,
    last_status: Option<i64>,
    last_latency_ms: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

/// Add an endpoint. The answer holds its secret, which is not shown again.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = EndpointInputDoc,
    responses((status = 201, body = CreatedEndpoint), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_webhook(
    State(st): State<AppState>,
    c: ApiCaller,
    JsonBody(b): JsonBody<EndpointInput>,
) -> WebResult {
    let (endpoint, secret) = st.app.create_webhook(&c.actor, &b).await?;
    Ok((StatusCode::CREATED, Json(CreatedEndpoint { endpoint, secret })).into_response())
}

/// Every endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = [EndpointDoc]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_webhooks(State(st): State<AppState>, c: ApiCaller) -> WebResult<Json<Vec<Endpoint>>> {
    Ok(Json(st.app.webhooks(&c.actor).await?))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = EndpointDoc), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_webhook(State(st): State<AppState>, c: ApiCaller, Path(id): Path<Uuid>) -> WebResult<Json<Endpoint>> {
    Ok(Json(st.app.webhook(&c.actor, id).await?))
}

/// Change an endpoint (the whole input, as when adding). Enabling a failing or gone endpoint
/// makes it `ok` again.
#[utoipa::path(put, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)), request_body = EndpointInputDoc,
    responses((status = 200, body = EndpointDoc), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_webhook(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(id): Path<Uuid>,
    JsonBody(b): JsonBody<EndpointInput>,
) -> WebResult<Json<Endpoint>> {
    Ok(Json(st.app.update_webhook(&c.actor, id, &b).await?))
}

/// Delete an endpoint with its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(State(st): State<AppState>, c: ApiCaller, Path(id): Path<Uuid>) -> WebResult {
    st.app.delete_webhook(&c.actor, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct RotateQuery {
    /// Hours the old secret keeps signing beside the new one (0–168, default 24).
    overlap_hours: Option<i64>,
}

/// The signing secret, newly made (shown once); the old one keeps signing for a while.
#[derive(Serialize, ToSchema)]
pub struct Secret {
    secret: String,
}

/// Rotate the endpoint's secret.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate", tag = "webhooks", params(("id" = Uuid, Path), RotateQuery),
    responses((status = 200, body = Secret), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_webhook(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(id): Path<Uuid>,
    Query(q): Query<RotateQuery>,
) -> WebResult<Json<Secret>> {
    let secret = st.app.rotate_webhook_secret(&c.actor, id, q.overlap_hours.unwrap_or(24)).await?;
    Ok(Json(Secret { secret }))
}

/// Queue a `webhook.test` event for the endpoint.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 202, body = DeliveryDoc), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_webhook(State(st): State<AppState>, c: ApiCaller, Path(id): Path<Uuid>) -> WebResult {
    let d: Delivery = st.app.test_webhook(&c.actor, id).await?;
    Ok((StatusCode::ACCEPTED, Json(d)).into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct DeliveriesQuery {
    /// Only deliveries in this state (pending, delivered, failed, cancelled).
    state: Option<String>,
    /// At most this many (1–500, default 100).
    limit: Option<i64>,
}

/// The endpoint's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = Uuid, Path), DeliveriesQuery),
    responses((status = 200, body = [DeliveryDoc]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_deliveries(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(id): Path<Uuid>,
    Query(q): Query<DeliveriesQuery>,
) -> WebResult<Json<Vec<Delivery>>> {
    Ok(Json(st.app.webhook_deliveries(&c.actor, id, q.state.as_deref(), q.limit.unwrap_or(100)).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct ReplayQuery {
    /// Replay this delivery; without it, every failed delivery of the endpoint.
    delivery: Option<Uuid>,
}

/// How many deliveries were queued again.
#[derive(Serialize, ToSchema)]
pub struct Replayed {
    queued: u64,
}

/// Send a delivery again (same `webhook-id`), or all failed ones.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/replay", tag = "webhooks", params(("id" = Uuid, Path), ReplayQuery),
    responses((status = 200, body = Replayed), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn replay_webhook(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(id): Path<Uuid>,
    Query(q): Query<ReplayQuery>,
) -> WebResult<Json<Replayed>> {
    Ok(Json(Replayed { queued: st.app.replay_webhook(&c.actor, id, q.delivery).await? }))
}
