//! Migration 8: what the record page and the home page keep per user besides records —
//! `notifications` (mentions, task reminders and assignments; a unique `dedupe` key makes each
//! one happen once even when a sweep runs twice) and `recent_views` (one row per user and
//! record, its time refreshed on each visit).

use crate::conn::{DbResult, Tx};
use crate::migrate::{index, T};

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    let tables = [
        T::new(b, "notifications")
            .id()
            .uuid("user_id")
            .text("kind")
            .uuid_null("actor_id")
            .uuid("object_id")
            .uuid("record_id")
            .int("at")
            .int_null("read_at")
            .text("dedupe"),
        T::new(b, "recent_views").uuid("user_id").uuid("object_id").uuid("record_id").int("at"),
    ];
    for t in &tables {
        tx.ddl(&t.sql()).await?;
    }
    for sql in [
        index(b, "notifications", "dedupe", &["dedupe"], true),
        index(b, "notifications", "user_at", &["user_id", "at"], false),
        index(b, "recent_views", "user_record", &["user_id", "record_id"], true),
        index(b, "recent_views", "user_at", &["user_id", "at"], false),
    ] {
        tx.ddl(&sql).await?;
    }
    Ok(())
}
