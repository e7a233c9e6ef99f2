//! Activities (notes, calls, meetings, tasks, e-mail logs) and what hangs off them: the record
//! timeline, mentions and task notifications, task reminders, "recently viewed" and "my tasks".
//!
//! An activity is an ordinary record of the `activity` object; it belongs to a record through
//! any of its relation fields (`contact`, `company`, or a relation an admin adds for a custom
//! object), so the timeline, permissions, merge and the API need nothing special.

use crate::records::RecordView;
use crate::{App, Count, ListRequest, Result};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef};
use kehu_core::perm::Actor;
use kehu_core::value::{format_datetime, parse_datetime, Value};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::conn::Raw;
use kehu_db::records::col;
use kehu_db::Tx;
use sea_query::{Alias, OnConflict, Order, Query};
use serde_json::{json, Value as Json};
use std::collections::HashSet;
use std::sync::Arc;

/// The api name of the activity object.
pub const OBJECT: &str = "activity";
/// Kinds of activity, in the order the composer offers them.
pub const KINDS: [&str; 5] = ["note", "call", "meeting", "task", "email"];
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
    pub entry: Entry,
}

/// A page of a timeline, newest first; `before` continues it.
pub struct Timeline {
    pub items: Vec<TimelineItem>,
    pub before: Option<i64>,
}

/// Relation fields of the activity object that point at `obj`.
pub fn links_to(schema: &kehu_core::meta::Schema, obj: &ObjectDef) -> Vec<Arc<FieldDef>> {
    let Ok(act) = schema.object(OBJECT) else { return Vec::new() };
    act.active().filter(|f| f.ftype == FieldType::Relation && f.options.target == Some(obj.id)).cloned().collect()
}

/// A time given as micros in a record's JSON (`created_at`, `due_at`).
pub fn micros(r: &RecordView, field: &str) -> Option<i64> {
    r.get(field).as_str().and_then(parse_datetime)
}

impl App {
    /// The timeline of a record: its activities (any kind in `kinds`, all when empty), field
    /// changes (when `kinds` is empty or holds `changes`) and its creation, newest first, at
    /// most `limit` entries older than `before`. Everything within the actor's permissions:
    /// the record must be readable, activities are listed through the engine's scope, changes
    /// of unreadable fields are left out and phone/e-mail values masked.
    pub async fn timeline(
        &self,
        actor: &Actor,
        object: &str,
        id: Uuid,
        kinds: &[String],
        before: Option<i64>,
        limit: usize,
    ) -> Result<Timeline> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        self.get(actor, object, id).await?;
        let limit = limit.clamp(1, 100);
        let want = |k: &str| kinds.is_empty() || kinds.iter().any(|x| x == k);
        let mut items: Vec<TimelineItem> = Vec::new();

        let act_kinds: Vec<&str> = KINDS.iter().copied().filter(|k| want(k)).collect();
        let links = links_to(&schema, &obj);
        if !act_kinds.is_empty()
            && !links.is_empty()
            && actor.check(schema.object(OBJECT)?, kehu_core::perm::Action::Read).is_ok()
        {
            let mut and = vec![
                json!({"or": links.iter().map(|f| json!({"field": f.api_name, "op": "eq", "value": id})).collect::<Vec<_>>()}),
            ];
            if act_kinds.len() < KINDS.len() {
                and.push(json!({"field": "kind", "op": "in", "value": act_kinds}));
            }
            if let Some(b) = before {
                and.push(json!({"field": "created_at", "op": "lt", "value": format_datetime(b)}));
            }
            let req = ListRequest {
                filter: Some(json!({ "and": and })),
                sort: Some(json!("-created_at")),
                limit: Some(limit as u64),
                ..Default::default()
            };
            for r in self.list(actor, OBJECT, &req).await?.records {
                let at = micros(&r, "created_at").unwrap_or(0);
                items.push(TimelineItem { at, entry: Entry::Activity(r) });
            }
        }

