//! The write core. Every change of a record — create, update, delete, restore, purge, and every
//! path built on them: merge (the survivor and each record re-pointed to it), the links a
//! purge clears, bulk, import, undo, revert — is one `Change` given to `App::apply`, which
//! runs the object's behaviours and writes the row, the audit entry, the field history, the
//! outbox event and the search document in the caller's transaction. The public methods
//! (`create`, `update`, `delete`, `restore`) check permissions, open the transaction and
//! apply one change; nothing outside this file can write a record another way (the steps
//! below `apply` are private to it).

use super::behaviour::{self, ChangeKind, Pending, Written};
use super::input::{check_refs, parse_fields, raise, Mode, Values};
use super::{search_doc, view, RecordView};
use crate::{App, Result};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef};
use kehu_core::perm::{Action, Actor, ScopeFilter};
use kehu_core::value::{to_json, Value};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::journal::{self, AuditEntry, Event, FieldChange};
use kehu_db::records::{self, col, decode, encode_columns, insert_columns, insert_values, InsertRow, Record};
use kehu_db::{search, DbError, InsertInto, Raw, Tx};
use sea_query::{Alias, Expr, Query};
use serde_json::{json, Map, Value as Json};
use std::sync::Arc;

/// Who writes, and to which object within which scope: what every write of the write core
/// needs beside the transaction and the record.
#[derive(Clone, Copy)]
pub(crate) struct WriteCtx<'a> {
    pub actor: &'a Actor,
    pub schema: &'a kehu_core::meta::Schema,
    pub obj: &'a ObjectDef,
    pub scope: &'a kehu_core::perm::ScopeFilter,
}

/// One change of one or more records, applied by `App::apply` in the caller's transaction.
pub(crate) enum Change<'r> {
    /// New records whose values are parsed, the owner among them (`(prefix, values)` per
    /// record), under `ids`, with their statements from `create_statements` (built now, or
    /// ahead of the transaction by an import batch).
    Create { rows: &'r [(String, Values)], ids: &'r [Uuid], stmts: Box<dyn Iterator<Item = Raw> + Send + 'r> },
    /// New values for a record already loaded in the transaction within the context's scope
    /// (only those that differ are written). `in_bin`: even though the record is in the
    /// recycle bin (a merge re-pointing it, a purge clearing its link).
    Update { cur: Record, vals: Values, in_bin: bool },
    /// Move a loaded record into (`delete`) or out of the recycle bin.
    Recycle { cur: Record, delete: bool },
    /// Delete a record in the recycle bin for good: its row, field history and search
    /// document; every link to it is cleared (each an `Update` of the linking record).
    Purge { id: Uuid },
}

/// What `App::apply` did.
pub(crate) enum Applied {
    Created,
    /// The record as written (unchanged when an update changed no value).
    Written(Record),
    Purged,
}

impl Applied {
    /// The record an update or a recycle wrote.
    pub(crate) fn record(self) -> Result<Record> {
        match self {
            Applied::Written(r) => Ok(r),
            _ => Err(AppError::internal("the change wrote no single record")),
        }
    }
}

/// Map a unique violation to the field whose column it names.
pub(super) fn unique_error(obj: &ObjectDef, e: DbError, prefix: &str) -> AppError {
    match &e {
        DbError::Unique { column: Some(c) } => match obj.fields.iter().find(|f| &f.column == c) {
            Some(f) => AppError::field(format!("{prefix}{}", f.api_name), "field.not_unique"),
            None => e.into(),
        },
        _ => e.into(),
    }
}

pub(super) fn values_json(values: &Values) -> Map<String, Json> {
    values.iter().filter(|(_, v)| !v.is_null()).map(|(f, v)| (f.api_name.clone(), to_json(f, v))).collect()
}

