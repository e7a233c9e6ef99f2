//! Migration 15: the module platform's background work (issue #14).
//!
//! - `jobs` gain a lease with a fencing token (`lease_token`, `lease_until`), retries with
//!   backoff (`attempts`, `run_after`): a worker owns a job only while its lease holds, and a
//!   batch commits only if the token is still its own.
//! - `mails` gain a lease, so a message being sent (however slow the SMTP server) is not
//!   taken by a second server.
//! - `schedule_runs`: one row per named periodic task and period, unique, with a lease; the
//!   server that inserts it runs the period, a crashed run is taken over after its lease.
//! - `outbox_consumed`: each outbox consumer's delivery state per event (consumer, event).
//!   Once every consumer has taken an event, the event is marked processed and these rows go.
//! - Webhooks: `webhook_endpoints`, `webhook_deliveries` (one per endpoint and event, its id
//!   is the stable `webhook-id`), `webhook_attempts` (the delivery log).

use crate::conn::{DbResult, Tx};
use crate::ddl::column;
use crate::migrate::{index, T};
use kehu_core::meta::Storage;
use sea_query::{Alias, Table};

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    // One column per ALTER: SQLite takes no more.
    for (table, name, s, default) in [
        ("jobs", "attempts", Storage::BigInt, Some(0i64)),
        ("jobs", "run_after", Storage::BigInt, Some(0)),
        ("jobs", "lease_until", Storage::BigInt, None),
        ("jobs", "lease_token", Storage::Uuid, None),
        ("mails", "lease_until", Storage::BigInt, None),
    ] {
        let mut c = column(b, name, s);
        match default {
            Some(d) => c.not_null().default(d),
            None => c.null(),
        };
        let sql = Table::alter().table(Alias::new(table)).add_column(c).to_owned().build_any(b.schema_builder());
        tx.ddl(&sql).await?;
    }
    let tables = [
        T::new(b, "schedule_runs")
            .id()
            .text("name")
            .text("period_key")
            .uuid("token")
            .text("state")
            .int("started_at")
            .int("lease_until")
            .int_null("finished_at")
            .int("attempts")
            .text_null("error"),
        T::new(b, "outbox_consumed").text("consumer").uuid("event_id").int("at"),
        T::new(b, "webhook_endpoints")
            .id()
            .text("url")
            .text("description")
            .text("objects")
            .text("events")
            .text("secret")
            .text_null("old_secret")
            .int_null("old_secret_until")
            .bool("enabled", true)
            .text("state")
            .int_null("failing_since")
            .text_null("last_error")
            .uuid_null("created_by")
            .int("created_at")
            .int("updated_at"),
        T::new(b, "webhook_deliveries")
            .id()
            .uuid("endpoint_id")
            .uuid_null("event_id")
            .text("event")
            .text("body")
            .text("state")
            .int("attempts")
            .int("next_at")
            .int_null("lease_until")
            .uuid_null("lease_token")
            .int_null("last_status")
            .int_null("last_latency_ms")
            .text_null("last_error")
            .int("created_at")
            .int_null("delivered_at"),
        T::new(b, "webhook_attempts")
            .id()
            .uuid("delivery_id")
            .uuid("endpoint_id")
            .int("attempt")
            .int("at")
            .int_null("status")
            .int("latency_ms")
            .text_null("error")
            .text_null("excerpt"),
    ];
    for t in &tables {
        tx.ddl(&t.sql()).await?;
    }
    for sql in [
        index(b, "jobs", "due", &["state", "run_after"], false),
        index(b, "schedule_runs", "period", &["name", "period_key"], true),
        index(b, "schedule_runs", "started", &["name", "started_at"], false),
        index(b, "outbox_consumed", "event", &["event_id", "consumer"], true),
        index(b, "outbox", "processed", &["processed_at"], false),
        index(b, "webhook_deliveries", "due", &["state", "next_at"], false),
        index(b, "webhook_deliveries", "endpoint", &["endpoint_id", "created_at"], false),
        index(b, "webhook_deliveries", "event", &["event_id", "endpoint_id"], true),
        index(b, "webhook_attempts", "delivery", &["delivery_id", "attempt"], false),
        index(b, "webhook_attempts", "endpoint", &["endpoint_id", "at"], false),
    ] {
        tx.ddl(&sql).await?;
    }
    Ok(())
}
