//! The timeline of a record: its activities, its field changes and its creation, newest first
//! by (time, id), keyset-paged so that entries sharing a timestamp are neither skipped nor
//! repeated; filtered by the activity kinds metadata currently offers, or by `changes`.

use super::{links_to, micros, OBJECT};
use crate::records::RecordView;
use crate::{App, ListRequest, Result};
use kehu_core::filter::SortKey;
use kehu_core::meta::{Choice, FieldDef, ObjectDef, Schema};
use kehu_core::perm::{Action, Actor};
use kehu_core::{AppError, Uuid};
use kehu_db::conn::Raw;
use kehu_db::records::col;
use sea_query::{Alias, Cond, Order, Query};
use serde_json::{json, Value as Json};
use std::sync::Arc;

/// The timeline's pseudo-kind for field changes.
pub const CHANGES: &str = "changes";

/// One entry of a record's timeline.
pub enum Entry {
    /// A note, call, meeting, task or e-mail log, as the actor may see it.
    Activity(RecordView),
    /// A field changed from `old` to `new` (JSON as the API shows values; masked if need be).
    Change { by: Option<Uuid>, field: Arc<FieldDef>, old: Json, new: Json },
    /// The record was created.
    Created { by: Option<Uuid> },
}

pub struct TimelineItem {
    pub at: i64,
    /// The activity's id, the change's (`field_history`) or the creation's audit entry's.
    pub id: Uuid,
    pub entry: Entry,
}

impl TimelineItem {
    fn place(&self) -> Cursor {
        Cursor { at: self.at, id: self.id }
    }
}

/// A place in a timeline: the time and id of the last entry shown. The timeline is ordered by
/// (time, id), newest first, so entries that share a time are neither skipped nor repeated.
/// Written `<micros>_<id>` in links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub at: i64,
    pub id: Uuid,
}

impl Cursor {
    pub fn parse(s: &str) -> Result<Cursor> {
        let (at, id) = crate::records::parse_time_cursor(s, "before")?;
        Ok(Cursor { at, id })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.at, self.id)
    }
}

/// A page of a timeline, newest first; `before` continues it.
pub struct Timeline {
    pub items: Vec<TimelineItem>,
    pub before: Option<Cursor>,
}

/// The kinds of activity a timeline can be filtered by: the options of the activity's `kind`
/// field that are not archived, in their order — so a kind an administrator adds is one.
pub fn kind_choices(schema: &Schema) -> Vec<Choice> {
    let kind = schema.object(OBJECT).ok().and_then(|a| a.field("kind"));
    kind.map(|f| f.options.choices.iter().filter(|c| !c.archived).cloned().collect()).unwrap_or_default()
}

/// The kinds of a timeline link's filter (`call,task`); checked by `App::timeline`.
pub fn split_kinds(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_string).collect()
}

impl App {
    /// The timeline of a record: its activities (any kind in `kinds`, all when empty), field
    /// changes (when `kinds` is empty or holds `changes`) and its creation, newest first by
    /// (time, id), at most `limit` entries after the place `before`. Everything within the
    /// actor's permissions: the record must be readable, activities are listed through the
    /// engine's scope, changes of unreadable fields are left out and phone/e-mail values masked.
    /// A kind that is not a current option of the activity's `kind` field is refused.
    pub async fn timeline(
        &self,
        actor: &Actor,
        object: &str,
        id: Uuid,
        kinds: &[String],
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Timeline> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        self.get(actor, object, id).await?;
        let offered = kind_choices(&schema);
        if let Some(k) = kinds.iter().find(|k| *k != CHANGES && !offered.iter().any(|c| &c.key == *k)) {
            return Err(AppError::invalid("timeline.unknown_kind").with_detail(k.clone()));
        }
        let limit = limit.clamp(1, 100);
        // Each source gives its first `limit + 1` entries after the place; the page is the
        // first `limit` of them all, and there is more when one is left over.
        let fetch = limit + 1;
        let mut items = Vec::new();
        let act_kinds: Vec<&str> = kinds.iter().map(String::as_str).filter(|k| *k != CHANGES).collect();
        if kinds.is_empty() || !act_kinds.is_empty() {
            if let Some(filter) = activities_of(actor, &schema, &obj, id, &act_kinds)? {
                items.extend(self.timeline_activities(actor, &schema, filter, before, fetch).await?);
            }
        }
        if kinds.is_empty() || kinds.iter().any(|k| k == CHANGES) {
            items.extend(self.timeline_changes(actor, &obj, id, before, fetch).await?);
        }
        items.sort_by_key(|i| std::cmp::Reverse(i.place()));
        let more = items.len() > limit;
        items.truncate(limit);
        let before = if more { items.last().map(TimelineItem::place) } else { None };
        Ok(Timeline { items, before })
    }

