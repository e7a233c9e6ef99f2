//! The recycle bin: deleted records of every object, newest deletion first, within the actor's
//! delete scope; restoring many at once; purging (deleting for good) by an administrator or
//! by the retention rule that `kehu serve`'s housekeeping applies.
//!
//! A purge removes the row and its field history in one transaction, clears links to it from
//! other records (each such record gets a new version, a history entry and an audit entry, as
//! any change does), and leaves an audit entry `purge` without values — the log keeps that
//! the record existed, never its content.

use super::write::{Change, WriteCtx};
use super::{parse_time_cursor, view, RecordView};
use crate::{App, Result};
use kehu_core::meta::ObjectDef;
use kehu_core::perm::{Action, Actor, ScopeFilter};
use kehu_core::{now_micros, AppError, Uuid};
use kehu_db::journal;
use kehu_db::records::{col, decode, select_in_scope};
use sea_query::{Alias, Cond, Expr, Order, Query};
use serde_json::json;
use std::sync::Arc;

/// The setting that holds the retention in days (0: keep until purged by hand).
pub const RETENTION_KEY: &str = "recycle_retention_days";
/// Retention when none is set.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// Longest retention an administrator may set (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;
/// Most records restored or purged by one request.
pub const MAX_BATCH: usize = 200;

const DAY: i64 = 86_400_000_000;

/// A record in the recycle bin, as the actor may see it.
#[derive(Debug, Clone)]
pub struct BinItem {
    pub object: Arc<ObjectDef>,
    pub record: RecordView,
    pub title: String,
    pub deleted_at: i64,
    pub deleted_by: Option<Uuid>,
}

/// One page of the recycle bin; `next` continues after its last item.
#[derive(Debug, Clone, Default)]
pub struct BinPage {
    pub items: Vec<BinItem>,
    pub next: Option<String>,
}

/// What to show of the recycle bin.
#[derive(Debug, Clone, Default)]
pub struct BinQuery {
    /// One object's api name, or every object the actor may delete records of.
    pub object: Option<String>,
    /// Part of the record's name.
    pub q: Option<String>,
    /// `<deleted_at>_<id>` of the last item of the previous page.
    pub cursor: Option<String>,
    pub limit: u64,
}

/// The outcome for one record of a many-record request.
#[derive(Debug, Clone)]
pub struct ItemResult {
    pub object: String,
    pub id: Uuid,
    /// The record's name (known for the failures, which stay in the bin).
    pub title: String,
    pub error: Option<AppError>,
}