        if want(CHANGES) {
            let unmasked = actor.sees_unmasked();
            let mut sql = String::from(
                "SELECT field_id, old_value, new_value, at, actor_id FROM field_history WHERE record_id = $1",
            );
            let mut vals: Vec<sea_query::Value> = vec![id.into()];
            if let Some(b) = before {
                sql.push_str(" AND at < $2");
                vals.push(b.into());
            }
            sql.push_str(&format!(" ORDER BY at DESC LIMIT {}", limit * 2));
            for row in self.db.all(&Raw::new(sql, vals)).await? {
                let Some(field) = row.uuid(0).and_then(|fid| obj.fields.iter().find(|f| f.id == fid)) else { continue };
                if !actor.can_read_field(&obj, field) {
                    continue;
                }
                let parse = |raw| crate::records::history::stored_value(field, raw, unmasked);
                items.push(TimelineItem {
                    at: row.i64(3).unwrap_or(0),
                    entry: Entry::Change {
                        by: row.uuid(4),
                        field: field.clone(),
                        old: parse(row.string(1)),
                        new: parse(row.string(2)),
                    },
                });
            }
            let q = Raw::new(
                "SELECT at, actor_id FROM audit_log WHERE record_id = $1 AND action = 'create' ORDER BY at LIMIT 1",
                vec![id.into()],
            );
            if let Some(row) = self.db.one(&q).await? {
                let at = row.i64(0).unwrap_or(0);
                if before.is_none_or(|b| at < b) {
                    items.push(TimelineItem { at, entry: Entry::Created { by: row.uuid(1) } });
                }
            }
        }
        // Newest first; on equal times activities before changes before the creation.
        items.sort_by(|a, b| b.at.cmp(&a.at).then(rank(&a.entry).cmp(&rank(&b.entry))));
        let more = items.len() > limit;
        items.truncate(limit);
        let before = if more { items.last().map(|i| i.at) } else { None };
        Ok(Timeline { items, before })
    }

    /// The actor's open tasks, soonest due first (tasks without a due date last).
    pub async fn my_tasks(&self, actor: &Actor) -> Result<Vec<RecordView>> {
        let req = ListRequest {
            filter: Some(json!({"and": [
                {"field": "kind", "op": "eq", "value": "task"},
                {"field": "done", "op": "eq", "value": false},
                {"field": "owner", "op": "eq", "value": "$me"},
            ]})),
            sort: Some(json!("due_at")),
            limit: Some(200),
            ..Default::default()
        };
        let mut tasks = self.list(actor, OBJECT, &req).await?.records;
        tasks.sort_by_key(|t| micros(t, "due_at").unwrap_or(i64::MAX));
        Ok(tasks)
    }

    /// How many records of `object` the actor owns (capped like list counts).
    pub async fn count_mine(&self, actor: &Actor, object: &str) -> Result<u64> {
        let req = ListRequest {
            filter: Some(json!({"field": "owner", "op": "eq", "value": "$me"})),
            limit: Some(1),
            count: Count::Capped,
            ..Default::default()
        };
        Ok(self.list(actor, object, &req).await?.total.unwrap_or(0))
    }

    /// Remember that the user opened a record (for "recently viewed").
    pub async fn touch_recent(&self, user: Uuid, object_id: Uuid, record_id: Uuid) -> Result<()> {
        let q = Query::insert()
            .into_table(Alias::new("recent_views"))
            .columns(["user_id", "object_id", "record_id", "at"].map(Alias::new))
            .values_panic([user.into(), object_id.into(), record_id.into(), now_micros().into()])
            .on_conflict(
                OnConflict::columns(["user_id", "record_id"].map(Alias::new))
                    .update_columns(["at"].map(Alias::new))
                    .to_owned(),
            )
            .to_owned();
        self.db.write(&q).await?;
        Ok(())
    }

    /// Records the actor opened lately and may still read, newest first.
    pub async fn recent(&self, actor: &Actor, limit: usize) -> Result<Vec<(Arc<ObjectDef>, RecordView)>> {
        let Some(user) = actor.user_id else { return Ok(Vec::new()) };
        let schema = self.schema().await?;
        let q = Query::select()
            .columns(["object_id", "record_id"].map(Alias::new))
            .from(Alias::new("recent_views"))
            .and_where(col("user_id").eq(user))
            .order_by(Alias::new("at"), Order::Desc)
            .limit(limit as u64 * 2)
            .to_owned();
        let mut out = Vec::new();
        for row in self.db.all(&q).await? {
            let (Some(oid), Some(rid)) = (row.uuid(0), row.uuid(1)) else { continue };
            let Some(obj) = schema.object_by_id(oid) else { continue };
            if let Ok(r) = self.get(actor, &obj.api_name, rid).await {
                out.push((obj.clone(), r));
            }
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Notify the owners of open tasks whose reminder time has come (within the last day).
    /// Each reminder is sent once, however often this runs. Returns how many were sent now.
    pub async fn send_reminders(&self, now: i64) -> Result<u64> {
        let system = Actor::system();
        let schema = self.schema().await?;
        let obj = schema.object(OBJECT)?;
        let mut sent = 0;
        let mut cursor = None;
        // Every due task, page by page (a busy minute may have thousands), each page's
        // reminders in one transaction; the key makes each reminder happen once.
        loop {
            let req = ListRequest {
                filter: Some(json!({"and": [
                    {"field": "kind", "op": "eq", "value": "task"},
                    {"field": "done", "op": "eq", "value": false},
                    {"field": "remind_at", "op": "between", "value": [format_datetime(now - 86_400_000_000), format_datetime(now)]},
                ]})),
                sort: Some(json!("remind_at")),
                limit: Some(200),
                cursor: cursor.take(),
                ..Default::default()
            };
            let page = self.list(&system, OBJECT, &req).await?;
            let mut tx = self.db.begin().await?;
            for t in &page.records {
                let Some(owner) = t.get("owner").as_str().and_then(|s| s.parse().ok()) else { continue };
                let at = micros(t, "remind_at").unwrap_or(now);
                let key = format!("remind:{}:{at}", t.id);
                sent += notify(&mut tx, owner, "reminder", None, obj.id, t.id, &key).await?;
            }
            tx.commit().await?;
            match page.next_cursor {
                Some(c) if !page.records.is_empty() => cursor = Some(c),
                _ => return Ok(sent),
            }
        }
    }

    /// The user's notifications, newest first.
    pub async fn notifications(&self, actor: &Actor, limit: u64) -> Result<Vec<Notification>> {
        self.notifications_where(actor, None, limit).await
    }

    /// One notification of the user.
    pub async fn notification(&self, actor: &Actor, id: Uuid) -> Result<Notification> {
        let mut list = self.notifications_where(actor, Some(id), 1).await?;
        list.pop().ok_or_else(|| AppError::not_found("notification.not_found"))
    }

    async fn notifications_where(&self, actor: &Actor, id: Option<Uuid>, limit: u64) -> Result<Vec<Notification>> {
        let Some(user) = actor.user_id else { return Ok(Vec::new()) };
        let schema = self.schema().await?;
        let mut q = Query::select();
        q.columns(["id", "kind", "actor_id", "object_id", "record_id", "at", "read_at"].map(Alias::new))
            .from(Alias::new("notifications"))
            .and_where(col("user_id").eq(user))
            .order_by(Alias::new("at"), Order::Desc)
            .limit(limit);
        if let Some(id) = id {
            q.and_where(col("id").eq(id));
        }
        let rows = self.db.all(&q).await?;
        let actors: Vec<Uuid> = rows.iter().filter_map(|r| r.uuid(2)).collect();
        let names = self.user_names(&actors).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (Some(id), Some(oid), Some(rid)) = (row.uuid(0), row.uuid(3), row.uuid(4)) else { continue };
            let object = schema.object_by_id(oid).cloned();
            // Read through the engine as the recipient: what they may not read stays unnamed.
            let record = match &object {
                Some(o) => self.get(actor, &o.api_name, rid).await.ok(),
                None => None,
            };
            out.push(Notification {
                id,
                kind: row.string(1).unwrap_or_default(),
                actor_name: row.uuid(2).and_then(|a| names.get(&a).cloned()),
                object,
                record,
                at: row.i64(5).unwrap_or(0),
                read: row.i64(6).is_some(),
            });
        }
        Ok(out)
    }

    /// How many notifications the user has not read.
    pub async fn unread_notifications(&self, user: Uuid) -> Result<u64> {
        let q =
            Raw::new("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", vec![user.into()]);
        Ok(self.db.one(&q).await?.and_then(|r| r.i64(0)).unwrap_or(0) as u64)
    }

    /// Mark one (or, with `None`, every) notification of the user read.
    pub async fn mark_read(&self, user: Uuid, id: Option<Uuid>) -> Result<u64> {
        let mut q = Query::update();
        q.table(Alias::new("notifications"))
            .value(Alias::new("read_at"), now_micros())
            .and_where(col("user_id").eq(user))
            .and_where(col("read_at").is_null());
        if let Some(id) = id {
            q.and_where(col("id").eq(id));
        }
        Ok(self.db.write(&q).await?)
    }
}