    /// The activities matching `filter` after `before`, newest first by (creation time, id):
    /// the engine's own keyset cursor on `-created_at`, so the actor's scope applies.
    async fn timeline_activities(
        &self,
        actor: &Actor,
        schema: &Schema,
        filter: Json,
        before: Option<Cursor>,
        fetch: usize,
    ) -> Result<Vec<TimelineItem>> {
        let act = schema.object(OBJECT)?;
        let cursor = match (before, act.field("created_at")) {
            (Some(c), Some(f)) => {
                let key = SortKey { field: f.clone(), desc: true };
                Some(kehu_db::query::cursor_after(&[key], vec![json!(c.at)], c.id))
            }
            (Some(_), None) => return Err(AppError::internal("activity without created_at")),
            (None, _) => None,
        };
        let req = ListRequest {
            filter: Some(filter),
            sort: Some(json!("-created_at")),
            limit: Some(fetch as u64),
            cursor,
            ..Default::default()
        };
        let mut out = Vec::new();
        for r in self.list(actor, OBJECT, &req).await?.records {
            let at = micros(&r, "created_at").ok_or_else(|| AppError::internal("activity without created_at"))?;
            out.push(TimelineItem { at, id: r.id, entry: Entry::Activity(r) });
        }
        Ok(out)
    }

    /// Changes of the record's readable fields after `before`, newest first by (time, id), and
    /// its creation when that comes after `before` too.
    async fn timeline_changes(
        &self,
        actor: &Actor,
        obj: &ObjectDef,
        id: Uuid,
        before: Option<Cursor>,
        fetch: usize,
    ) -> Result<Vec<TimelineItem>> {
        let unmasked = actor.sees_unmasked();
        let readable: Vec<&Arc<FieldDef>> = obj.fields.iter().filter(|f| actor.can_read_field(obj, f)).collect();
        let mut out = Vec::new();
        if !readable.is_empty() {
            let mut q = Query::select();
            q.columns(["id", "field_id", "old_value", "new_value", "at", "actor_id"].map(Alias::new))
                .from(Alias::new("field_history"))
                .and_where(col("record_id").eq(id))
                .and_where(col("field_id").is_in(readable.iter().map(|f| f.id)))
                .order_by(Alias::new("at"), Order::Desc)
                .order_by(Alias::new("id"), Order::Desc)
                .limit(fetch as u64);
            if let Some(c) = before {
                q.cond_where(Cond::any().add(col("at").lt(c.at)).add(col("at").eq(c.at).and(col("id").lt(c.id))));
            }
            for row in self.db.all(&q).await? {
                let (Some(hid), Some(at)) = (row.uuid(0), row.i64(4)) else { continue };
                let Some(field) = row.uuid(1).and_then(|fid| readable.iter().find(|f| f.id == fid)) else { continue };
                let parse = |raw| crate::records::history::stored_value(field, raw, unmasked);
                out.push(TimelineItem {
                    at,
                    id: hid,
                    entry: Entry::Change {
                        by: row.uuid(5),
                        field: (*field).clone(),
                        old: parse(row.string(2)),
                        new: parse(row.string(3)),
                    },
                });
            }
        }
        let q = Raw::new(
            "SELECT id, at, actor_id FROM audit_log WHERE record_id = $1 AND action = 'create' ORDER BY at LIMIT 1",
            vec![id.into()],
        );
        if let Some(row) = self.db.one(&q).await? {
            if let (Some(aid), Some(at)) = (row.uuid(0), row.i64(1)) {
                let item = TimelineItem { at, id: aid, entry: Entry::Created { by: row.uuid(2) } };
                if before.is_none_or(|c| item.place() < c) {
                    out.push(item);
                }
            }
        }
        Ok(out)
    }
}

/// The filter for a record's activities (of `kinds`, any when empty): related through any
/// relation of the activity object to the record's object. None when there is no such
/// relation or the actor may not read activities.
fn activities_of(actor: &Actor, schema: &Schema, obj: &ObjectDef, id: Uuid, kinds: &[&str]) -> Result<Option<Json>> {
    let act = schema.object(OBJECT)?;
    let links = links_to(schema, obj);
    if links.is_empty() || actor.check(act, Action::Read).is_err() {
        return Ok(None);
    }
    let mut and = vec![
        json!({"or": links.iter().map(|f| json!({"field": f.api_name, "op": "eq", "value": id})).collect::<Vec<_>>()}),
    ];
    if !kinds.is_empty() {
        and.push(json!({"field": "kind", "op": "in", "value": kinds}));
    }
    Ok(Some(json!({ "and": and })))
}
