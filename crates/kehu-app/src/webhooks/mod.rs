//! Webhooks: the first outbox consumer (issue #14).
//!
//! - **Endpoints** (`webhook_endpoints`): a URL, the objects and events it wants (empty: all),
//!   a secret (`whsec_…`, shown once), enabled or not. Administrators manage them.
//! - **Fan-out** (`WebhookConsumer`): for every outbox event, one `webhook_deliveries` row
//!   per matching enabled endpoint, written in the consumer's transaction — so each endpoint
//!   gets each event exactly once as a delivery. The delivery's id is the `webhook-id` the
//!   receiver sees on every attempt: deduplicating by it makes delivery exactly once for them.
//! - **Sending** (`send.rs`, a pump): due deliveries are leased, sent concurrently, and the
//!   outcome recorded — [Standard Webhooks](https://www.standardwebhooks.com/) headers and
//!   signatures, 2xx only is success, redirects are failures, 410 disables the endpoint,
//!   `Retry-After` is honoured, 15 s timeout, retries after 5 s, 5 min, 30 min, 2 h, 5 h,
//!   10 h and 24 h with jitter, then the delivery fails and the endpoint is marked failing.
//!   A delivery is sent again only after a failed attempt (or a server that died while
//!   sending): at least once, with a stable id.
//! - **Guard** (`guard.rs`): only public addresses, unless the host is allow-listed.

mod guard;
mod send;

pub use guard::{is_public, AllowList};
pub use send::Sender;
pub(crate) use send::PUMP;

use crate::work::{BoxFut, Consumer};
use crate::{App, Result};
use base64::Engine;
use kehu_core::perm::Actor;
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::journal::PendingEvent;
use kehu_db::{FromRow, NamedRow, Raw, Tx};
use serde::{Deserialize, Serialize};

/// How long delivery logs are kept (days).
pub const LOG_RETENTION_DAYS: i64 = 30;

/// Longest URL accepted.
const MAX_URL: usize = 2048;

/// The setting holding the allow-listed hosts (one per line).
pub const ALLOW_SETTING: &str = "webhook_allow_hosts";

/// Events an endpoint can ask for.
pub const EVENTS: &[&str] =
    &["record.created", "record.updated", "record.deleted", "record.restored", "record.merged", "record.purged"];

crate::state_enum!(
    /// An endpoint's state: working, its deliveries gave up, or the receiver answered 410.
    EndpointState { Ok = "ok", Failing = "failing", Gone = "gone" }
);

crate::state_enum!(
    /// A delivery's state.
    DeliveryState { Pending = "pending", Delivered = "delivered", Failed = "failed", Cancelled = "cancelled" }
);

/// An endpoint as administrators see it (never its secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub objects: Vec<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    pub state: EndpointState,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// What an administrator sends to add or change an endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub objects: Vec<String>,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// One delivery as the log shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_at: i64,
    pub last_status: Option<i64>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: i64,
    pub at: i64,
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub excerpt: Option<String>,
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(b))
}

/// The Standard Webhooks signature `v1,<base64 HMAC-SHA256(id.timestamp.body)>` with `secret`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// An audit entry for an administrator's change to webhooks (no record: nil ids, the
/// endpoint named in the changes).
async fn audit(tx: &mut Tx, actor: &Actor, action: &str, changes: serde_json::Value) -> Result<()> {
    let e = kehu_db::journal::AuditEntry {
        at: now_micros(),
        actor: actor.user_id,
        object_id: Uuid::nil(),
        record_id: Uuid::nil(),
        action,
        changes,
    };
    kehu_db::journal::audit(tx, &[e]).await?;
    Ok(())
}

fn require_admin(actor: &Actor) -> Result<()> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden("permission.denied"))
    }
}

fn check_input(app_objects: &[String], input: &EndpointInput) -> Result<()> {
    let url = input.url.trim();
    let parsed = url::Url::parse(url).map_err(|_| AppError::field("url", "webhook.invalid_url"))?;
    if url.len() > MAX_URL
        || !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none_or(str::is_empty)
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(AppError::field("url", "webhook.invalid_url"));
    }
    if input.description.chars().count() > 200 {
        return Err(AppError::field("description", "field.too_long"));
    }
    for e in &input.events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(AppError::field("events", "webhook.unknown_event"));
        }
    }
    for o in &input.objects {
        if !app_objects.contains(o) {
            return Err(AppError::field("objects", "webhook.unknown_object"));
        }
    }
    Ok(())
}