/// The JSON text of a new record's values, keys sorted as `values_json` gives them: with
/// `as_changes`, the audit entry's `{"field": [null, value]}`; else `{"field": value}`.
/// Written directly, without building a map, since imports write one per record.
pub(super) fn created_json(values: &Values, as_changes: bool) -> String {
    let mut present: Vec<&(Arc<FieldDef>, Value)> = values.iter().filter(|(_, v)| !v.is_null()).collect();
    present.sort_by(|a, b| a.0.api_name.cmp(&b.0.api_name));
    present.dedup_by(|a, b| a.0.api_name == b.0.api_name);
    let mut out = String::with_capacity(32 * present.len() + 2);
    out.push('{');
    for (i, (f, v)) in present.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(&f.api_name).unwrap_or_default());
        out.push(':');
        if as_changes {
            out.push_str("[null,");
        }
        out.push_str(&journal::json_text(&to_json(f, v)));
        if as_changes {
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// The audit entry's changes (`{field: [old, new]}`) and the field-history rows of changing
/// `cur` to the `changed` values.
pub(super) fn change_log(cur: &Record, changed: &[(Arc<FieldDef>, Value)]) -> (Map<String, Json>, Vec<FieldChange>) {
    let mut changes = Map::new();
    let mut history = Vec::new();
    for (f, v) in changed {
        let old = to_json(f, cur.get(&f.api_name));
        let new = to_json(f, v);
        history.push(FieldChange {
            field_id: f.id,
            old: (!old.is_null()).then(|| old.to_string()),
            new: (!new.is_null()).then(|| new.to_string()),
        });
        changes.insert(f.api_name.clone(), json!([old, new]));
    }
    (changes, history)
}

/// The audit entry and the outbox event of one record change, in the change's transaction.
#[allow(clippy::too_many_arguments)]
pub(super) async fn record_journal(
    tx: &mut Tx,
    actor: &Actor,
    obj: &ObjectDef,
    id: Uuid,
    at: i64,
    (action, event): (&str, &str),
    changes: Json,
    payload: Json,
) -> Result<()> {
    journal::audit(tx, &[AuditEntry { at, actor: actor.user_id, object_id: obj.id, record_id: id, action, changes }])
        .await?;
    journal::outbox(tx, &[Event { event, object_id: obj.id, record_id: id, payload, at }]).await?;
    Ok(())
}

/// The record as a write left it, derived from the row read before it (no second read):
/// changed values, version + 1, and the update or recycle-bin stamps.
pub(super) fn after_write(
    mut rec: Record,
    changed: &[(Arc<FieldDef>, Value)],
    now: i64,
    actor: &Actor,
    deleted: Option<bool>,
) -> Record {
    let by = actor.user_id.map(Value::Ref).unwrap_or(Value::Null);
    let touches_updated = deleted != Some(true);
    for (f, v) in rec.values.iter_mut() {
        if let Some((_, nv)) = changed.iter().find(|(g, _)| g.id == f.id) {
            *v = nv.clone();
        } else if touches_updated && f.api_name == "updated_at" {
            *v = Value::DateTime(now);
        } else if touches_updated && f.api_name == "updated_by" {
            *v = by.clone();
        }
    }
    rec.version += 1;
    match deleted {
        Some(true) => (rec.deleted_at, rec.deleted_by) = (Some(now), actor.user_id),
        Some(false) => (rec.deleted_at, rec.deleted_by) = (None, None),
        None => {}
    }
    rec
}

/// The statements that create records with values already parsed (the owner among them)
/// under the ids given: the rows, then their audit entries, outbox events and search
/// documents, as multi-row statements built one at a time as they are taken — so a
/// pipeline builds each while the database runs the previous one. Refuses a record without
/// an owner when the actor's scope is not "all".
pub(crate) fn create_statements<'a>(
    backend: kehu_db::Backend,
    actor: &'a Actor,
    obj: &'a ObjectDef,
    scope: &kehu_core::perm::ScopeFilter,
    rows: &'a [(String, Values)],
    ids: &'a [Uuid],
    now: i64,
) -> Result<impl Iterator<Item = Raw> + Send + 'a> {
    let owner_field = obj.field("owner").cloned().ok_or_else(|| AppError::internal("object without owner"))?;
    let owner_of = move |vals: &Values| match vals.iter().find(|(f, _)| f.id == owner_field.id) {
        Some((_, Value::Ref(u))) => Some(*u),
        _ => None,
    };
    if !actor.is_system()
        && *scope != kehu_core::perm::ScopeFilter::All
        && rows.iter().any(|(_, v)| owner_of(v).is_none())
    {
        return Err(AppError::forbidden("permission.owner_out_of_scope"));
    }
    let data_fields: Vec<Arc<FieldDef>> = obj.data_fields().cloned().collect();
    let records = InsertInto::new(obj.table.clone(), insert_columns(&data_fields)).statements(
        backend,
        rows.iter().zip(ids).map(move |((_, vals), id)| {
            let row = InsertRow { id: *id, owner: owner_of(vals), actor: actor.user_id, now, values: vals };
            insert_values(&data_fields, &row)
        }),
    );
    // Each created record's event names its audit entry, which holds the created values
    // (`journal::pending_events` builds the event's payload from it).
    let audit_ids: Arc<[Uuid]> = ids.iter().map(|_| new_id()).collect();
    let event_audits = Arc::clone(&audit_ids);
    let audits = journal::audit_into().statements(
        backend,
        rows.iter().zip(ids).enumerate().map(move |(i, ((_, vals), id))| {
            journal::audit_row(audit_ids[i], now, actor.user_id, obj.id, *id, "create", created_json(vals, true))
        }),
    );
    let events = journal::outbox_into().statements(
        backend,
        ids.iter().enumerate().map(move |(i, id)| {
            journal::outbox_row("record.created", obj.id, *id, journal::Body::Audit(event_audits[i]), now)
        }),
    );
    let docs = search::docs_into().statements(
        backend,
        rows.iter().zip(ids).map(move |((_, vals), id)| search::doc_row(search_doc(obj, *id, vals, |_| true))),
    );
    Ok(records.chain(audits).chain(events).chain(docs))
}

