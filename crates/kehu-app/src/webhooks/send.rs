//! Sending webhook deliveries: a pump that leases due deliveries, sends them concurrently and
//! records each outcome (see the module documentation for the rules).

use super::guard::{check_literal, AllowList, GuardedResolver};
use super::DeliveryState;
use crate::work::{BoxFut, Pump};
use crate::{App, Result};
use futures_util::StreamExt;
use kehu_core::{new_id, now_micros, Uuid};
use kehu_db::Raw;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deliveries leased per round, and sent at once.
const ROUND: i64 = 256;
const CONCURRENCY: usize = 64;
/// Request timeout (connect + answer).
const TIMEOUT: Duration = Duration::from_secs(15);
/// Most bytes of a response body kept in the log.
const EXCERPT: usize = 1024;
/// Waits after each failed attempt (Standard Webhooks' example schedule, shortened to ≈ 42 h
/// in all); after the last, the delivery fails.
pub const RETRY_SECONDS: &[i64] = &[5, 300, 1800, 7200, 18000, 36000, 86400];

/// The HTTP client (rustls, no redirects, the guarded resolver) and the allow-list it reads.
pub struct Sender {
    client: reqwest::Client,
    allow: AllowList,
}

impl Sender {
    fn new() -> Result<Sender> {
        let allow = AllowList::default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(CONCURRENCY)
            .user_agent(concat!("Kehu-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { allow: allow.clone() }))
            .build()
            .map_err(|e| kehu_core::AppError::internal(format!("webhook client: {e}")))?;
        Ok(Sender { client, allow })
    }
}

/// The webhook pump of `kehu serve`.
pub(crate) const PUMP: Pump = Pump { name: "webhooks", tick };

fn tick(app: &App) -> BoxFut<'_, Result<usize>> {
    Box::pin(app.send_webhooks())
}

/// What one attempt came to.
struct Outcome {
    status: Option<u16>,
    latency_ms: i64,
    error: Option<String>,
    excerpt: Option<String>,
    retry_after: Option<i64>,
}

impl Outcome {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A leased delivery with its endpoint (read by column name; the endpoint may be gone).
struct DueRow {
    id: Uuid,
    endpoint_id: Uuid,
    body: String,
    attempts: i64,
    url: Option<String>,
    secret: Option<String>,
    old_secret: Option<String>,
    old_secret_until: Option<i64>,
    enabled: Option<bool>,
}

impl kehu_db::FromRow for DueRow {
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(DueRow {
            id: r.req_uuid("id")?,
            endpoint_id: r.req_uuid("endpoint_id")?,
            body: r.req_string("body")?,
            attempts: r.req_i64("attempts")?,
            url: r.string("url"),
            secret: r.string("secret"),
            old_secret: r.string("old_secret"),
            old_secret_until: r.i64("old_secret_until"),
            enabled: r.bool("enabled"),
        })
    }
}

struct Due {
    id: Uuid,
    endpoint: Uuid,
    body: String,
    attempts: i64,
    url: String,
    secret: String,
    old_secret: Option<String>,
}

impl App {
    fn webhook_sender(&self) -> Result<&Sender> {
        if let Some(s) = self.webhook_client.get() {
            return Ok(s);
        }
        let s = Sender::new()?;
        Ok(self.webhook_client.get_or_init(|| s))
    }