fn to_text(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn list_of(r: &NamedRow, name: &str) -> Vec<String> {
    r.string(name).and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

impl FromRow for Endpoint {
    fn from_row(r: &NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(Endpoint {
            id: r.req_uuid("id")?,
            url: r.req_string("url")?,
            description: r.string("description").unwrap_or_default(),
            objects: list_of(r, "objects"),
            events: list_of(r, "events"),
            enabled: r.bool("enabled").unwrap_or(false),
            state: r.state("state")?,
            last_error: r.string("last_error"),
            created_at: r.req_i64("created_at")?,
        })
    }
}

const ENDPOINT_COLS: &str = "id, url, description, objects, events, enabled, state, last_error, created_at";

const DELIVERY_COLS: &str = "id, endpoint_id, event, state, attempts, next_at, last_status, last_latency_ms, \
     last_error, created_at, delivered_at";

impl FromRow for Delivery {
    fn from_row(r: &NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(Delivery {
            id: r.req_uuid("id")?,
            endpoint_id: r.req_uuid("endpoint_id")?,
            event: r.req_string("event")?,
            state: r.state("state")?,
            attempts: r.req_i64("attempts")?,
            next_at: r.req_i64("next_at")?,
            last_status: r.i64("last_status"),
            last_latency_ms: r.i64("last_latency_ms"),
            last_error: r.string("last_error"),
            created_at: r.req_i64("created_at")?,
            delivered_at: r.i64("delivered_at"),
        })
    }
}

impl FromRow for Attempt {
    fn from_row(r: &NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(Attempt {
            attempt: r.req_i64("attempt")?,
            at: r.req_i64("at")?,
            status: r.i64("status"),
            latency_ms: r.req_i64("latency_ms")?,
            error: r.string("error"),
            excerpt: r.string("excerpt"),
        })
    }
}

impl App {
    async fn object_names(&self) -> Result<Vec<String>> {
        Ok(self.schema().await?.objects().iter().map(|o| o.api_name.clone()).collect())
    }

    /// Add an endpoint; returns it with its secret, which is shown this once.
    pub async fn create_webhook(&self, actor: &Actor, input: &EndpointInput) -> Result<(Endpoint, String)> {
        require_admin(actor)?;
        check_input(&self.object_names().await?, input)?;
        let (id, secret, now) = (new_id(), new_secret(), now_micros());
        let mut tx = self.db.begin().await?;
        tx.exec(&Raw::new(
            "INSERT INTO webhook_endpoints (id, url, description, objects, events, secret, enabled, state, \
             created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'ok', $8, $9, $9)",
            vec![
                id.into(),
                input.url.trim().into(),
                input.description.trim().into(),
                to_text(&input.objects).into(),
                to_text(&input.events).into(),
                secret.clone().into(),
                input.enabled.into(),
                actor.user_id.into(),
                now.into(),
            ],
        ))
        .await?;
        audit(&mut tx, actor, "webhook.created", serde_json::json!({"id": id, "url": input.url.trim()})).await?;
        tx.commit().await?;
        Ok((self.webhook(actor, id).await?, secret))
    }

    /// Change an endpoint's URL, filters or enabled state (a re-enabled endpoint is `ok`).
    pub async fn update_webhook(&self, actor: &Actor, id: Uuid, input: &EndpointInput) -> Result<Endpoint> {
        require_admin(actor)?;
        check_input(&self.object_names().await?, input)?;
        let mut tx = self.db.begin().await?;
        let n = tx
            .exec(&Raw::new(
                "UPDATE webhook_endpoints SET url = $1, description = $2, objects = $3, events = $4, enabled = $5, \
                 state = CASE WHEN $5 THEN 'ok' ELSE state END, updated_at = $6 WHERE id = $7",
                vec![
                    input.url.trim().into(),
                    input.description.trim().into(),
                    to_text(&input.objects).into(),
                    to_text(&input.events).into(),
                    input.enabled.into(),
                    now_micros().into(),
                    id.into(),
                ],
            ))
            .await?;
        if n != 1 {
            return Err(AppError::not_found("webhook.not_found"));
        }
        audit(&mut tx, actor, "webhook.updated", serde_json::json!({"id": id})).await?;
        tx.commit().await?;
        self.webhook(actor, id).await
    }

    /// Delete an endpoint with its deliveries and log.
    pub async fn delete_webhook(&self, actor: &Actor, id: Uuid) -> Result<()> {
        require_admin(actor)?;
        let mut tx = self.db.begin().await?;
        let n = tx.exec(&Raw::new("DELETE FROM webhook_endpoints WHERE id = $1", vec![id.into()])).await?;
        if n != 1 {
            return Err(AppError::not_found("webhook.not_found"));
        }
        for t in ["webhook_deliveries", "webhook_attempts"] {
            tx.exec(&Raw::new(format!("DELETE FROM {t} WHERE endpoint_id = $1"), vec![id.into()])).await?;
        }
        audit(&mut tx, actor, "webhook.deleted", serde_json::json!({"id": id})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new secret, shown once. The old one keeps signing too for `overlap_hours` (the
    /// receiver accepts either while it switches): requests carry two signatures.
    pub async fn rotate_webhook_secret(&self, actor: &Actor, id: Uuid, overlap_hours: i64) -> Result<String> {
        require_admin(actor)?;
        let secret = new_secret();
        let now = now_micros();
        let mut tx = self.db.begin().await?;
        let n = tx
            .exec(&Raw::new(
                "UPDATE webhook_endpoints SET old_secret = secret, old_secret_until = $1, secret = $2, updated_at = $3 \
                 WHERE id = $4",
                vec![
                    (now + overlap_hours.clamp(0, 24 * 7) * 3_600_000_000).into(),
                    secret.clone().into(),
                    now.into(),
                    id.into(),
                ],
            ))
            .await?;
        if n != 1 {
            return Err(AppError::not_found("webhook.not_found"));
        }
        audit(&mut tx, actor, "webhook.secret_rotated", serde_json::json!({"id": id})).await?;
        tx.commit().await?;
        Ok(secret)
    }

    pub async fn webhook(&self, actor: &Actor, id: Uuid) -> Result<Endpoint> {
        require_admin(actor)?;
        self.db
            .row(&Raw::new(format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1"), vec![id.into()]))
            .await?
            .ok_or_else(|| AppError::not_found("webhook.not_found"))
    }

    pub async fn webhooks(&self, actor: &Actor) -> Result<Vec<Endpoint>> {
        require_admin(actor)?;
        Ok(self
            .db
            .rows(&Raw::new(format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints ORDER BY created_at"), vec![]))
            .await?)
    }

    /// Queue a `webhook.test` event for one endpoint ("send a test event").
    pub async fn test_webhook(&self, actor: &Actor, id: Uuid) -> Result<Delivery> {
        let ep = self.webhook(actor, id).await?;
        let delivery = new_id();
        let now = now_micros();
        let body = serde_json::json!({
            "type": "webhook.test",
            "timestamp": kehu_core::value::format_datetime(now),
            "data": {"endpoint": ep.id},
        });
        self.db
            .write(&Raw::new(
                "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event, body, state, attempts, next_at, \
                 created_at) VALUES ($1, $2, NULL, 'webhook.test', $3, 'pending', 0, $4, $4)",
                vec![delivery.into(), ep.id.into(), body.to_string().into(), now.into()],
            ))
            .await?;
        self.webhook_delivery(actor, delivery).await
    }

    /// The deliveries of an endpoint, newest first (optionally only one state).
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        endpoint: Uuid,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        require_admin(actor)?;
        Ok(self
            .db
            .rows(&Raw::new(
                format!(
                    "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2 = '' OR state = $2) \
                     ORDER BY created_at DESC, id DESC LIMIT $3"
                ),
                vec![endpoint.into(), state.unwrap_or("").into(), limit.clamp(1, 500).into()],
            ))
            .await?)
    }

    pub async fn webhook_delivery(&self, actor: &Actor, id: Uuid) -> Result<Delivery> {
        require_admin(actor)?;
        self.db
            .row(&Raw::new(format!("SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE id = $1"), vec![id.into()]))
            .await?
            .ok_or_else(|| AppError::not_found("webhook.delivery_not_found"))
    }

    /// The attempts of a delivery, first first.
    pub async fn webhook_attempts(&self, actor: &Actor, delivery: Uuid) -> Result<Vec<Attempt>> {
        require_admin(actor)?;
        Ok(self
            .db
            .rows(&Raw::new(
                "SELECT attempt, at, status, latency_ms, error, excerpt FROM webhook_attempts WHERE delivery_id = $1 \
                 ORDER BY attempt",
                vec![delivery.into()],
            ))
            .await?)
    }

    /// Send a delivery again now (same `webhook-id`), whatever its state. With `None`, every
    /// failed delivery of the endpoint. Returns how many were queued.
    pub async fn replay_webhook(&self, actor: &Actor, endpoint: Uuid, delivery: Option<Uuid>) -> Result<u64> {
        require_admin(actor)?;
        let now = now_micros();
        let n = match delivery {
            Some(d) => {
                self.db
                    .write(&Raw::new(
                        "UPDATE webhook_deliveries SET state = 'pending', next_at = $1, lease_until = NULL \
                         WHERE id = $2 AND endpoint_id = $3",
                        vec![now.into(), d.into(), endpoint.into()],
                    ))
                    .await?
            }
            None => {
                self.db
                    .write(&Raw::new(
                        "UPDATE webhook_deliveries SET state = 'pending', next_at = $1, lease_until = NULL \
                         WHERE endpoint_id = $2 AND state = 'failed'",
                        vec![now.into(), endpoint.into()],
                    ))
                    .await?
            }
        };
        if delivery.is_some() && n == 0 {
            return Err(AppError::not_found("webhook.delivery_not_found"));
        }
        Ok(n)
    }

    /// The hosts allowed to resolve to non-public addresses.
    pub async fn webhook_allow_hosts(&self) -> Result<Vec<String>> {
        Ok(self
            .setting(ALLOW_SETTING)
            .await?
            .map(|s| s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_lowercase).collect())
            .unwrap_or_default())
    }

    /// Set the allow-list (administrators; audited).
    pub async fn set_webhook_allow_hosts(&self, actor: &Actor, hosts: &[String]) -> Result<()> {
        require_admin(actor)?;
        let mut clean: Vec<String> = Vec::new();
        for h in hosts.iter().map(|h| h.trim().to_lowercase()).filter(|h| !h.is_empty()) {
            let bare = h.trim_matches(['[', ']']);
            if bare.len() > 253 || !bare.chars().all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c)) {
                return Err(AppError::field("hosts", "webhook.invalid_host"));
            }
            if !clean.contains(&h) {
                clean.push(h);
            }
        }
        let mut tx = self.db.begin().await?;
        Self::put_setting(&mut tx, ALLOW_SETTING, &clean.join("\n")).await?;
        audit(&mut tx, actor, "webhook.allow_hosts", serde_json::json!({"hosts": clean})).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The fan-out consumer (see the module documentation).
pub(crate) struct WebhookConsumer;

impl Consumer for WebhookConsumer {
    fn name(&self) -> &'static str {
        "webhooks"
    }
    fn handle<'a>(&'a self, _app: &'a App, tx: &'a mut Tx, events: &'a [PendingEvent]) -> BoxFut<'a, Result<()>> {
        Box::pin(fan_out(tx, events))
    }
}

async fn fan_out(tx: &mut Tx, events: &[PendingEvent]) -> Result<()> {
    let rows = tx
        .all(&Raw::new("SELECT id, objects, events FROM webhook_endpoints WHERE enabled = $1", vec![true.into()]))
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let endpoints: Vec<(Uuid, Vec<String>, Vec<String>)> = rows
        .iter()
        .filter_map(|r| {
            let list = |i| r.str(i).and_then(|s| serde_json::from_str::<Vec<String>>(s).ok()).unwrap_or_default();
            Some((r.uuid(0)?, list(1), list(2)))
        })
        .collect();
    let now = now_micros();
    let mut values = Vec::new();
    for e in events {
        let object = e.payload.get("object").and_then(|o| o.as_str()).unwrap_or("");
        let mut body = None;
        for (ep, objects, wanted) in &endpoints {
            if (!objects.is_empty() && !objects.iter().any(|o| o == object))
                || (!wanted.is_empty() && !wanted.iter().any(|w| w == &e.event))
            {
                continue;
            }
            let body = body.get_or_insert_with(|| {
                serde_json::json!({
                    "type": e.event,
                    "timestamp": kehu_core::value::format_datetime(e.created_at),
                    "data": e.payload,
                })
                .to_string()
            });
            values.push(vec![
                new_id().into(),
                (*ep).into(),
                e.id.into(),
                e.event.clone().into(),
                body.clone().into(),
                "pending".into(),
                0i64.into(),
                now.into(),
                now.into(),
            ]);
        }
    }
    let insert = kehu_db::InsertInto::new(
        "webhook_deliveries",
        ["id", "endpoint_id", "event_id", "event", "body", "state", "attempts", "next_at", "created_at"],
    );
    tx.exec_pipeline(insert.statements(tx.backend(), values)).await?;
    Ok(())
}