fn like_pattern(q: &str) -> String {
    let escaped = q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

impl App {
    /// The retention of deleted records in days (0: kept until purged by hand).
    pub async fn recycle_retention(&self) -> Result<u32> {
        Ok(self
            .setting(RETENTION_KEY)
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_RETENTION_DAYS)
            .min(MAX_RETENTION_DAYS))
    }

    /// Set the retention (administrators), audited.
    pub async fn set_recycle_retention(&self, actor: &Actor, days: u32) -> Result<()> {
        if !actor.is_admin() {
            return Err(AppError::forbidden("permission.denied"));
        }
        if days > MAX_RETENTION_DAYS {
            return Err(AppError::field("days", "recycle.invalid_retention"));
        }
        let before = self.recycle_retention().await?;
        let mut tx = self.db.begin().await?;
        Self::put_setting(&mut tx, RETENTION_KEY, &days.to_string()).await?;
        journal::audit(
            &mut tx,
            &[journal::AuditEntry {
                at: now_micros(),
                actor: actor.user_id,
                object_id: Uuid::nil(),
                record_id: Uuid::nil(),
                action: "settings.recycle_retention",
                changes: json!({"old": before, "new": days}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Objects whose deleted records the actor may see (and restore): those they may delete.
    pub async fn bin_objects(&self, actor: &Actor) -> Result<Vec<Arc<ObjectDef>>> {
        let schema = self.schema().await?;
        Ok(schema.objects().iter().filter(|o| actor.check(o, Action::Delete).is_ok()).cloned().collect())
    }

    /// A page of the recycle bin, most recently deleted first.
    pub async fn recycle_bin(&self, actor: &Actor, bq: &BinQuery) -> Result<BinPage> {
        let limit = bq.limit.clamp(1, 200);
        let after =
            bq.cursor.as_deref().filter(|c| !c.is_empty()).map(|c| parse_time_cursor(c, "cursor")).transpose()?;
        let objects = match &bq.object {
            // The loop below checks the delete permission (and refuses without it).
            Some(api) => vec![self.schema().await?.object(api)?.clone()],
            None => self.bin_objects(actor).await?,
        };
        let needle = bq.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(like_pattern);
        let mut found: Vec<(i64, Uuid, Arc<ObjectDef>, kehu_db::records::Record)> = Vec::new();
        for obj in objects {
            let scope = actor.check(&obj, Action::Delete)?;
            let mut q = select_in_scope(&obj, &scope);
            q.and_where(col("deleted_at").is_not_null());
            if let Some((at, id)) = after {
                q.cond_where(
                    Cond::any()
                        .add(col("deleted_at").lt(at))
                        .add(Cond::all().add(col("deleted_at").eq(at)).add(col("id").lt(id))),
                );
            }
            if let Some(pat) = &needle {
                let Some(title) = obj.title_field().filter(|f| actor.can_read_field(&obj, f)) else { continue };
                q.and_where(
                    Expr::expr(sea_query::Func::lower(Expr::col(Alias::new(&title.column))))
                        .like(sea_query::LikeExpr::new(pat.as_str()).escape('\\')),
                );
            }
            q.order_by(Alias::new("deleted_at"), Order::Desc).order_by(Alias::new("id"), Order::Desc).limit(limit + 1);
            for row in self.db.all(&q).await? {
                let rec = decode(&obj, &row).ok_or_else(|| AppError::internal("undecodable row"))?;
                found.push((rec.deleted_at.unwrap_or(0), rec.id, obj.clone(), rec));
            }
        }
        found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let more = found.len() as u64 > limit;
        found.truncate(limit as usize);
        let next = if more { found.last().map(|(at, id, _, _)| format!("{at}_{id}")) } else { None };
        let items = found
            .into_iter()
            .map(|(at, _, obj, rec)| {
                let by = rec.deleted_by;
                let record = view(actor, &obj, &rec);
                let title = record.title(&obj).to_string();
                BinItem { object: obj, record, title, deleted_at: at, deleted_by: by }
            })
            .collect();
        Ok(BinPage { items, next })
    }

    /// The name of a record the actor may delete (empty when unknown or not readable).
    async fn bin_title(&self, actor: &Actor, object: &str, id: Uuid) -> String {
        let Ok(schema) = self.schema().await else { return String::new() };
        let Ok(obj) = schema.object(object) else { return String::new() };
        let Ok(scope) = actor.check(obj, Action::Delete) else { return String::new() };
        let Ok(Some(row)) = self.db.one(&kehu_db::records::select_one(obj, id, &scope)).await else {
            return String::new();
        };
        let Some(rec) = decode(obj, &row) else { return String::new() };
        view(actor, obj, &rec).title(obj).to_string()
    }

    /// Restore several records, each in its own transaction; one that cannot come back (a
    /// live record now holds its unique e-mail, say) is reported and the others still are.
    pub async fn restore_many(&self, actor: &Actor, items: &[(String, Uuid)]) -> Result<Vec<ItemResult>> {
        if items.len() > MAX_BATCH {
            return Err(AppError::invalid("recycle.too_many"));
        }
        let mut out = Vec::with_capacity(items.len());
        for (object, id) in items {
            let error = self.restore(actor, object, *id).await.err();
            let title = if error.is_some() { self.bin_title(actor, object, *id).await } else { String::new() };
            out.push(ItemResult { object: object.clone(), id: *id, title, error });
        }
        Ok(out)
    }

    /// Delete records of the recycle bin for good (administrators), each in its own
    /// transaction. Records not in the bin are refused.
    pub async fn purge_many(&self, actor: &Actor, items: &[(String, Uuid)]) -> Result<Vec<ItemResult>> {
        if !actor.is_admin() {
            return Err(AppError::forbidden("permission.denied"));
        }
        if items.len() > MAX_BATCH {
            return Err(AppError::invalid("recycle.too_many"));
        }
        let schema = self.schema().await?;
        let mut out = Vec::with_capacity(items.len());
        for (object, id) in items {
            let res = async {
                let obj = schema.object(object)?.clone();
                let mut tx = self.db.begin().await?;
                let w = WriteCtx { actor, schema: &schema, obj: &obj, scope: &ScopeFilter::All };
                self.apply(&mut tx, &w, Change::Purge { id: *id }).await?;
                tx.commit().await?;
                Ok::<_, AppError>(())
            }
            .await;
            let error = res.err();
            let title = if error.is_some() { self.bin_title(actor, object, *id).await } else { String::new() };
            out.push(ItemResult { object: object.clone(), id: *id, title, error });
        }
        Ok(out)
    }

    /// Purge what has been in the recycle bin longer than the retention (housekeeping, as
    /// Kehu's system actor). Returns how many records were purged.
    pub async fn purge_expired(&self, now: i64) -> Result<u64> {
        let days = self.recycle_retention().await?;
        if days == 0 {
            return Ok(0);
        }
        let cutoff = now - i64::from(days) * DAY;
        let schema = self.schema().await?;
        let system = Actor::system();
        let mut n = 0;
        for obj in schema.objects() {
            loop {
                let sel = Query::select()
                    .column(Alias::new("id"))
                    .from(Alias::new(&obj.table))
                    .and_where(col("deleted_at").lt(cutoff))
                    .limit(200)
                    .to_owned();
                let ids: Vec<Uuid> = self.db.all(&sel).await?.iter().filter_map(|r| r.uuid(0)).collect();
                if ids.is_empty() {
                    break;
                }
                let mut tx = self.db.begin().await?;
                for id in &ids {
                    let w = WriteCtx { actor: &system, schema: &schema, obj, scope: &ScopeFilter::All };
                    self.apply(&mut tx, &w, Change::Purge { id: *id }).await?;
                }
                tx.commit().await?;
                n += ids.len() as u64;
            }
        }
        Ok(n)
    }
}
