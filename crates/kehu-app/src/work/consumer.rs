//! Outbox consumers: each registered consumer takes every outbox event once.
//!
//! A consumer's batch is one transaction: take the consumer's lock (PostgreSQL: an advisory
//! lock tried without waiting, so one server at a time runs a consumer; SQLite: the single
//! writer), read up to `BATCH` events it has not taken, oldest first, let the consumer write
//! its effects, and record `(consumer, event)` in `outbox_consumed`. Effects and the record
//! commit together: an effect written in the transaction happens exactly once. Events every
//! registered consumer has taken are marked `processed_at` and their rows in
//! `outbox_consumed` deleted; housekeeping deletes processed events after
//! `OUTBOX_RETENTION_DAYS`.
//!
//! Order: events are taken by id, which is time-ordered (UUID v7); a record's later change
//! commits after its earlier one (the version check serialises them), so a consumer sees a
//! record's events in commit order as long as the servers' clocks agree.

use super::BoxFut;
use crate::{App, Result};
use kehu_db::journal::PendingEvent;
use kehu_db::{Raw, Tx};

/// Events per consumer transaction.
pub const BATCH: i64 = 500;

/// A consumer of the outbox. `handle` writes its effects for `events` inside `tx`.
pub trait Consumer: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn handle<'a>(&'a self, app: &'a App, tx: &'a mut Tx, events: &'a [PendingEvent]) -> BoxFut<'a, Result<()>>;
}

/// Depth and age of one consumer's backlog (for `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerStats {
    pub name: &'static str,
    pub depth: i64,
    /// Age of the oldest event not yet taken, in seconds (0 when none).
    pub age_seconds: i64,
}

/// A stable 63-bit key for the consumer's advisory lock.
fn lock_key(name: &str) -> i64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("kehu.consumer.{name}").as_bytes());
    i64::from_be_bytes([d[0] & 0x7f, d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

impl App {
    /// Run one batch of consumer `c`; returns how many events it took (0: nothing to do, or
    /// another server is running it).
    pub async fn run_consumer(&self, c: &dyn Consumer) -> Result<usize> {
        let mut tx = self.db.begin().await?;
        if !kehu_db::work::try_consumer_lock(&mut tx, lock_key(c.name())).await? {
            tx.rollback().await?;
            return Ok(0);
        }
        let events = kehu_db::journal::pending_for(&mut tx, c.name(), BATCH).await?;
        if events.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        c.handle(self, &mut tx, &events).await?;
        let now = kehu_core::now_micros();
        let rows = events.iter().map(|e| vec![c.name().into(), e.id.into(), now.into()]);
        tx.exec_pipeline(
            kehu_db::InsertInto::new("outbox_consumed", ["consumer", "event_id", "at"]).statements(tx.backend(), rows),
        )
        .await?;
        let consumers = crate::modules::consumers().len() as i64;
        let ids: Vec<sea_query::Value> = events.iter().map(|e| e.id.into()).collect();
        let list = (0..ids.len()).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ");
        let mut vals = vec![now.into(), consumers.into()];
        vals.extend(ids.iter().cloned());
        tx.exec(&Raw::new(
            format!(
                "UPDATE outbox SET processed_at = $1 WHERE id IN ({list}) AND \
                 (SELECT COUNT(*) FROM outbox_consumed c WHERE c.event_id = outbox.id) >= $2"
            ),
            vals,
        ))
        .await?;
        let list1 = (0..ids.len()).map(|i| format!("${}", i + 1)).collect::<Vec<_>>().join(", ");
        tx.exec(&Raw::new(
            format!(
                "DELETE FROM outbox_consumed WHERE event_id IN \
                 (SELECT id FROM outbox WHERE id IN ({list1}) AND processed_at IS NOT NULL)"
            ),
            ids,
        ))
        .await?;
        tx.commit().await?;
        Ok(events.len())
    }

    /// Run every consumer until none has anything left (tests; `kehu serve` runs them in
    /// loops of their own). Returns the events taken in all.
    pub async fn drain_consumers(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let mut n = 0;
            for c in crate::modules::consumers() {
                n += self.run_consumer(c.as_ref()).await?;
            }
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Backlog of every consumer: events not processed and not yet taken by it.
    pub async fn consumer_stats(&self) -> Result<Vec<ConsumerStats>> {
        let now = kehu_core::now_micros();
        let mut out = Vec::new();
        for c in crate::modules::consumers() {
            let r = self
                .db
                .one(&Raw::new(
                    "SELECT COUNT(*), MIN(o.created_at) FROM outbox o WHERE o.processed_at IS NULL AND NOT EXISTS \
                     (SELECT 1 FROM outbox_consumed c WHERE c.event_id = o.id AND c.consumer = $1)",
                    vec![c.name().into()],
                ))
                .await?;
            let depth = r.as_ref().and_then(|r| r.i64(0)).unwrap_or(0);
            let oldest = r.as_ref().and_then(|r| r.i64(1));
            out.push(ConsumerStats {
                name: c.name(),
                depth,
                age_seconds: oldest.map(|t| ((now - t) / 1_000_000).max(0)).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Delete processed outbox events older than the retention, 5,000 per statement.
    pub(crate) async fn prune_outbox(&self, now: i64) -> Result<u64> {
        let before = now - super::OUTBOX_RETENTION_DAYS * 86_400_000_000;
        let mut total = 0;
        loop {
            let n = self
                .db
                .write(&Raw::new(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE processed_at IS NOT NULL \
                     AND processed_at < $1 LIMIT 5000)",
                    vec![before.into()],
                ))
                .await?;
            total += n;
            if n < 5000 {
                return Ok(total);
            }
        }
    }
}
