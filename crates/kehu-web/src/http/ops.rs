//! Operations: `/healthz` (the process is up), `/readyz` (database reachable, migrations
//! current), `/metrics` (Prometheus text: requests and latencies per route, the database pool,
//! queue depths).

use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", security(()), responses((status = 200, description = "Up")))]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
// `backup` tells when the last backup succeeded (`"never"` without one); it informs, it does
// not decide readiness.
#[utoipa::path(get, path = "/readyz", tag = "ops", security(()),
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready")))]
pub async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    match st.app.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": st.app.backend_name(), "backup": backup_detail(&st).await})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not_ready", "code": e.code})))
        }
    }
}

// archive and backup (issue #5)
async fn backup_detail(st: &AppState) -> serde_json::Value {
    match st.app.last_backup().await {
        Ok(Some(b)) => {
            let at = b.finished_at.unwrap_or(b.started_at);
            json!({
                "last_success": chrono::DateTime::from_timestamp_micros(at).map(|d| d.to_rfc3339()),
                "age_seconds": (kehu_core::now_micros() - at).max(0) / 1_000_000,
                "size": b.size,
            })
        }
        Ok(None) => json!("never"),
        Err(e) => {
            tracing::warn!(error = %e, "reading the last backup");
            json!("unknown")
        }
    }
}

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct RouteStats {
    counts: BTreeMap<(String, u16), u64>,
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

/// Request counters and latency histograms per route (template, never the raw path).
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let Ok(mut m) = self.routes.lock() else { return };
        let s = m.entry(route.to_string()).or_default();
        *s.counts.entry((method.to_string(), status)).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
        s.sum += secs;
        s.total += 1;
    }

    fn render(&self, out: &mut String) {
        let Ok(m) = self.routes.lock() else { return };
        out.push_str("# HELP kehu_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE kehu_http_requests_total counter\n");
        for (route, s) in m.iter() {
            for ((method, status), n) in &s.counts {
                out.push_str(&format!(
                    "kehu_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}\n",
                    esc(route)
                ));
            }
        }
        out.push_str("# HELP kehu_http_request_duration_seconds Server time per request.\n");
        out.push_str("# TYPE kehu_http_request_duration_seconds histogram\n");
        for (route, s) in m.iter() {
            let r = esc(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "kehu_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}\n",
                    s.buckets[i]
                ));
            }
            out.push_str(&format!(
                "kehu_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}\n",
                s.total
            ));
            out.push_str(&format!("kehu_http_request_duration_seconds_sum{{route=\"{r}\"}} {}\n", s.sum));
            out.push_str(&format!("kehu_http_request_duration_seconds_count{{route=\"{r}\"}} {}\n", s.total));
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Prometheus metrics. Served to local clients, or to anyone presenting the configured
/// `metrics_token` as a bearer token.
#[utoipa::path(get, path = "/metrics", tag = "ops", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format"), (status = 403, description = "Not a local client and no metrics token")))]
pub async fn metrics(State(st): State<AppState>, headers: HeaderMap, ctx: crate::ctx::Ctx) -> Response {
    let local = ctx.ip.as_deref().and_then(|ip| ip.parse::<std::net::IpAddr>().ok()).is_some_and(|ip| ip.is_loopback());
    let token_ok = st.cfg.metrics_token.as_deref().is_some_and(|t| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| kehu_app::auth::same_secret(given, t))
    });
    if !local && !token_ok {
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    }
    let mut out = String::new();
    st.metrics.render(&mut out);
    let (size, idle) = st.app.pool_stats();
    out.push_str(
        "# HELP kehu_db_pool_connections Database connections by state.\n# TYPE kehu_db_pool_connections gauge\n",
    );
    out.push_str(&format!(
        "kehu_db_pool_connections{{state=\"open\"}} {size}\nkehu_db_pool_connections{{state=\"idle\"}} {idle}\n"
    ));
    if let Ok(q) = st.app.queue_depths().await {
        out.push_str("# HELP kehu_queue_depth Unprocessed items per queue.\n# TYPE kehu_queue_depth gauge\n");
        for (name, n) in q {
            out.push_str(&format!("kehu_queue_depth{{queue=\"{name}\"}} {n}\n"));
        }
    }
    if let Ok(stats) = st.app.consumer_stats().await {
        out.push_str(
            "# HELP kehu_outbox_consumer_depth Outbox events a consumer has not taken yet.
\
             # TYPE kehu_outbox_consumer_depth gauge
",
        );
        for s in &stats {
            out.push_str(&format!("kehu_outbox_consumer_depth{{consumer=\"{}\"}} {}\n", s.name, s.depth));
        }
        out.push_str(
            "# HELP kehu_outbox_consumer_age_seconds Age of the oldest event a consumer has not taken.
\
             # TYPE kehu_outbox_consumer_age_seconds gauge
",
        );
        for s in &stats {
            out.push_str(&format!("kehu_outbox_consumer_age_seconds{{consumer=\"{}\"}} {}\n", s.name, s.age_seconds));
        }
    }
    let mut r = out.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}
