//! Migration 10: `backups`, one row per backup run (manual, scheduled, before a migration):
//! when it started and finished, the file and its size, ok or the error, and when retention
//! pruned the file. A scheduled run carries a unique `period_key`, so a period is backed up
//! once even when the server restarts or several servers run the schedule.

use crate::conn::{DbResult, Tx};
use crate::migrate::{index, T};

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    let t = T::new(b, "backups")
        .id()
        .text("trigger")
        .text_null("period_key")
        .uuid_null("actor_id")
        .int("started_at")
        .int_null("finished_at")
        .text("state")
        .text_null("file")
        .int_null("size")
        .text_null("error")
        .int_null("pruned_at");
    tx.ddl(&t.sql()).await?;
    for sql in [
        index(b, "backups", "period_key", &["period_key"], true),
        index(b, "backups", "started_at", &["started_at"], false),
    ] {
        tx.ddl(&sql).await?;
    }
    Ok(())
}
