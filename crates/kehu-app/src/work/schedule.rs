//! Schedules: named periodic tasks run once per period across every server.
//!
//! Each period has a key (`every 10 min` → the number of the 10-minute slot since 1970;
//! `daily at 08:00` → the organisation's local date once 08:00 has passed there). The server
//! that inserts `(name, period_key)` into `schedule_runs` (a unique index) runs the period;
//! the others see the row and do nothing. While it runs, the row's lease is renewed; a row
//! still `running` after its lease ran out belongs to a server that died, and the next tick
//! takes it over (a new token, so the dead run could not finish it any more). A failed run
//! stays failed for its period: the next period tries again.

use super::BoxFut;
use crate::{App, Result};
use chrono::{Datelike, TimeZone, Timelike};
use kehu_core::{new_id, now_micros, Uuid};
use kehu_db::{DbError, Raw};

/// How often a schedule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Every N minutes, in slots aligned to the epoch (UTC).
    Minutes(u32),
    /// Once a day when the organisation's clock has passed hour:minute.
    DailyAt(u32, u32),
}

/// A named periodic task of a module.
pub struct Schedule {
    pub name: &'static str,
    pub every: Every,
    pub run: for<'a> fn(&'a App, i64) -> BoxFut<'a, Result<()>>,
}

crate::state_enum!(
    /// Where a schedule's run of one period stands.
    RunState { Running = "running", Done = "done", Failed = "failed" }
);

/// One run of a schedule, as the admin pages and tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    pub name: String,
    pub period_key: String,
    pub state: RunState,
    pub attempts: i64,
    pub error: Option<String>,
}

impl kehu_db::FromRow for ScheduleRun {
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(ScheduleRun {
            name: r.req_string("name")?,
            period_key: r.req_string("period_key")?,
            state: r.state("state")?,
            attempts: r.req_i64("attempts")?,
            error: r.string("error"),
        })
    }
}

impl Every {
    /// The key of the period `now` falls in, in time zone `tz`; None before the daily time.
    pub fn period_key(&self, now: i64, tz: chrono_tz::Tz) -> Option<String> {
        match *self {
            Every::Minutes(n) => Some(format!("{}", now / (i64::from(n.max(1)) * 60_000_000))),
            Every::DailyAt(h, m) => {
                let local = tz.timestamp_micros(now).single()?;
                let passed = (local.hour(), local.minute()) >= (h, m);
                passed.then(|| format!("{:04}-{:02}-{:02}", local.year(), local.month(), local.day()))
            }
        }
    }
}

impl App {
    /// The organisation's time zone (set at setup), UTC if none.
    pub async fn org_time_zone(&self) -> Result<chrono_tz::Tz> {
        Ok(self.setting("org_time_zone").await?.and_then(|s| s.parse().ok()).unwrap_or(chrono_tz::UTC))
    }

    /// Run every registered schedule whose current period nobody has taken yet (or whose
    /// run died). Returns the runs this server did.
    pub async fn run_schedules(&self, now: i64) -> Result<Vec<String>> {
        let tz = self.org_time_zone().await?;
        let mut ran = Vec::new();
        for s in crate::modules::schedules() {
            let Some(key) = s.every.period_key(now, tz) else { continue };
            if self.run_schedule(s, &key, now).await? {
                ran.push(s.name.to_string());
            }
        }
        Ok(ran)
    }

    /// Run `s` for period `key` if this server gets it; true when it ran (ok or failed).
    pub async fn run_schedule(&self, s: &Schedule, key: &str, now: i64) -> Result<bool> {
        let Some(token) = self.claim_period(s.name, key).await? else { return Ok(false) };
        let lease = self.lease_micros();
        // Keep the lease while the task runs.
        let beat = {
            let db = self.db.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_micros((lease / 3).max(1) as u64)).await;
                    let q = Raw::new(
                        "UPDATE schedule_runs SET lease_until = $1 WHERE token = $2 AND state = 'running'",
                        vec![(now_micros() + lease).into(), token.into()],
                    );
                    if db.write(&q).await.is_err() {
                        break;
                    }
                }
            })
        };
        let outcome = (s.run)(self, now).await;
        beat.abort();
        let (state, error) = match &outcome {
            Ok(()) => (RunState::Done, None),
            Err(e) => {
                tracing::warn!(schedule = s.name, period = key, error = %e, "scheduled task failed");
                (RunState::Failed, Some(format!("{}: {}", e.code, e.detail.clone().unwrap_or_default())))
            }
        };
        self.db
            .write(&Raw::new(
                "UPDATE schedule_runs SET state = $1, error = $2, finished_at = $3 WHERE token = $4",
                vec![state.as_str().into(), error.into(), now_micros().into(), token.into()],
            ))
            .await?;
        Ok(true)
    }

    /// Insert the period's row, or take over a run whose lease ran out (by the real clock,
    /// whatever time the period is for). The token, if ours.
    async fn claim_period(&self, name: &str, key: &str) -> Result<Option<Uuid>> {
        let token = new_id();
        let until = now_micros() + self.lease_micros();
        let ins = Raw::new(
            "INSERT INTO schedule_runs (id, name, period_key, token, state, started_at, lease_until, attempts) \
             VALUES ($1, $2, $3, $4, 'running', $5, $6, 1)",
            vec![new_id().into(), name.into(), key.into(), token.into(), now_micros().into(), until.into()],
        );
        match self.db.write(&ins).await {
            Ok(_) => return Ok(Some(token)),
            Err(DbError::Unique { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let take = Raw::new(
            "UPDATE schedule_runs SET token = $1, lease_until = $2, started_at = $3, attempts = attempts + 1 \
             WHERE name = $4 AND period_key = $5 AND state = 'running' AND lease_until < $3",
            vec![token.into(), until.into(), now_micros().into(), name.into(), key.into()],
        );
        Ok((self.db.write(&take).await? == 1).then_some(token))
    }

    /// The runs of schedule `name`, newest first.
    pub async fn schedule_runs(&self, name: &str, limit: i64) -> Result<Vec<ScheduleRun>> {
        Ok(self
            .db
            .rows(&Raw::new(
                "SELECT name, period_key, state, attempts, error FROM schedule_runs WHERE name = $1 \
                 ORDER BY started_at DESC LIMIT $2",
                vec![name.into(), limit.into()],
            ))
            .await?)
    }
}

/// The core module's schedules: reminders every minute, the backup check every minute (the
/// backup's own period is the admin's "every N hours"), housekeeping every 10 minutes.
pub(crate) fn core_schedules() -> Vec<Schedule> {
    vec![
        Schedule {
            name: "reminders",
            every: Every::Minutes(1),
            run: |app, now| Box::pin(async move { app.send_reminders(now).await.map(|_| ()) }),
        },
        Schedule {
            name: "backup",
            every: Every::Minutes(1),
            run: |app, now| Box::pin(async move { app.run_due_backup(now).await.map(|_| ()) }),
        },
        Schedule {
            name: "search_reindex",
            every: Every::Minutes(1),
            run: |app, _| {
                Box::pin(async move { app.reindex_search_step(std::time::Duration::from_secs(20)).await.map(|_| ()) })
            },
        },
        Schedule {
            name: "housekeeping",
            every: Every::Minutes(10),
            run: |app, _| Box::pin(async move { app.housekeeping().await }),
        },
    ]
}
