//! Migration 12: an outbox event may name its audit entry instead of carrying a payload.
//!
//! A created record's audit entry (`{field: [null, value]}`) and its `record.created` event
//! (`{"fields": {field: value}, "id", "object"}`) held the same values twice — 40 % of what a
//! bulk create writes. Now the event stores `audit_id` and no payload, and
//! `journal::pending_events` derives the payload from the entry when it reads the outbox, so a
//! consumer sees the same JSON as before. Events whose payload says more than their audit
//! entry (updates with the new version, merges) still carry it.
//!
//! `audit_id` is added as the last column on both backends (the archive's dump compares
//! columns in catalog order). `payload` becomes nullable: PostgreSQL alters the column;
//! SQLite cannot, so the table is created again and its rows copied — as a `WITHOUT ROWID`
//! table this time: its rows are now small and keyed by time-ordered ids, so the primary key's
//! B-tree holds them and the separate rowid tree (one more insert per event) is gone.

use crate::conn::{Backend, DbResult, Tx};
use crate::migrate::{index, T};

const COLUMNS: &str = "id, event, object_id, record_id, payload, created_at, processed_at, attempts";

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    match b {
        Backend::Postgres => {
            tx.ddl("ALTER TABLE outbox ALTER COLUMN payload DROP NOT NULL").await?;
            tx.ddl("ALTER TABLE outbox ADD COLUMN audit_id uuid").await?;
        }
        Backend::Sqlite => {
            let t = T::new(b, "outbox_new")
                .id()
                .text("event")
                .uuid_null("object_id")
                .uuid_null("record_id")
                .text_null("payload")
                .int("created_at")
                .int_null("processed_at")
                .int("attempts")
                .uuid_null("audit_id");
            tx.ddl(&format!("{} WITHOUT ROWID", t.sql())).await?;
            tx.ddl(&format!("INSERT INTO outbox_new ({COLUMNS}) SELECT {COLUMNS} FROM outbox")).await?;
            tx.ddl("DROP TABLE outbox").await?;
            tx.ddl("ALTER TABLE outbox_new RENAME TO outbox").await?;
            tx.ddl(&index(b, "outbox", "pending", &["processed_at", "id"], false)).await?;
        }
    }
    Ok(())
}
