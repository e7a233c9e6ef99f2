//! Bulk actions on a selection of records (ids) or on every record matching a filter: assign
//! an owner, set a field, add or remove a tag, delete. Every change goes through the record
//! write core (`App::apply` with `Change::Update` / `Change::Recycle`), so each record gets its audit entry, field
//! history, outbox event and search document. Records are taken in id order in batches of
//! `BATCH`, each batch ONE transaction that also stores how far it got, so a job that stops
//! mid-way resumes after the last committed batch without redoing or skipping a record.
//!
//! The action runs as the requesting user: records outside their update (or delete) scope are
//! skipped and counted, never changed. Up to `INLINE_MAX` records run at once in the request;
//! more become a background job (`jobs.rs`).

use crate::records::input::{check_refs, parse_fields, raise, Mode, Values};
use crate::records::write::{Change, WriteCtx};
use crate::{App, RecordView, Result};
use kehu_core::filter::{self, ResolveCtx};
use kehu_core::meta::{FieldType, ObjectDef, Schema};
use kehu_core::perm::{Action, Actor, ScopeFilter};
use kehu_core::value::{parse_input, Value};
use kehu_core::{AppError, ErrorKind, Uuid};
use kehu_db::query::compile;
use kehu_db::records::{col, decode, scope_expr, select_in_scope};
use kehu_db::Tx;
use sea_query::{Alias, Condition, NullOrdering, Order, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// Selections larger than this run as a background job.
pub const INLINE_MAX: u64 = 200;
/// Records per transaction.
pub const BATCH: usize = 200;
/// Largest explicit selection of ids.
pub const MAX_IDS: usize = 10_000;

/// What to do to each record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum BulkAction {
    AssignOwner { owner: Uuid },
    SetField { field: String, value: Json },
    AddTag { field: String, tag: String },
    RemoveTag { field: String, tag: String },
    Delete,
}

/// Which records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    Ids(Vec<Uuid>),
    /// Every record the user can see that matches the filter (None: all).
    Filter(Option<Json>),
}

/// A bulk request: stored as a job's `params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub object: String,
    pub action: BulkAction,
    pub selection: Selection,
}

/// Counts of a finished (or partly finished) bulk action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BulkCounts {
    /// Records processed (changed, or already as asked).
    pub done: u64,
    /// Records the user may not change (or that were gone).
    pub skipped: u64,
    /// Records the engine refused (validation, concurrent change).
    pub failed: u64,
}

/// Ran in the request, or queued as a job.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkOutcome {
    Done(BulkCounts),
    Queued(Uuid),
}

/// A request checked against metadata and permissions, ready to apply to records.
pub(crate) struct Prepared {
    pub obj: Arc<ObjectDef>,
    pub schema: Arc<Schema>,
    /// The scope of the action (update or delete).
    pub scope: ScopeFilter,
    /// The scope of reading (which records the selection can reach).
    pub read_scope: ScopeFilter,
    pub filter: Option<kehu_core::filter::Expr>,
    pub ids: Option<Vec<Uuid>>,
    kind: Kind,
}

enum Kind {
    Patch(Values),
    Tag { field: Arc<kehu_core::meta::FieldDef>, tag: String, add: bool },
    Delete,
}

/// The outcome of one batch.
pub(crate) struct BatchResult {
    pub counts: BulkCounts,
    /// The last id handled (the next batch starts after it).
    pub last: Option<Uuid>,
    pub more: bool,
}

