//! Background work: one framework with three shapes, used by every module (issue #14).
//!
//! - **Jobs** (`JobKind`, rows of `jobs`): typed kinds registered by modules; a worker leases
//!   a job with a fencing token (`jobs::Lease`) and every batch's transaction checks that the
//!   token is still its own, so a worker whose lease ran out cannot commit. PostgreSQL claims
//!   with `FOR UPDATE SKIP LOCKED`, SQLite's single writer claims alone. Internal errors are
//!   retried with exponential backoff and then fail the job with the error the user sees; a
//!   failing job never delays the others.
//! - **Schedules** (`Schedule`, rows of `schedule_runs`): named periodic tasks. The server that
//!   inserts the (name, period) row runs that period; a run whose server died is taken over
//!   when its lease runs out, so a period is never wedged and never run twice at once.
//! - **Outbox consumers** (`Consumer`, rows of `outbox_consumed`): each consumer takes every
//!   outbox event once, in id order, in a transaction that also writes its effects — so
//!   effects that commit with the delivery happen exactly once. Events every consumer took
//!   are marked processed and pruned after `OUTBOX_RETENTION_DAYS`.
//! - **Pumps**: loops that drain a queue of their own (webhook deliveries, mail), each item
//!   leased, so two servers never send one item at once.
//!
//! `spawn` starts all of it for `kehu serve`; tests drive the same functions directly.

mod consumer;
mod schedule;

pub use consumer::{Consumer, ConsumerStats};
pub(crate) use schedule::core_schedules;
pub use schedule::{Every, RunState, Schedule, ScheduleRun};

use crate::jobs::{JobRow, Lease};
use crate::{App, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed future, so kinds, schedules and consumers can be registered as trait objects.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A kind of job. `batch` runs one batch of a leased job: its transaction must first
/// `jobs::take` the lease (which renews it and fences out a worker whose lease ran out), and
/// it returns whether more work remains.
pub trait JobKind: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn batch<'a>(&'a self, app: &'a App, job: &'a JobRow, lease: &'a Lease) -> BoxFut<'a, Result<bool>>;
}

/// A loop over a queue of its own (webhook deliveries, outgoing mail): `tick` handles what is
/// due and returns how many items it handled (0: wait a moment before the next tick).
pub struct Pump {
    pub name: &'static str,
    pub tick: for<'a> fn(&'a App) -> BoxFut<'a, Result<usize>>,
}

/// Default lease of a job, a schedule run or a queue item.
pub const DEFAULT_LEASE_SECONDS: i64 = 30;

/// On SQLite, the most backlog (seconds) consumers leave while a job runs.
pub const CONSUMER_YIELD_SECONDS: i64 = 10;

/// How long a processed outbox event is kept (for replays and late consumers).
pub const OUTBOX_RETENTION_DAYS: i64 = 7;

impl App {
    /// The lease this server writes when it claims work (microseconds).
    pub fn lease_micros(&self) -> i64 {
        self.lease_micros.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Set the lease (`KEHU_LEASE_SECONDS`; tests of crashes shorten it). At least 1 s.
    pub fn set_lease_seconds(&self, seconds: i64) {
        self.lease_micros.store(seconds.max(1) * 1_000_000, std::sync::atomic::Ordering::Relaxed);
    }

    /// On SQLite, one writer: while a job holds its lease (an import builds each batch while
    /// the previous one commits, which only works when nothing else writes in between),
    /// consumers wait — for at most `CONSUMER_YIELD_SECONDS` of backlog, so events still flow.
    pub(crate) async fn consumers_yield(&self) -> bool {
        if self.db.backend() != kehu_db::Backend::Sqlite {
            return false;
        }
        let now = kehu_core::now_micros();
        let q = kehu_db::Raw::new(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE lease_until > $1 AND state = 'running'), \
             (SELECT MIN(created_at) FROM outbox WHERE processed_at IS NULL)",
            vec![now.into()],
        );
        match self.db.one(&q).await {
            Ok(Some(r)) => {
                let busy = r.i64(0).unwrap_or(0) > 0;
                let oldest = r.i64(1).unwrap_or(now);
                busy && now - oldest < CONSUMER_YIELD_SECONDS * 1_000_000
            }
            _ => false,
        }
    }

    /// On SQLite, `kehu serve` holds the data directory alone: a lease left in the database
    /// belongs to a process that is gone (or to a CLI command, whose next batch the fencing
    /// token then stops). Let go of them all so work resumes at once after a crash.
    pub async fn release_stale_leases(&self) -> Result<()> {
        if self.db.backend() == kehu_db::Backend::Sqlite {
            for sql in [
                "UPDATE jobs SET lease_until = NULL WHERE lease_until IS NOT NULL",
                "UPDATE mails SET lease_until = NULL WHERE lease_until IS NOT NULL",
                "UPDATE webhook_deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL",
                "UPDATE schedule_runs SET lease_until = 0 WHERE state = 'running'",
            ] {
                self.db.write(&kehu_db::Raw::new(sql, vec![])).await?;
            }
        }
        Ok(())
    }
}

/// Start the background work of `kehu serve`: the job worker, the schedule ticker, one loop
/// per outbox consumer and one per pump. Each loop logs its errors and carries on.
pub fn spawn(app: Arc<App>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    let jobs = app.clone();
    handles.push(tokio::spawn(async move {
        loop {
            match jobs.run_jobs().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "jobs"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }));
    let ticker = app.clone();
    handles.push(tokio::spawn(async move {
        loop {
            if let Err(e) = ticker.run_schedules(kehu_core::now_micros()).await {
                tracing::warn!(error = %e, "schedules");
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }));
    for c in crate::modules::consumers() {
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            loop {
                if app.consumers_yield().await {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                match app.run_consumer(c.as_ref()).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(consumer = c.name(), error = %e, "outbox consumer"),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    for p in crate::modules::pumps() {
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            loop {
                match (p.tick)(&app).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(pump = p.name, error = %e, "background"),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    handles
}
