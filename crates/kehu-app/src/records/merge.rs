//! Merging duplicates: two to five records of one object become one. In ONE transaction:
//! the actor must read all, update the survivor and delete the others; every record must still
//! be at the version the caller saw (else a conflict and nothing is written); the survivor
//! takes the chosen value field by field (lists such as tags are unioned) as a normal update
//! (audit, field history, outbox, search document); every relation of every object that points
//! at a merged record is moved to the survivor (set-based, one statement per relation field,
//! each moved record audited, versioned and announced); the merged records' field history moves
//! to the survivor; the merged records go to the recycle bin with a `record.merged` audit entry
//! naming the survivor, their unique values cleared first so the survivor can take them.

use super::behaviour::{self, ChangeKind, Written};
use super::input::{check_refs, raise, Values};
use super::write::{values_json, Change, WriteCtx};
use super::{view, RecordView};
use crate::{App, Result};
use kehu_core::meta::FieldType;
use kehu_core::perm::{Action, Actor, ScopeFilter};
use kehu_core::value::{to_json, Value};
use kehu_core::{now_micros, AppError, FieldError, Uuid};
use kehu_db::journal::{self, AuditEntry, Event};
use kehu_db::records::{self, col, encode_columns, null_of};
use kehu_db::search;
use sea_query::{Alias, Expr, Query};
use serde::Deserialize;
use serde_json::{json, Map};
use std::collections::HashMap;

/// Most records merged into one survivor (five records in all).
pub const MAX_MERGED: usize = 4;

/// What to merge: the survivor, the records merged into it, the version of each as the caller
/// read it, and for some fields the record whose value the survivor keeps. A field not named
/// keeps the survivor's value when it has one, else takes the first merged record's value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    pub survivor: Uuid,
    pub merge: Vec<Uuid>,
    pub versions: HashMap<Uuid, i64>,
    #[serde(default)]
    pub values: HashMap<String, Uuid>,
}

impl App {
    /// Merge `req.merge` into `req.survivor` (see the module documentation).
    pub async fn merge(&self, actor: &Actor, object: &str, req: &MergeRequest) -> Result<RecordView> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let read_scope = actor.check(&obj, Action::Read)?;
        let update_scope = actor.check(&obj, Action::Update)?;
        let delete_scope = actor.check(&obj, Action::Delete)?;
        let mut losers: Vec<Uuid> = Vec::new();
        for id in &req.merge {
            if !losers.contains(id) {
                losers.push(*id);
            }
        }
        if losers.is_empty() || losers.len() > MAX_MERGED || losers.contains(&req.survivor) {
            return Err(AppError::field("merge", "merge.invalid_selection"));
        }
        let all: Vec<Uuid> = std::iter::once(req.survivor).chain(losers.iter().copied()).collect();
        let (mut errors, mut denied) = (Vec::new(), Vec::new());
        for id in &all {
            if !req.versions.contains_key(id) {
                errors.push(FieldError::new(format!("versions.{id}"), "merge.version_required"));
            }
        }
        for (api, src) in &req.values {
            let name = format!("values.{api}");
            match obj.field(api) {
                None => errors.push(FieldError::new(name, "field.unknown")),
                Some(f) if f.readonly => errors.push(FieldError::new(name, "field.readonly")),
                Some(f) if !actor.can_write_field(&obj, f) => {
                    denied.push(FieldError::new(name, "permission.field_denied"))
                }
                Some(_) if !all.contains(src) => errors.push(FieldError::new(name, "merge.invalid_source")),
                Some(_) => {}
            }
        }
        raise(errors, denied)?;

        let mut tx = self.db.begin().await?;
        let mut recs = Vec::with_capacity(all.len());
        for (i, id) in all.iter().enumerate() {
            let scope = if i == 0 { &update_scope } else { &delete_scope };
            let r = self.load_for_write(&mut tx, &obj, *id, scope).await?;
            let visible = tx.one(&records::select_one(&obj, *id, &read_scope)).await?.is_some();
            if r.deleted_at.is_some() || !visible {
                return Err(AppError::not_found("record.not_found"));
            }
            if Some(&r.version) != req.versions.get(id) {
                return Err(AppError::conflict("record.version_conflict"));
            }
            recs.push(r);
        }
        let survivor = recs[0].clone();

        // The survivor's values, field by field.
        let mut changed: Values = Vec::new();
        for f in obj.active().filter(|f| !f.readonly && actor.can_write_field(&obj, f)) {
            let cur = survivor.get(&f.api_name);
            let new = if matches!(f.ftype, FieldType::Tags | FieldType::MultiSelect) {
                let mut items: Vec<String> = Vec::new();
                for r in &recs {
                    if let Value::List(l) = r.get(&f.api_name) {
                        for s in l {
                            if !items.contains(s) {
                                items.push(s.clone());
                            }
                        }
                    }
                }
                if items.is_empty() {
                    Value::Null
                } else {
                    Value::List(items)
                }
            } else if let Some(src) = req.values.get(&f.api_name) {
                recs.iter().find(|r| r.id == *src).map(|r| r.get(&f.api_name).clone()).unwrap_or(Value::Null)
            } else if !cur.is_null() {
                cur.clone()
            } else {
                recs[1..].iter().map(|r| r.get(&f.api_name)).find(|v| !v.is_null()).cloned().unwrap_or(Value::Null)
            };
            // A relation to one of the merged records now means the survivor itself: drop it.
            let new = match new {
                Value::Ref(id) if f.ftype == FieldType::Relation && all.contains(&id) => cur.clone(),
                v => v,
            };
            if (new.is_null() && f.required) || &new == cur {
                continue;
            }
            changed.push((f.clone(), new));
        }
        check_refs(self, &mut tx, actor, &schema, &update_scope, &[(String::new(), &changed)]).await?;
        let now = now_micros();
        let by = sea_query::Value::from(actor.user_id);