impl App {
    /// Check a bulk request: object and action permission, the value against the field's
    /// type, the new owner within the user's scope, the filter. Nothing is written.
    pub(crate) async fn prepare_bulk(&self, actor: &Actor, req: &BulkRequest) -> Result<Prepared> {
        let schema = self.schema().await?;
        let obj = schema.object(&req.object)?.clone();
        let read_scope = actor.check(&obj, Action::Read)?;
        let action = if req.action == BulkAction::Delete { Action::Delete } else { Action::Update };
        let scope = actor.check(&obj, action)?;
        let patch = |k: &str, v: Json| -> Result<Values> {
            let mut m = Map::new();
            m.insert(k.to_string(), v);
            let (mut errors, mut denied) = (Vec::new(), Vec::new());
            let vals = parse_fields(actor, &obj, &m, Mode::Update, "", &mut errors, &mut denied);
            raise(errors, denied)?;
            Ok(vals)
        };
        let kind = match &req.action {
            BulkAction::AssignOwner { owner } => Kind::Patch(patch("owner", Json::String(owner.to_string()))?),
            BulkAction::SetField { field, value } => {
                let f = obj.field(field).ok_or_else(|| AppError::field(field.clone(), "field.unknown"))?;
                if f.unique {
                    return Err(AppError::field(field.clone(), "bulk.field_unique"));
                }
                Kind::Patch(patch(field, value.clone())?)
            }
            BulkAction::AddTag { field, tag } | BulkAction::RemoveTag { field, tag } => {
                let f = obj.field(field).ok_or_else(|| AppError::field(field.clone(), "field.unknown"))?;
                if !matches!(f.ftype, FieldType::Tags | FieldType::MultiSelect) {
                    return Err(AppError::field(field.clone(), "bulk.not_a_tag_field"));
                }
                if !actor.can_write_field(&obj, f) {
                    return Err(AppError::forbidden("permission.field_denied"));
                }
                let tag = match parse_input(f, &Json::Array(vec![Json::String(tag.clone())])) {
                    Ok(Value::List(mut l)) if l.len() == 1 => l.remove(0),
                    Ok(_) => return Err(AppError::field("tag", "field.required")),
                    Err(code) => return Err(AppError::field("tag", code)),
                };
                Kind::Tag { field: f.clone(), tag, add: matches!(req.action, BulkAction::AddTag { .. }) }
            }
            BulkAction::Delete => Kind::Delete,
        };
        if let Kind::Patch(vals) = &kind {
            let mut tx = self.db.begin().await?;
            let r = check_refs(self, &mut tx, actor, &schema, &scope, &[(String::new(), vals)]).await;
            tx.rollback().await?;
            r?;
        }
        let (filter, ids) = match &req.selection {
            Selection::Ids(ids) => {
                if ids.is_empty() {
                    return Err(AppError::invalid("bulk.nothing_selected"));
                }
                if ids.len() > MAX_IDS {
                    return Err(AppError::invalid("bulk.too_many_ids"));
                }
                let mut ids = ids.clone();
                ids.sort();
                ids.dedup();
                (None, Some(ids))
            }
            Selection::Filter(None) | Selection::Filter(Some(Json::Null)) => (None, None),
            Selection::Filter(Some(f)) => {
                let can_read = |fd: &kehu_core::meta::FieldDef| actor.can_read_field(&obj, fd);
                let ctx = ResolveCtx { me: actor.user_id, can_read: &can_read };
                (Some(filter::resolve(f, &obj, &ctx)?), None)
            }
        };
        Ok(Prepared { obj, schema, scope, read_scope, filter, ids, kind })
    }

    /// How many records a selection reaches for this user.
    pub(crate) async fn bulk_total(&self, actor: &Actor, req: &BulkRequest) -> Result<u64> {
        match &req.selection {
            Selection::Ids(ids) => {
                let mut ids = ids.clone();
                ids.sort();
                ids.dedup();
                Ok(ids.len() as u64)
            }
            Selection::Filter(f) => self.count(actor, &req.object, f.as_ref()).await,
        }
    }

    /// Run a bulk action: in the request when it reaches at most `INLINE_MAX` records,
    /// otherwise as a background job (its id is returned).
    pub async fn bulk(&self, actor: &Actor, req: &BulkRequest) -> Result<BulkOutcome> {
        let p = self.prepare_bulk(actor, req).await?;
        let total = self.bulk_total(actor, req).await?;
        if total > INLINE_MAX {
            return Ok(BulkOutcome::Queued(self.enqueue_job(actor, req, total).await?));
        }
        let mut counts = BulkCounts::default();
        let mut after = None;
        loop {
            let mut tx = self.db.begin().await?;
            let r = self.bulk_batch(&mut tx, actor, &p, after).await?;
            tx.commit().await?;
            counts.done += r.counts.done;
            counts.skipped += r.counts.skipped;
            counts.failed += r.counts.failed;
            after = r.last;
            if !r.more {
                break;
            }
        }
        Ok(BulkOutcome::Done(counts))
    }