impl App {
    /// Create one record.
    pub async fn create(&self, actor: &Actor, object: &str, input: &Map<String, Json>) -> Result<RecordView> {
        let ids = self.create_many(actor, object, std::slice::from_ref(input)).await?;
        self.get(actor, object, ids[0]).await
    }

    /// Create several records in one transaction (all or nothing). Field errors are named
    /// `<row>.<field>` when more than one row is given.
    pub async fn create_many(&self, actor: &Actor, object: &str, inputs: &[Map<String, Json>]) -> Result<Vec<Uuid>> {
        self.with_fresh_metadata(|| self.create_many_once(actor, object, inputs)).await
    }

    async fn create_many_once(&self, actor: &Actor, object: &str, inputs: &[Map<String, Json>]) -> Result<Vec<Uuid>> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let scope = actor.check(&obj, Action::Create)?;
        let now = now_micros();
        let (mut errors, mut denied) = (Vec::new(), Vec::new());
        let owner_field = obj.field("owner").cloned().ok_or_else(|| AppError::internal("object without owner"))?;
        let mut rows: Vec<(String, Values)> = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let prefix = if inputs.len() > 1 { format!("{i}.") } else { String::new() };
            let input = behaviour::derive(&obj, input, true);
            let mut vals = parse_fields(actor, &obj, &input, Mode::Create, &prefix, &mut errors, &mut denied);
            let mut pending = Pending { actor, obj: &obj, kind: ChangeKind::Create, old: None, values: &mut vals };
            if let Err(e) = behaviour::before(&mut pending) {
                if inputs.len() == 1 || e.fields.is_empty() {
                    return Err(e);
                }
                errors.extend(
                    e.fields.into_iter().map(|f| kehu_core::FieldError::new(format!("{prefix}{}", f.field), f.code)),
                );
            }
            // The owner stays among the values: checked as a reference, indexed, journaled.
            if !vals.iter().any(|(f, _)| f.id == owner_field.id) {
                vals.push((owner_field.clone(), actor.user_id.map(Value::Ref).unwrap_or(Value::Null)));
            }
            rows.push((prefix, vals));
        }
        raise(errors, denied)?;
        let ids: Vec<Uuid> = rows.iter().map(|_| new_id()).collect();
        let mut tx = self.db.begin().await?;
        let stmts = Box::new(create_statements(tx.backend(), actor, &obj, &scope, &rows, &ids, now)?);
        let w = WriteCtx { actor, schema: &schema, obj: &obj, scope: &scope };
        self.apply(&mut tx, &w, Change::Create { rows: &rows, ids: &ids, stmts }).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// The write core: apply one change in `tx`, as `w.actor` within `w.scope`. See `Change`.
    pub(crate) async fn apply(&self, tx: &mut Tx, w: &WriteCtx<'_>, change: Change<'_>) -> Result<Applied> {
        match change {
            Change::Create { rows, ids, stmts } => {
                self.create_loaded(tx, w, rows, ids, stmts).await?;
                Ok(Applied::Created)
            }
            Change::Update { cur, vals, in_bin } => {
                self.update_loaded(tx, w, cur, vals, in_bin).await.map(Applied::Written)
            }
            Change::Recycle { cur, delete } => self.recycle_loaded(tx, w, cur, delete).await.map(Applied::Written),
            Change::Purge { id } => {
                self.purge_loaded(tx, w, id).await?;
                Ok(Applied::Purged)
            }
        }
    }

    /// Create: check the records' references (relation targets visible, users active, owners
    /// within the scope), run their statements (rows, audit entries, outbox events, search
    /// documents), then the `after` behaviours of each.
    async fn create_loaded(
        &self,
        tx: &mut Tx,
        w: &WriteCtx<'_>,
        rows: &[(String, Values)],
        ids: &[Uuid],
        stmts: Box<dyn Iterator<Item = Raw> + Send + '_>,
    ) -> Result<()> {
        let WriteCtx { actor, schema, obj, scope } = *w;
        let refs: Vec<(String, &Values)> = rows.iter().map(|(p, v)| (p.clone(), v)).collect();
        check_refs(self, tx, actor, schema, scope, &refs).await?;
        // Only the rows can break a unique index (journal ids are new; documents upsert).
        tx.exec_pipeline(stmts).await.map_err(|e| unique_error(obj, e, ""))?;
        for (id, (_, vals)) in ids.iter().zip(rows) {
            let w = Written { actor, obj, id: *id, kind: ChangeKind::Create, old: None, new: vals };
            behaviour::after(self, tx, &w).await?;
        }
        Ok(())
    }

    /// Read the current row inside a write transaction, within the actor's scope. On
    /// PostgreSQL the row is locked (`FOR UPDATE`): a concurrent writer of the same record
    /// (another server's bulk job) is waited for and its version read, instead of both
    /// reading one version and the second failing as a conflict. SQLite's single writer
    /// serialises them anyway.
    pub(crate) async fn load_for_write(
        &self,
        tx: &mut Tx,
        obj: &ObjectDef,
        id: Uuid,
        scope: &kehu_core::perm::ScopeFilter,
    ) -> Result<Record> {
        let mut q = records::select_one(obj, id, scope);
        q.lock(sea_query::LockType::Update);
        let row = tx.one(&q).await?.ok_or_else(|| AppError::not_found("record.not_found"))?;
        decode(obj, &row).ok_or_else(|| AppError::internal("undecodable row"))
    }

    /// Update some fields of a record. `version` is the version the caller read: if the record
    /// changed since, nothing is written and the answer is a conflict.
    pub async fn update(
        &self,
        actor: &Actor,
        object: &str,
        id: Uuid,
        version: i64,
        patch: &Map<String, Json>,
    ) -> Result<RecordView> {
        self.with_fresh_metadata(|| self.update_once(actor, object, id, version, patch)).await
    }

    async fn update_once(
        &self,
        actor: &Actor,
        object: &str,
        id: Uuid,
        version: i64,
        patch: &Map<String, Json>,
    ) -> Result<RecordView> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let scope = actor.check(&obj, Action::Update)?;
        let (mut errors, mut denied) = (Vec::new(), Vec::new());
        let patch = behaviour::derive(&obj, patch, false);
        let vals = parse_fields(actor, &obj, &patch, Mode::Update, "", &mut errors, &mut denied);
        raise(errors, denied)?;
        let mut tx = self.db.begin().await?;
        let cur = self.load_for_write(&mut tx, &obj, id, &scope).await?;
        if cur.deleted_at.is_some() {
            return Err(AppError::not_found("record.not_found"));
        }
        if cur.version != version {
            return Err(AppError::conflict("record.version_conflict"));
        }
        let w = WriteCtx { actor, schema: &schema, obj: &obj, scope: &scope };
        let after = self.apply(&mut tx, &w, Change::Update { cur, vals, in_bin: false }).await?.record()?;
        tx.commit().await?;
        Ok(view(actor, &obj, &after))
    }

    /// Update: `before` behaviours on the changed values, the row (only if
    /// still at the version read; a record in the recycle bin only with `in_bin`, which the
    /// purge uses to clear links from deleted records), field history, audit entry, one
    /// `record.updated` event of the common shape (`{object, id, version, changes: {field:
    /// [old, new]}}`), search document, then the `after` behaviours; returns the record as
    /// written (unchanged when no value differs).
    async fn update_loaded(
        &self,
        tx: &mut Tx,
        w: &WriteCtx<'_>,
        cur: Record,
        vals: Values,
        in_bin: bool,
    ) -> Result<Record> {
        let WriteCtx { actor, schema, obj, scope } = *w;
        let id = cur.id;
        let version = cur.version;
        let mut changed: Values = vals.into_iter().filter(|(f, v)| cur.get(&f.api_name) != v).collect();
        if changed.is_empty() {
            return Ok(cur);
        }
        let mut pending =
            Pending { actor, obj, kind: ChangeKind::Update, old: Some(&cur.values), values: &mut changed };
        behaviour::before(&mut pending)?;
        changed.retain(|(f, v)| cur.get(&f.api_name) != v);
        if changed.is_empty() {
            return Ok(cur);
        }
        check_refs(self, tx, actor, schema, scope, &[(String::new(), &changed)]).await?;
        let now = now_micros();
        let mut q = Query::update();
        q.table(Alias::new(&obj.table));
        for (f, v) in &changed {
            for (c, sv) in encode_columns(f, v) {
                q.value(Alias::new(c), sv);
            }
        }
        q.value(Alias::new("updated_at"), now)
            .value(Alias::new("updated_by"), sea_query::Value::from(actor.user_id))
            .value(Alias::new("version"), Expr::col(Alias::new("version")).add(1))
            .and_where(col("id").eq(id))
            .and_where(col("version").eq(version));
        if !in_bin {
            q.and_where(col("deleted_at").is_null());
        }
        if tx.exec(&q).await.map_err(|e| unique_error(obj, e, ""))? != 1 {
            return Err(AppError::conflict("record.version_conflict"));
        }
        let (changes, history) = change_log(&cur, &changed);
        journal::field_history(tx, now, actor.user_id, obj.id, id, &history).await?;
        let payload = json!({"object": obj.api_name, "id": id, "version": version + 1, "changes": changes});
        record_journal(tx, actor, obj, id, now, ("update", "record.updated"), Json::Object(changes), payload).await?;
        let old_vals = cur.values.clone();
        let after = after_write(cur, &changed, now, actor, None);
        if after.deleted_at.is_none() {
            search::upsert(tx, &[search_doc(obj, id, &after.values, |_| true)]).await?;
        }
        let w = Written { actor, obj, id, kind: ChangeKind::Update, old: Some(&old_vals), new: &after.values };
        behaviour::after(self, tx, &w).await?;
        Ok(after)
    }

    /// Move a record to the recycle bin. With `version`, only if it is still that version.
    pub async fn delete(&self, actor: &Actor, object: &str, id: Uuid, version: Option<i64>) -> Result<()> {
        self.recycle(actor, object, id, version, true).await.map(|_| ())
    }

    /// Bring a record back from the recycle bin.
    pub async fn restore(&self, actor: &Actor, object: &str, id: Uuid) -> Result<RecordView> {
        self.recycle(actor, object, id, None, false).await
    }

    /// Move a record into (`delete`) or out of the recycle bin: the row, the audit entry, the
    /// outbox event and the search document change together.
    async fn recycle(
        &self,
        actor: &Actor,
        object: &str,
        id: Uuid,
        version: Option<i64>,
        delete: bool,
    ) -> Result<RecordView> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let scope = actor.check(&obj, Action::Delete)?;
        let mut tx = self.db.begin().await?;
        let cur = self.load_for_write(&mut tx, &obj, id, &scope).await?;
        match (delete, cur.deleted_at.is_some()) {
            (true, true) => return Err(AppError::not_found("record.not_found")),
            (false, false) => return Err(AppError::conflict("record.not_deleted")),
            _ => {}
        }
        if version.is_some_and(|v| v != cur.version) {
            return Err(AppError::conflict("record.version_conflict"));
        }
        let w = WriteCtx { actor, schema: &schema, obj: &obj, scope: &scope };
        let after = self.apply(&mut tx, &w, Change::Recycle { cur, delete }).await?.record()?;
        tx.commit().await?;
        Ok(view(actor, &obj, &after))
    }

    /// Recycle: the row's bin stamps, its audit entry, outbox event and search document,
    /// then the `after` behaviours.
    async fn recycle_loaded(&self, tx: &mut Tx, w: &WriteCtx<'_>, cur: Record, delete: bool) -> Result<Record> {
        let WriteCtx { actor, obj, .. } = *w;
        let id = cur.id;
        let now = now_micros();
        let by = sea_query::Value::from(actor.user_id);
        let mut q = Query::update();
        q.table(Alias::new(&obj.table));
        if delete {
            q.value(Alias::new("deleted_at"), now).value(Alias::new("deleted_by"), by);
        } else {
            q.value(Alias::new("deleted_at"), sea_query::Value::BigInt(None))
                .value(Alias::new("deleted_by"), sea_query::Value::Uuid(None))
                .value(Alias::new("updated_at"), now)
                .value(Alias::new("updated_by"), by);
        }
        q.value(Alias::new("version"), Expr::col(Alias::new("version")).add(1))
            .and_where(col("id").eq(id))
            .and_where(col("version").eq(cur.version));
        if tx.exec(&q).await.map_err(|e| unique_error(obj, e, ""))? != 1 {
            return Err(AppError::conflict("record.version_conflict"));
        }
        let (action, event) = if delete { ("delete", "record.deleted") } else { ("restore", "record.restored") };
        let payload = json!({"object": obj.api_name, "id": id, "version": cur.version + 1});
        record_journal(tx, actor, obj, id, now, (action, event), json!({}), payload).await?;
        let after = after_write(cur, &[], now, actor, Some(delete));
        if delete {
            search::remove(tx, id).await?;
        } else {
            search::upsert(tx, &[search_doc(obj, id, &after.values, |_| true)]).await?;
        }
        let kind = if delete { ChangeKind::Delete } else { ChangeKind::Restore };
        let w = Written { actor, obj, id, kind, old: None, new: &after.values };
        behaviour::after(self, tx, &w).await?;
        Ok(after)
    }

    /// Purge: the row (only if in the recycle bin), its field history and search document;
    /// every link to it cleared through `update_loaded` (deleted linking records too); its
    /// audit entry and `record.purged` event; then the `after` behaviours.
    async fn purge_loaded(&self, tx: &mut Tx, w: &WriteCtx<'_>, id: Uuid) -> Result<()> {
        let WriteCtx { actor, schema, obj, .. } = *w;
        let now = now_micros();
        let del = Query::delete()
            .from_table(Alias::new(&obj.table))
            .and_where(col("id").eq(id))
            .and_where(col("deleted_at").is_not_null())
            .to_owned();
        if tx.exec(&del).await? != 1 {
            return Err(AppError::not_found("record.not_found"));
        }
        tx.exec(&Raw::new("DELETE FROM field_history WHERE record_id = $1", vec![id.into()])).await?;
        search::remove(tx, id).await?;
        for o in schema.objects() {
            for f in o.fields.iter().filter(|f| f.ftype == FieldType::Relation && f.options.target == Some(obj.id)) {
                let mut sel = records::select_in_scope(o, &ScopeFilter::All);
                sel.and_where(col(&f.column).eq(id));
                for row in tx.all(&sel).await? {
                    let rec = decode(o, &row).ok_or_else(|| AppError::internal("undecodable row"))?;
                    let in_bin = rec.deleted_at.is_some();
                    let vals = vec![(f.clone(), Value::Null)];
                    let lw = WriteCtx { actor, schema, obj: o, scope: &ScopeFilter::All };
                    self.update_loaded(tx, &lw, rec, vals, in_bin).await?;
                }
            }
        }
        let payload = json!({"object": obj.api_name, "id": id});
        record_journal(tx, actor, obj, id, now, ("purge", "record.purged"), json!({}), payload).await?;
        let w = Written { actor, obj, id, kind: ChangeKind::Purge, old: None, new: &[] };
        behaviour::after(self, tx, &w).await?;
        Ok(())
    }
}
