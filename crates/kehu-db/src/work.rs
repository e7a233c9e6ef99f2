//! The dialect side of background work (issue #14): leasing rows of a queue table and
//! serialising an outbox consumer. PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so two
//! servers claiming at once take different rows without waiting on each other; SQLite has one
//! writer, whose `BEGIN IMMEDIATE` makes a claim atomic by itself.
//!
//! Table names here are fixed names of the core schema, never input.

use crate::conn::{Backend, DbResult, Raw, Tx};
use kehu_core::Uuid;
use sea_query::Value;

/// A queue table that can be leased: its name and the condition (SQL over bound values
/// starting at `$3`) that makes a row claimable, and the order rows are claimed in.
pub struct Queue {
    pub table: &'static str,
    pub ready: &'static str,
    pub order: &'static str,
}

/// Jobs: pending or running, due (`run_after`), and not leased (or the lease ran out).
/// `$3` = now.
pub const JOBS: Queue = Queue {
    table: "jobs",
    ready: "state IN ('pending', 'running') AND run_after <= $3 AND (lease_until IS NULL OR lease_until < $3)",
    order: "run_after, created_at",
};

/// Webhook deliveries: pending, due, and not leased. `$3` = now.
pub const WEBHOOK_DELIVERIES: Queue = Queue {
    table: "webhook_deliveries",
    ready: "state = 'pending' AND next_at <= $3 AND (lease_until IS NULL OR lease_until < $3)",
    order: "next_at, id",
};

/// Inside `tx`: lease up to `limit` ready rows of `queue` (optionally only row `only`) with
/// `token` until `until`; returns their ids. `extra` are bound after `$3` (e.g. now).
pub async fn lease(
    tx: &mut Tx,
    queue: &Queue,
    token: Uuid,
    until: i64,
    now: i64,
    only: Option<Uuid>,
    limit: i64,
) -> DbResult<Vec<Uuid>> {
    let lock = match tx.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let (only_sql, mut values): (&str, Vec<Value>) = match only {
        Some(id) => (" AND id = $4", vec![token.into(), until.into(), now.into(), id.into()]),
        None => ("", vec![token.into(), until.into(), now.into()]),
    };
    let limit_at = values.len() + 1;
    values.push(limit.into());
    let sql = format!(
        "UPDATE {t} SET lease_token = $1, lease_until = $2 WHERE id IN (SELECT id FROM {t} WHERE {ready}{only_sql} \
         ORDER BY {order} LIMIT ${limit_at}{lock}) RETURNING id",
        t = queue.table,
        ready = queue.ready,
        order = queue.order,
    );
    Ok(tx.all(&Raw::new(sql, values)).await?.iter().filter_map(|r| r.uuid(0)).collect())
}

/// Inside `tx`: whether this transaction may run consumer `key` now. PostgreSQL: a
/// transaction-scoped advisory lock, tried without waiting (another server holds it: skip).
/// SQLite: the write transaction already excludes every other writer.
pub async fn try_consumer_lock(tx: &mut Tx, key: i64) -> DbResult<bool> {
    match tx.backend() {
        Backend::Sqlite => Ok(true),
        Backend::Postgres => {
            let r = tx.one(&Raw::new("SELECT pg_try_advisory_xact_lock($1)", vec![key.into()])).await?;
            Ok(r.and_then(|r| r.bool(0)).unwrap_or(false))
        }
    }
}