fn rank(e: &Entry) -> u8 {
    match e {
        Entry::Activity(_) => 0,
        Entry::Change { .. } => 1,
        Entry::Created { .. } => 2,
    }
}

/// A notification as its recipient sees it.
pub struct Notification {
    pub id: Uuid,
    /// `mention`, `assigned` or `reminder`.
    pub kind: String,
    pub actor_name: Option<String>,
    pub object: Option<Arc<ObjectDef>>,
    /// The record, when the recipient may read it.
    pub record: Option<RecordView>,
    pub at: i64,
    pub read: bool,
}

/// Insert one notification unless its `dedupe` key exists; 1 if inserted.
async fn notify(
    tx: &mut Tx,
    user: Uuid,
    kind: &str,
    actor: Option<Uuid>,
    object_id: Uuid,
    record_id: Uuid,
    dedupe: &str,
) -> Result<u64> {
    let q = Query::insert()
        .into_table(Alias::new("notifications"))
        .columns(["id", "user_id", "kind", "actor_id", "object_id", "record_id", "at", "dedupe"].map(Alias::new))
        .values_panic([
            new_id().into(),
            user.into(),
            kind.into(),
            sea_query::Value::from(actor).into(),
            object_id.into(),
            record_id.into(),
            now_micros().into(),
            dedupe.into(),
        ])
        .on_conflict(OnConflict::column(Alias::new("dedupe")).do_nothing().to_owned())
        .to_owned();
    Ok(tx.exec(&q).await?)
}

