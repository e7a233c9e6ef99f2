//! Operations and the API surface: health, readiness, metrics, security headers, request ids,
//! the OpenAPI document against the router (nothing undocumented) and its snapshot, and logs
//! that never contain a password, token or session id.

use crate::support::*;
use axum::http::{Method, StatusCode};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

async fn health_ready_metrics_headers(t: TestWeb) {
    let b = t.browser();
    let h = b.get("/healthz").await;
    assert_eq!((h.status, h.json()["status"].as_str()), (StatusCode::OK, Some("ok")));
    let r = b.get("/readyz").await;
    assert_eq!((r.status, r.json()["status"].as_str()), (StatusCode::OK, Some("ready")));
    let csp = h.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(h.headers.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(h.headers.get("referrer-policy").unwrap(), "same-origin");
    assert_eq!(h.headers.get("x-request-id").unwrap().len(), 32);
    // Metrics: refused to a remote client, open to a local one, with per-route figures.
    assert_eq!(b.get("/metrics").await.status, StatusCode::FORBIDDEN);
    let mut local = t.browser();
    local.addr = "127.0.0.1:9999".parse().unwrap();
    local.get("/login").await;
    local.get("/login").await;
    let m = local.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.body.contains("kehu_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"),
        "{}",
        m.body
    );
    assert!(m.body.contains("kehu_http_request_duration_seconds_count{route=\"/login\"}"));
    assert!(m.body.contains("kehu_db_pool_connections{state=\"open\"}"));
    assert!(m.body.contains("kehu_queue_depth{queue=\"outbox\"} 0"));
    assert!(m.body.contains("kehu_queue_depth{queue=\"webhooks\"} 0"));
    assert!(m.body.contains("kehu_outbox_consumer_depth{consumer=\"webhooks\"} 0"), "{}", m.body);
    assert!(m.body.contains("kehu_outbox_consumer_age_seconds{consumer=\"webhooks\"} 0"));
    // Unknown routes: a translated 404, JSON under /api.
    assert_eq!(b.get("/nowhere").await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.get("/api/v1/contact/not-an-id").await.status, StatusCode::UNAUTHORIZED);
    // Assets are served with long caching under hashed names.
    let page = t.browser().get("/setup").await.body;
    let css = &page[page.find("/assets/app.").unwrap()..];
    let css = &css[..css.find('"').unwrap()];
    let a = b.get(css).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers.get("cache-control").unwrap().to_str().unwrap().contains("immutable"));
}
both!(health_ready_metrics_headers);

/// Every documented operation is routed (the reverse holds by construction: API routes are
/// only registered through `OpenApiRouter`, which this test also checks in the source).
#[tokio::test]
async fn openapi_matches_router_and_snapshot() {
    let t = sqlite().await;
    let (_, doc) = kehu_web::api_routes();
    let doc = serde_json::to_value(&doc).unwrap();
    let b = t.browser();
    let mut n = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{object}", "contact")
                .replace("{id}", "0193a5b4-0000-7000-8000-000000000000")
                .replace("{field}", "name");
            let m: Method = method.to_uppercase().parse().unwrap();
            let r = b.send(m, &concrete, &[], axum::body::Body::empty()).await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} documented but not routed");
            assert!(!r.body.contains("route.not_found"), "{method} {path} documented but not routed");
            n += 1;
        }
    }
    assert!(n >= 15, "{n} operations");
    let router_src = include_str!("../src/router.rs");
    for prefix in ["\"/api/v1", "\"/healthz", "\"/readyz", "\"/metrics", "\"/api/openapi"] {
        assert!(!router_src.contains(&format!(".route({prefix}")), "{prefix} must be registered through OpenApiRouter");
    }
    // The readable docs page (no script) lists the typed paths, for signed-in users only.
    assert_eq!(b.get("/api/docs").await.location(), "/login");
    assert_eq!(b.get("/api/openapi.json").await.status, StatusCode::UNAUTHORIZED);
    let b = t.admin().await;
    let docs = b.get("/api/docs").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(
        docs.body.contains("/api/v1/contact/{id}") && !docs.body.contains("<script>"),
        "docs page, no inline script"
    );
    // The full document for a fresh instance, snapshotted so API drift is reviewed.
    let full = kehu_web::api::openapi::document(&doc, &t.app.schema().await.unwrap());
    insta::assert_json_snapshot!("openapi", full, {".info.version" => "[version]"});
}

/// A log sink shared by the whole test binary.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = Sink::default();
        let s = sink.clone();
        let sub = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(move || s.clone())
            .json()
            .finish();
        let _ = tracing::subscriber::set_global_default(sub);
        sink
    })
}

async fn secrets_never_logged(t: TestWeb) {
    let sink = logs();
    let admin = t.admin().await;
    let session = admin.cookie("kehu_session").unwrap();
    let csrf = admin.csrf.lock().unwrap().clone();
    let rep = t.user("rep@kehu.test", "sales_rep").await;
    let b = t.browser();
    b.get("/login").await;
    b.post_form("/login", &[("email", "rep@kehu.test"), ("password", "a wrong password value")]).await;
    let (token, _) = t.app.create_api_token(rep, "x", &kehu_app::auth::TokenScope::ALL, None).await.unwrap();
    t.api(&token).get("/api/v1/me").await;
    t.api("kehu_forged-token-value-123").get("/api/v1/me").await;
    let link = t.app.password_link(&kehu_core::perm::Actor::system(), rep, "http://x").await.unwrap();
    let reset_token = link.rsplit('/').next().unwrap().to_string();
    let f = t.browser();
    f.get(&format!("/password/reset/{reset_token}")).await;
    f.post_form(&format!("/password/reset/{reset_token}"), &[("password", "new secret passphrase 99")]).await;
    let text = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    assert!(text.contains("\"route\":\"/password/reset/{token}\""), "requests are logged (by route)");
    for secret in [
        ADMIN_PW,
        USER_PW,
        "a wrong password value",
        "new secret passphrase 99",
        &session,
        &csrf,
        &token,
        "kehu_forged-token-value-123",
        &reset_token,
    ] {
        assert!(!text.contains(secret), "a secret reached the logs: {secret}");
    }
}
both!(secrets_never_logged);

/// Guard rail (issue #14): the web layer never reaches the database itself — every read and
/// write goes through `kehu-app`, where permissions are checked. Only the conversion of a
/// storage error into a web error may name `kehu_db`.
#[test]
fn the_web_layer_does_not_touch_the_database() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 20, "walked the sources");
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let allowed = f.ends_with("error.rs") && code.contains("kehu_db::DbError");
            if !allowed
                && (code.contains(".db.")
                    || code.contains(".db)")
                    || code.contains("kehu_db::")
                    || code.contains("sqlx"))
            {
                found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "the web layer reaches the database:\n{}", found.join("\n"));
}