    /// Inside `tx`: apply the action to the next `BATCH` records after `after` (id order).
    pub(crate) async fn bulk_batch(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        p: &Prepared,
        after: Option<Uuid>,
    ) -> Result<BatchResult> {
        let ids: Vec<Uuid> = match &p.ids {
            Some(ids) => ids.iter().copied().filter(|id| after.is_none_or(|a| *id > a)).take(BATCH + 1).collect(),
            None => {
                let mut q = Query::select();
                q.column(Alias::new("id"))
                    .from(Alias::new(&p.obj.table))
                    .and_where(col("deleted_at").is_null())
                    .order_by(Alias::new("id"), Order::Asc)
                    .limit(BATCH as u64 + 1);
                if let Some(s) = scope_expr(&p.read_scope, "owner_id") {
                    q.and_where(s);
                }
                if let Some(f) = &p.filter {
                    q.cond_where(Condition::all().add(compile(tx.backend(), f)));
                }
                if let Some(a) = after {
                    q.and_where(col("id").gt(a));
                }
                tx.all(&q).await?.iter().filter_map(|r| r.uuid(0)).collect()
            }
        };
        let more = ids.len() > BATCH;
        let ids = &ids[..ids.len().min(BATCH)];
        let mut counts = BulkCounts::default();
        for id in ids {
            let cur = match self.load_for_write(tx, &p.obj, *id, &p.scope).await {
                Ok(r) if r.deleted_at.is_none() => r,
                Ok(_) => {
                    counts.skipped += 1;
                    continue;
                }
                Err(e) if e.kind == ErrorKind::NotFound => {
                    counts.skipped += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let r = match &p.kind {
                Kind::Patch(vals) => {
                    let w = WriteCtx { actor, schema: &p.schema, obj: &p.obj, scope: &p.scope };
                    self.apply(tx, &w, Change::Update { cur, vals: vals.clone(), in_bin: false }).await.map(|_| ())
                }
                Kind::Tag { field, tag, add } => {
                    let mut list = match cur.get(&field.api_name) {
                        Value::List(l) => l.clone(),
                        _ => Vec::new(),
                    };
                    let has = list.iter().any(|t| t == tag);
                    if *add && !has {
                        list.push(tag.clone());
                    } else if !*add && has {
                        list.retain(|t| t != tag);
                    }
                    let v = if list.is_empty() { Value::Null } else { Value::List(list) };
                    let vals = vec![(field.clone(), v)];
                    let w = WriteCtx { actor, schema: &p.schema, obj: &p.obj, scope: &p.scope };
                    self.apply(tx, &w, Change::Update { cur, vals, in_bin: false }).await.map(|_| ())
                }
                Kind::Delete => {
                    let w = WriteCtx { actor, schema: &p.schema, obj: &p.obj, scope: &p.scope };
                    self.apply(tx, &w, Change::Recycle { cur, delete: true }).await.map(|_| ())
                }
            };
            match r {
                Ok(()) => counts.done += 1,
                Err(e) if e.kind != ErrorKind::Internal => counts.failed += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(BatchResult { counts, last: ids.last().copied(), more })
    }

    /// Records by id that the actor may read, matching `filter`, in `sort` order (at most
    /// `MAX_IDS`); used for quick search within a list and for exporting a selection.
    pub async fn list_by_ids(
        &self,
        actor: &Actor,
        object: &str,
        ids: &[Uuid],
        filter_json: Option<&Json>,
        sort: Option<&str>,
    ) -> Result<Vec<RecordView>> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        let scope = actor.check(obj, Action::Read)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() > MAX_IDS {
            return Err(AppError::invalid("bulk.too_many_ids"));
        }
        let can_read = |f: &kehu_core::meta::FieldDef| actor.can_read_field(obj, f);
        let ctx = ResolveCtx { me: actor.user_id, can_read: &can_read };
        let filter = match filter_json {
            None | Some(Json::Null) => None,
            Some(f) => Some(filter::resolve(f, obj, &ctx)?),
        };
        let sort = filter::resolve_sort(&sort.map(|s| Json::String(s.into())).unwrap_or(Json::Null), obj, &ctx)?;
        let mut out = Vec::new();
        let mut rows = Vec::new();
        for chunk in ids.chunks(500) {
            let mut q = select_in_scope(obj, &scope);
            q.and_where(col("id").is_in(chunk.iter().copied())).and_where(col("deleted_at").is_null());
            if let Some(f) = &filter {
                q.cond_where(Condition::all().add(compile(self.db.backend(), f)));
            }
            for k in &sort {
                let (o, n) = if k.desc { (Order::Desc, NullOrdering::Last) } else { (Order::Asc, NullOrdering::First) };
                q.order_by_with_nulls(Alias::new(&k.field.column), o, n);
            }
            rows.extend(self.db.all(&q).await?);
        }
        for row in &rows {
            if let Some(rec) = decode(obj, row) {
                out.push(crate::records::view(actor, obj, &rec));
            }
        }
        if sort.is_empty() {
            // No sort asked: the order the ids were given in (search relevance).
            let pos: std::collections::HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
            out.sort_by_key(|r| pos.get(&r.id).copied().unwrap_or(usize::MAX));
        }
        Ok(out)
    }
}