/// Users mentioned in `text` as `@Name`: at each `@`, the longest active user's name that
/// follows it (so `@张伟` is 张伟, not a user called 张).
async fn mentioned(tx: &mut Tx, text: &str) -> Result<Vec<Uuid>> {
    if !text.contains('@') {
        return Ok(Vec::new());
    }
    let q = Raw::new("SELECT id, name FROM users WHERE is_active = $1", vec![true.into()]);
    let users: Vec<(Uuid, String)> =
        tx.all(&q).await?.into_iter().filter_map(|r| Some((r.uuid(0)?, r.string(1)?))).collect();
    let mut out = Vec::new();
    for (i, _) in text.match_indices('@') {
        let rest = &text[i + 1..];
        let best =
            users.iter().filter(|(_, n)| !n.is_empty() && rest.starts_with(n.as_str())).max_by_key(|(_, n)| n.len());
        if let Some((id, _)) = best {
            if !out.contains(id) {
                out.push(*id);
            }
        }
    }
    Ok(out)
}

fn text_of(values: &[(Arc<FieldDef>, Value)], api: &str) -> Option<String> {
    values.iter().find(|(f, _)| f.api_name == api).and_then(|(_, v)| match v {
        Value::Text(s) | Value::Choice(s) => Some(s.clone()),
        _ => None,
    })
}

fn ref_of(values: &[(Arc<FieldDef>, Value)], api: &str) -> Option<Uuid> {
    values.iter().find(|(f, _)| f.api_name == api).and_then(|(_, v)| match v {
        Value::Ref(u) => Some(*u),
        _ => None,
    })
}

/// The activity module's behaviour: notifications (below) after every create or update.
struct Notifications;

impl crate::records::behaviour::Behaviour for Notifications {
    fn after<'a>(
        &'a self,
        _app: &'a App,
        tx: &'a mut Tx,
        w: &'a crate::records::behaviour::Written<'a>,
    ) -> crate::work::BoxFut<'a, Result<()>> {
        use crate::records::behaviour::ChangeKind;
        Box::pin(async move {
            match w.kind {
                ChangeKind::Create | ChangeKind::Update => on_write(tx, w.actor, w.obj, w.id, w.old, w.new).await,
                _ => Ok(()),
            }
        })
    }
}

/// The module's behaviours, by object.
pub(crate) fn behaviours() -> Vec<(&'static str, Arc<dyn crate::records::behaviour::Behaviour>)> {
    vec![(OBJECT, Arc::new(Notifications))]
}

/// Notifications an activity write causes, in the write's transaction: users newly mentioned
/// in the body, and the owner of a task someone else assigned to them.
async fn on_write(
    tx: &mut Tx,
    actor: &Actor,
    obj: &ObjectDef,
    id: Uuid,
    old: Option<&[(Arc<FieldDef>, Value)]>,
    new: &[(Arc<FieldDef>, Value)],
) -> Result<()> {
    if obj.api_name != OBJECT {
        return Ok(());
    }
    let body =
        |vals: &[(Arc<FieldDef>, Value)]| text_of(vals, "body").map(|h| crate::rich::plain(&h)).unwrap_or_default();
    let now_body = body(new);
    let before: HashSet<Uuid> = match old {
        Some(o) => mentioned(tx, &body(o)).await?.into_iter().collect(),
        None => HashSet::new(),
    };
    for user in mentioned(tx, &now_body).await? {
        if Some(user) == actor.user_id || before.contains(&user) {
            continue;
        }
        notify(tx, user, "mention", actor.user_id, obj.id, id, &format!("mention:{id}:{user}")).await?;
    }
    let is_task = text_of(new, "kind").as_deref() == Some("task");
    let owner = ref_of(new, "owner");
    let old_owner = old.and_then(|o| ref_of(o, "owner"));
    if let Some(owner) = owner {
        if is_task && Some(owner) != actor.user_id && Some(owner) != old_owner {
            let key = format!("assigned:{id}:{owner}:{}", now_micros());
            notify(tx, owner, "assigned", actor.user_id, obj.id, id, &key).await?;
        }
    }
    Ok(())
}

/// Check the user-chosen kind filter of a timeline.
pub fn parse_kinds(raw: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for k in raw.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        if !(KINDS.contains(&k) || k == CHANGES) {
            return Err(AppError::invalid("timeline.unknown_kind"));
        }
        out.push(k.to_string());
    }
    Ok(out)
}