        // The merged records: unique values cleared (so the survivor can take them), then into
        // the recycle bin, each with an audit entry naming the survivor.
        let unique: Vec<_> = obj.data_fields().filter(|f| f.unique).cloned().collect();
        let mut audits = Vec::new();
        let mut events = Vec::new();
        for r in &recs[1..] {
            let mut q = Query::update();
            q.table(Alias::new(&obj.table));
            let mut cleared = Map::new();
            for f in &unique {
                let v = r.get(&f.api_name);
                if !v.is_null() {
                    cleared.insert(f.api_name.clone(), to_json(f, v));
                    for (c, _) in encode_columns(f, v) {
                        q.value(Alias::new(c), null_of(f.ftype.storage()));
                    }
                }
            }
            q.value(Alias::new("deleted_at"), now)
                .value(Alias::new("deleted_by"), by.clone())
                .value(Alias::new("version"), Expr::col(Alias::new("version")).add(1))
                .and_where(col("id").eq(r.id))
                .and_where(col("version").eq(r.version))
                .and_where(col("deleted_at").is_null());
            if tx.exec(&q).await? != 1 {
                return Err(AppError::conflict("record.version_conflict"));
            }
            audits.push(AuditEntry {
                at: now,
                actor: actor.user_id,
                object_id: obj.id,
                record_id: r.id,
                action: "record.merged",
                changes: json!({"into": req.survivor, "fields": values_json(&r.values), "cleared": cleared}),
            });
            events.push(Event {
                event: "record.deleted",
                object_id: obj.id,
                record_id: r.id,
                payload: json!({"object": obj.api_name, "id": r.id, "version": r.version + 1, "merged_into": req.survivor}),
                at: now,
            });
            search::remove(&mut tx, r.id).await?;
            let w = Written { actor, obj: &obj, id: r.id, kind: ChangeKind::Delete, old: None, new: &r.values };
            behaviour::after(self, &mut tx, &w).await?;
        }

        // The merged records' history becomes the survivor's (before this merge's own entries).
        let mut moved = Query::update();
        moved
            .table(Alias::new("field_history"))
            .value(Alias::new("record_id"), survivor.id)
            .and_where(col("object_id").eq(obj.id))
            .and_where(col("record_id").is_in(losers.iter().copied()));
        tx.exec(&moved).await?;
        // The survivor: the chosen values, through the write core (behaviours, history,
        // audit, one `record.updated` event, search document).
        let w = WriteCtx { actor, schema: &schema, obj: &obj, scope: &update_scope };
        self.apply(&mut tx, &w, Change::Update { cur: survivor.clone(), vals: changed, in_bin: false })
            .await
            .map_err(|e| prefix_fields(e, "values."))?;
        audits.push(AuditEntry {
            at: now,
            actor: actor.user_id,
            object_id: obj.id,
            record_id: survivor.id,
            action: "merge",
            changes: json!({"merged": losers}),
        });
        events.push(Event {
            event: "record.merged",
            object_id: obj.id,
            record_id: survivor.id,
            payload: json!({"object": obj.api_name, "id": survivor.id, "merged": losers}),
            at: now,
        });

        // Related records of every object move to the survivor, each through the write core
        // (so each has its field history, audit entry, behaviours and one `record.updated`
        // event), deleted ones too. They follow the record they belong to, even outside the
        // actor's scope.
        for (o, f) in schema.reverse_relations(obj.id) {
            let mut sel = records::select_in_scope(o, &ScopeFilter::All);
            sel.and_where(col(&f.column).is_in(losers.iter().copied()));
            let rows = tx.all(&sel).await?;
            for row in rows {
                let rec = records::decode(o, &row).ok_or_else(|| AppError::internal("undecodable row"))?;
                let in_bin = rec.deleted_at.is_some();
                let vals = vec![(f.clone(), Value::Ref(survivor.id))];
                let w = WriteCtx { actor, schema: &schema, obj: o, scope: &ScopeFilter::All };
                self.apply(&mut tx, &w, Change::Update { cur: rec, vals, in_bin }).await?;
            }
        }
        journal::audit(&mut tx, &audits).await?;
        journal::outbox(&mut tx, &events).await?;

        // Read the survivor back (a relation of its own object may have moved it again).
        let after = self.load_for_write(&mut tx, &obj, survivor.id, &ScopeFilter::All).await?;
        tx.commit().await?;
        Ok(view(actor, &obj, &after))
    }
}

/// A field error of the survivor's update names the request's `values.<field>`.
fn prefix_fields(mut e: AppError, prefix: &str) -> AppError {
    for f in &mut e.fields {
        f.field = format!("{prefix}{}", f.field);
    }
    e
}
