//! Migration 16: `seed_items`, the items of the modules' seed files (objects, fields, select
//! options) already applied to this database, so that a seed evolves declaratively: what a
//! newer seed adds is added once, and what an administrator removed is not added back.

use crate::conn::{DbResult, Tx};
use crate::migrate::{index, T};

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    tx.ddl(&T::new(b, "seed_items").text("key").int("applied_at").sql()).await?;
    tx.ddl(&index(b, "seed_items", "key", &["key"], true)).await?;
    Ok(())
}
