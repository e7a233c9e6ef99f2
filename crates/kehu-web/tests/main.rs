//! kehu-web integration tests (one binary): the operational endpoints on a real app.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kehu_app::App;
use kehu_db::conn::ConnectOptions;
use tower::ServiceExt;

async fn get(app: std::sync::Arc<App>, path: &str) -> (StatusCode, serde_json::Value) {
    let res = kehu_web::router(app).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn health_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let app = App::open(&url, &ConnectOptions::default()).await.unwrap();
    let (s, body) = get(app.clone(), "/healthz").await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, body) = get(app.clone(), "/readyz").await;
    assert_eq!(
        (s, body["status"].as_str(), body["database"].as_str()),
        (StatusCode::OK, Some("ready"), Some("sqlite"))
    );
    // A database that went away makes the instance not ready.
    app.db.close().await;
    let (s, body) = get(app, "/readyz").await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("not_ready")));
}
