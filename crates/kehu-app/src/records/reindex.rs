//! Rebuilding the search documents when the way records are indexed changes (version 2:
//! traditional Chinese as simplified, pinyin of names). A schedule runs `reindex_search_step`
//! every minute on one server; each batch of records is rewritten in one transaction with the
//! cursor, so a stopped rebuild resumes where it was, and searching works throughout (a
//! document not yet rebuilt is still found by what it was found by before).

use super::search_doc;
use crate::{App, Result};
use kehu_core::perm::ScopeFilter;
use kehu_core::Uuid;
use kehu_db::records::{col, decode, select_in_scope};
use kehu_db::search;
use sea_query::{Alias, Order};

/// The current way of indexing records.
pub const SEARCH_INDEX_VERSION: i64 = 2;
const VERSION_KEY: &str = "search_index_version";
const CURSOR_KEY: &str = "search_reindex_cursor";
const BATCH: u64 = 500;

impl App {
    /// Rebuild search documents for up to `budget`; returns whether the index is current.
    pub async fn reindex_search_step(&self, budget: std::time::Duration) -> Result<bool> {
        let started = std::time::Instant::now();
        let version: i64 = self.setting(VERSION_KEY).await?.and_then(|v| v.parse().ok()).unwrap_or(1);
        if version >= SEARCH_INDEX_VERSION {
            return Ok(true);
        }
        let schema = self.schema().await?;
        let mut objects: Vec<_> = schema.objects().to_vec();
        objects.sort_by(|a, b| a.api_name.cmp(&b.api_name));
        // The cursor: `<object api name>/<last record id>`.
        let cursor = self.setting(CURSOR_KEY).await?.unwrap_or_default();
        let (mut at, mut after): (String, Option<Uuid>) = match cursor.split_once('/') {
            Some((o, id)) => (o.to_string(), id.parse().ok()),
            None => (objects.first().map(|o| o.api_name.clone()).unwrap_or_default(), None),
        };
        // At least one batch per step, then as many as the budget allows.
        loop {
            let Some(obj) = objects.iter().find(|o| o.api_name >= at) else {
                let mut tx = self.db.begin().await?;
                Self::put_setting(&mut tx, VERSION_KEY, &SEARCH_INDEX_VERSION.to_string()).await?;
                Self::put_setting(&mut tx, CURSOR_KEY, "").await?;
                tx.commit().await?;
                tracing::info!(version = SEARCH_INDEX_VERSION, "search index rebuilt");
                return Ok(true);
            };
            if obj.api_name != at {
                after = None;
            }
            let mut q = select_in_scope(obj, &ScopeFilter::All);
            q.and_where(col("deleted_at").is_null()).order_by(Alias::new("id"), Order::Asc).limit(BATCH);
            if let Some(a) = after {
                q.and_where(col("id").gt(a));
            }
            let mut tx = self.db.begin().await?;
            let rows = tx.all(&q).await?;
            let docs: Vec<_> = rows
                .iter()
                .filter_map(|r| decode(obj, r))
                .map(|rec| search_doc(obj, rec.id, &rec.values, |_| true))
                .collect();
            search::upsert(&mut tx, &docs).await?;
            let next = match docs.last() {
                Some(d) if docs.len() as u64 == BATCH => format!("{}/{}", obj.api_name, d.record_id),
                // This object is done: the next one starts after its name.
                _ => format!("{}\u{1}/", obj.api_name),
            };
            Self::put_setting(&mut tx, CURSOR_KEY, &next).await?;
            tx.commit().await?;
            match next.split_once('/') {
                Some((o, id)) => (at, after) = (o.to_string(), id.parse().ok()),
                None => break,
            }
            if started.elapsed() >= budget {
                break;
            }
        }
        Ok(false)
    }
}