    /// Send what is due (one round of at most `ROUND` deliveries); returns how many.
    pub async fn send_webhooks(&self) -> Result<usize> {
        let sender = self.webhook_sender()?;
        let token = new_id();
        let now = now_micros();
        // Longer than one request can take, so no other server sends it meanwhile.
        let until = now + self.lease_micros().max(2 * TIMEOUT.as_micros() as i64);
        let mut tx = self.db.begin().await?;
        let ids =
            kehu_db::work::lease(&mut tx, &kehu_db::work::WEBHOOK_DELIVERIES, token, until, now, None, ROUND).await?;
        tx.commit().await?;
        if ids.is_empty() {
            return Ok(0);
        }
        sender.allow.set(self.webhook_allow_hosts().await?);
        let mut due = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let list = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
            let mut vals: Vec<sea_query::Value> = vec![token.into()];
            vals.extend(chunk.iter().map(|id| (*id).into()));
            let rows: Vec<DueRow> = self
                .db
                .rows(&Raw::new(
                    format!(
                        "SELECT d.id AS id, d.endpoint_id AS endpoint_id, d.body AS body, d.attempts AS attempts, \
                         e.url AS url, e.secret AS secret, e.old_secret AS old_secret, \
                         e.old_secret_until AS old_secret_until, e.enabled AS enabled FROM webhook_deliveries d \
                         LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                         WHERE d.lease_token = $1 AND d.id IN ({list})"
                    ),
                    vals,
                ))
                .await?;
            for r in rows {
                let (id, endpoint) = (r.id, r.endpoint_id);
                match (r.url, r.secret, r.enabled) {
                    (Some(url), Some(secret), Some(true)) => {
                        let old = r.old_secret.filter(|_| r.old_secret_until.is_some_and(|until| until > now));
                        due.push(Due { id, endpoint, body: r.body, attempts: r.attempts, url, secret, old_secret: old })
                    }
                    // The endpoint was disabled or deleted: the delivery stops here.
                    _ => {
                        self.db
                            .write(&Raw::new(
                                "UPDATE webhook_deliveries SET state = 'cancelled', lease_until = NULL, \
                                 last_error = 'webhook.endpoint_disabled' WHERE id = $1 AND lease_token = $2",
                                vec![id.into(), token.into()],
                            ))
                            .await?;
                    }
                }
            }
        }
        let n = due.len();
        let results: Vec<(Due, Outcome)> = futures_util::stream::iter(due)
            .map(|d| async move {
                let o = attempt(sender, &d).await;
                (d, o)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        self.record_outcomes(token, &results).await?;
        Ok(n)
    }

    /// An endpoint just turned failing: every active administrator gets an e-mail in their
    /// language with the link to its delivery log (queued in this transaction, when a mail
    /// server is configured; the admin page shows the state either way).
    async fn tell_admins(&self, tx: &mut kehu_db::Tx, d: &Due, error: &str) -> Result<()> {
        if !self.mail_enabled() {
            return Ok(());
        }
        let base = self.setting("base_url").await?.unwrap_or_default();
        let link = format!("{base}/admin/webhooks/{}", d.endpoint);
        let admins = tx
            .all(&Raw::new(
                "SELECT u.email, u.locale FROM users u JOIN roles r ON r.id = u.role_id \
                 WHERE r.key = 'admin' AND u.is_active = $1",
                vec![true.into()],
            ))
            .await?;
        for a in admins {
            let (Some(to), locale) = (a.string(0), a.string(1).unwrap_or_default()) else { continue };
            let (subject, body) = crate::mail::webhook_failing_mail(&locale, &d.url, error, &link);
            crate::mail::queue(tx, &to, &subject, &body, "webhook_failing").await?;
        }
        Ok(())
    }

    /// Write the outcomes of a round in one transaction: the attempts, each delivery's new
    /// state, and the endpoints that gave up (failing) or are gone (410: disabled).
    async fn record_outcomes(&self, token: Uuid, results: &[(Due, Outcome)]) -> Result<()> {
        let now = now_micros();
        let mut tx = self.db.begin().await?;
        let mut log = Vec::with_capacity(results.len());
        for (d, o) in results {
            let attempt = d.attempts + 1;
            log.push(vec![
                new_id().into(),
                d.id.into(),
                d.endpoint.into(),
                attempt.into(),
                now.into(),
                o.status.map(i64::from).into(),
                o.latency_ms.into(),
                o.error.clone().into(),
                o.excerpt.clone().into(),
            ]);
            let (state, next_at, delivered) = if o.success() {
                (DeliveryState::Delivered, now, Some(now))
            } else if o.status == Some(410) || attempt > RETRY_SECONDS.len() as i64 {
                (DeliveryState::Failed, now, None)
            } else {
                let wait = RETRY_SECONDS[(attempt - 1) as usize] * 1_000_000;
                let jitter = {
                    use rand::Rng;
                    rand::thread_rng().gen_range(0..=wait / 10)
                };
                let after = o.retry_after.map(|s| s.clamp(0, 86_400) * 1_000_000).unwrap_or(0);
                (DeliveryState::Pending, now + (wait + jitter).max(after), None)
            };
            let error = o.error.clone().or_else(|| o.status.filter(|_| !o.success()).map(|s| format!("HTTP {s}")));
            tx.exec(&Raw::new(
                "UPDATE webhook_deliveries SET state = $1, attempts = $2, next_at = $3, delivered_at = $4, \
                 last_status = $5, last_latency_ms = $6, last_error = $7, lease_until = NULL \
                 WHERE id = $8 AND lease_token = $9",
                vec![
                    state.as_str().into(),
                    attempt.into(),
                    next_at.into(),
                    delivered.into(),
                    o.status.map(i64::from).into(),
                    o.latency_ms.into(),
                    error.clone().into(),
                    d.id.into(),
                    token.into(),
                ],
            ))
            .await?;
            if o.status == Some(410) {
                tx.exec(&Raw::new(
                    "UPDATE webhook_endpoints SET enabled = $1, state = 'gone', last_error = 'HTTP 410', \
                     updated_at = $2 WHERE id = $3",
                    vec![false.into(), now.into(), d.endpoint.into()],
                ))
                .await?;
            } else if state == DeliveryState::Failed {
                let turned = tx
                    .exec(&Raw::new(
                        "UPDATE webhook_endpoints SET state = 'failing', failing_since = $1, last_error = $2, \
                         updated_at = $1 WHERE id = $3 AND state = 'ok'",
                        vec![now.into(), error.clone().into(), d.endpoint.into()],
                    ))
                    .await?;
                if turned == 1 {
                    self.tell_admins(&mut tx, d, error.as_deref().unwrap_or("")).await?;
                } else {
                    tx.exec(&Raw::new(
                        "UPDATE webhook_endpoints SET last_error = $1, updated_at = $2 WHERE id = $3",
                        vec![error.into(), now.into(), d.endpoint.into()],
                    ))
                    .await?;
                }
            } else if o.success() {
                tx.exec(&Raw::new(
                    "UPDATE webhook_endpoints SET state = 'ok', failing_since = NULL WHERE id = $1 AND state = 'failing'",
                    vec![d.endpoint.into()],
                ))
                .await?;
            }
        }
        let insert = kehu_db::InsertInto::new(
            "webhook_attempts",
            ["id", "delivery_id", "endpoint_id", "attempt", "at", "status", "latency_ms", "error", "excerpt"],
        );
        tx.exec_pipeline(insert.statements(tx.backend(), log)).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// One attempt: the signed POST, its answer (status, `Retry-After`, the start of the body).
async fn attempt(sender: &Sender, d: &Due) -> Outcome {
    let started = Instant::now();
    let fail = |e: String| Outcome {
        status: None,
        latency_ms: started.elapsed().as_millis() as i64,
        error: Some(e.chars().take(500).collect()),
        excerpt: None,
        retry_after: None,
    };
    let host = url::Url::parse(&d.url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    if let Err(code) = check_literal(&host, &sender.allow) {
        return fail(code.into());
    }
    let ts = now_micros() / 1_000_000;
    let id = d.id.to_string();
    let mut sigs: Vec<String> = super::sign(&d.secret, &id, ts, d.body.as_bytes()).into_iter().collect();
    if let Some(old) = &d.old_secret {
        sigs.extend(super::sign(old, &id, ts, d.body.as_bytes()));
    }
    let req = sender
        .client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sigs.join(" "))
        .body(d.body.clone());
    let mut res = match req.send().await {
        Ok(r) => r,
        Err(e) => return fail(describe(&e)),
    };
    let status = res.status().as_u16();
    let retry_after =
        res.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let mut excerpt = Vec::new();
    // Read at most EXCERPT bytes; a huge or endless body is not read further.
    while excerpt.len() < EXCERPT {
        match res.chunk().await {
            Ok(Some(c)) => excerpt.extend_from_slice(&c[..c.len().min(EXCERPT - excerpt.len())]),
            _ => break,
        }
    }
    Outcome {
        status: Some(status),
        latency_ms: started.elapsed().as_millis() as i64,
        error: None,
        excerpt: (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned()),
        retry_after,
    }
}

/// A client error in words for the log: the guard's refusal, a timeout, a refused connection.
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    if msg.contains("address not allowed") {
        "webhook.address_not_allowed".into()
    } else if e.is_timeout() {
        "webhook.timeout".into()
    } else {
        msg
    }
}
