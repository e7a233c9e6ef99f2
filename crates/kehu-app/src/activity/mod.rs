//! Activities (notes, calls, meetings, tasks, e-mail logs) and what hangs off them: the record
//! timeline, mentions and task notifications, task reminders, "recently viewed" and "my tasks".
//!
//! An activity is an ordinary record of the `activity` object; it belongs to a record through
//! any of its relation fields (`contact`, `company`, or a relation an admin adds for a custom
//! object), so the timeline, permissions, merge and the API need nothing special.

mod timeline;

pub use timeline::{kind_choices, split_kinds, Cursor, Entry, Timeline, TimelineItem, CHANGES};

use crate::records::RecordView;
use crate::{App, Count, ListRequest, Result};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef, Schema};
use kehu_core::perm::Actor;
use kehu_core::value::{format_datetime, parse_datetime, Value};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::conn::Raw;
use kehu_db::records::col;
use kehu_db::Tx;
use sea_query::{Alias, OnConflict, Order, Query};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// The api name of the activity object.
pub const OBJECT: &str = "activity";

/// Relation fields of the activity object that point at `obj`.
pub fn links_to(schema: &Schema, obj: &ObjectDef) -> Vec<Arc<FieldDef>> {
    let Ok(act) = schema.object(OBJECT) else { return Vec::new() };
    act.active().filter(|f| f.ftype == FieldType::Relation && f.options.target == Some(obj.id)).cloned().collect()
}

/// A time given as micros in a record's JSON (`created_at`, `due_at`).
pub fn micros(r: &RecordView, field: &str) -> Option<i64> {
    r.get(field).as_str().and_then(parse_datetime)
}

impl App {
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

    /// Note that the user opened a record, without waiting for the database: the `recent`
    /// pump writes the noted views in one transaction (at most 10,000 wait; a view noted just
    /// before a crash may be lost, which "recently viewed" can afford).
    pub fn note_view(&self, user: Uuid, object_id: Uuid, record_id: Uuid) {
        if let Ok(mut q) = self.recent_queue.lock() {
            if q.len() < 10_000 {
                // Strictly increasing, so two views in one microsecond keep their order.
                let at = now_micros().max(q.last().map_or(0, |v| v.3 + 1));
                q.push((user, object_id, record_id, at));
            }
        }
    }

    /// Write the noted views (the `recent` pump); returns how many rows it wrote.
    pub async fn flush_views(&self) -> Result<usize> {
        let mut views = match self.recent_queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return Err(AppError::internal("recent views lock poisoned")),
        };
        if views.is_empty() {
            return Ok(0);
        }
        // The latest view of each (user, record) only.
        views.reverse();
        let mut seen = HashSet::new();
        views.retain(|v| seen.insert((v.0, v.2)));
        let mut tx = self.db.begin().await?;
        for (user, object_id, record_id, at) in &views {
            let q = Query::insert()
                .into_table(Alias::new("recent_views"))
                .columns(["user_id", "object_id", "record_id", "at"].map(Alias::new))
                .values_panic([(*user).into(), (*object_id).into(), (*record_id).into(), (*at).into()])
                .on_conflict(
                    OnConflict::columns(["user_id", "record_id"].map(Alias::new))
                        .update_columns(["at"].map(Alias::new))
                        .to_owned(),
                )
                .to_owned();
            tx.exec(&q).await?;
        }
        tx.commit().await?;
        Ok(views.len())
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

/// The pump that writes noted record views.
pub(crate) const RECENT_PUMP: crate::work::Pump = crate::work::Pump { name: "recent_views", tick: recent_tick };

fn recent_tick(app: &App) -> crate::work::BoxFut<'_, Result<usize>> {
    Box::pin(async move {
        app.flush_views().await?;
        // Not "more work": the next views are noted while the pump waits.
        Ok(0)
    })
}
