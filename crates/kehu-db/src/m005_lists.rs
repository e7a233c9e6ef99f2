//! Migration 5: list views. `saved_views` keeps a user's (or a team's shared) columns, filter
//! and sort per object; `jobs` is the queue of background bulk actions, each with its progress
//! and the cursor of the last batch it committed (written in that batch's transaction).

use crate::conn::{DbResult, Tx};
use crate::migrate::{index, T};

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    let tables = [
        T::new(b, "saved_views")
            .id()
            .text("object")
            .uuid("owner_id")
            .uuid_null("team_id")
            .text("name")
            .text("columns")
            .text("filter")
            .text("sort")
            .int("created_at")
            .int("updated_at"),
        T::new(b, "jobs")
            .id()
            .text("kind")
            .uuid("actor_id")
            .text("object")
            .text("params")
            .text("state")
            .int("total")
            .int("done")
            .int("failed")
            .int("skipped")
            .text("cursor")
            .int("batches")
            .text_null("error")
            .int("created_at")
            .int("updated_at"),
    ];
    for t in &tables {
        tx.ddl(&t.sql()).await?;
    }
    for sql in [
        index(b, "saved_views", "object_owner", &["object", "owner_id"], false),
        index(b, "saved_views", "object_team", &["object", "team_id"], false),
        index(b, "jobs", "state", &["state", "created_at"], false),
        index(b, "jobs", "actor", &["actor_id", "created_at"], false),
    ] {
        tx.ddl(&sql).await?;
    }
    Ok(())
}
