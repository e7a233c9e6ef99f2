//! The HTTP layer. For now: the operational endpoints (`/healthz`, `/readyz`) that a load
//! balancer and an operator need; pages and the JSON API build on this router.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use axum::Router;
use kehu_app::App;
use serde_json::json;
use std::sync::Arc;

/// Every route Kehu serves.
pub fn router(app: Arc<App>) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(app)
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    match app.ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready", "database": app.db.backend().name()}))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not_ready", "code": e.code})))
        }
    }
}
