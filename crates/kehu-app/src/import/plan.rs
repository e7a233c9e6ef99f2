//! Deciding what each row does, without writing: the dry run runs this over the whole file,
//! and every batch of the real run runs the very same code on its rows inside its
//! transaction (where the database already holds the earlier batches' records) — so both
//! count the same.
//!
//! Per batch: the key, unique, relation and owner values of all rows are looked up with one
//! `IN (…)` query each (no per-row round trips); then each row is parsed by the engine's own
//! field parser and classified as create / update / unchanged / skipped / failed.

use super::mapping::ImportSettings;
use crate::records::input::Values;
use crate::{App, Result};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef, Schema};
use kehu_core::perm::{Action, Actor, ScopeFilter};
use kehu_core::value::{parse_input, Value};
use kehu_core::{AppError, Uuid};
use kehu_db::conn::DbResult;
use kehu_db::records::{col, decode, encode, scope_expr, select_in_scope, Record};
use kehu_db::{Db, DbRow, Sql, Tx};
use sea_query::{Alias, Query};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Reads for planning: outside a transaction (dry run) or inside the batch's.
pub(crate) enum Conn<'a> {
    Db(&'a Db),
    Tx(&'a mut Tx),
}

impl Conn<'_> {
    pub(crate) async fn all(&mut self, q: &impl Sql) -> DbResult<Vec<DbRow>> {
        match self {
            Conn::Db(d) => d.all(q).await,
            Conn::Tx(t) => t.all(q).await,
        }
    }
}

/// One problem with one row: spreadsheet row number (header = 1), the column, a stable code,
/// and for duplicates the row where the value was first seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RowIssue {
    pub row: u64,
    pub column: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_row: Option<u64>,
}

/// What one column fills.
pub(crate) enum Col {
    Skip,
    Field(Arc<FieldDef>),
    Relation(Arc<FieldDef>, Arc<ObjectDef>),
    Owner(Arc<FieldDef>),
}

/// Settings resolved against metadata and the user, ready for rows.
pub(crate) struct Plan {
    pub obj: Arc<ObjectDef>,
    pub schema: Arc<Schema>,
    pub actor: Actor,
    pub settings: ImportSettings,
    pub headers: Vec<String>,
    pub cols: Vec<Col>,
    pub key: Option<(usize, Arc<FieldDef>)>,
    /// Mapped unique fields (column, field).
    pub uniques: Vec<(usize, Arc<FieldDef>)>,
    pub create_scope: Option<ScopeFilter>,
    pub update_scope: Option<ScopeFilter>,
    pub(super) users: UserIndex,
}

#[derive(Default)]
pub(super) struct UserIndex {
    pub by_email: HashMap<String, (Uuid, Option<Uuid>)>,
    pub by_name: HashMap<String, Vec<(Uuid, Option<Uuid>)>>,
}

/// A row of a batch: its number in the file, its cells, and the duplicate-in-file issue the
/// prepare step found for it.
pub(crate) type BatchRow = (u64, Vec<String>, Option<RowIssue>);

/// What a batch's rows refer to in the database (`Plan::look_up`).
pub(crate) struct Lookups {
    /// (field, value) → ids of the records holding it (every record not in the recycle bin).
    holders: HashMap<(Uuid, String), Vec<Uuid>>,
    /// Records the key matched, read in full within the update scope.
    matched: HashMap<Uuid, Record>,
    /// (target object, name or "\u{1}" + external id) → (id, readable).
    related: HashMap<(Uuid, String), Vec<(Uuid, bool)>>,
}

/// A row's decision.
pub(crate) enum Outcome {
    Create { row: u64, values: Values },
    Update { row: u64, cur: Box<Record>, values: Values },
    Unchanged,
    Skipped,
    Failed { row: u64, cells: Vec<String>, issues: Vec<RowIssue> },
}

/// State of one planning session that outlives a batch: related records that would be
/// created (dry run: across the whole file; real run: one batch) and unique values that an
/// earlier row frees.
#[derive(Default)]
pub(crate) struct Session {
    /// (target object, name) → placeholder id of a related record to create.
    pub pending: HashMap<(Uuid, String), Uuid>,
    /// Placeholders some successful row uses (created by the real run, counted by both).
    pub used: HashSet<Uuid>,
    pub(super) freed: HashSet<(Uuid, String)>,
}

/// A neutralising apostrophe our CSV exports put before `=`, `+`, `-`, `@` is not data.
pub(crate) fn clean_cell(s: &str) -> &str {
    let t = s.trim();
    match t.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => t,
    }
}

/// A tags / multi-select cell as a list, split as every text input is
/// (`kehu_core::value::split_list`).
pub(super) fn split_list(s: &str) -> Json {
    Json::Array(kehu_core::value::split_list(s).into_iter().map(|p| Json::String(p.to_string())).collect())
}

pub(super) fn storage_key(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) | Value::Choice(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Plan {
    pub(crate) async fn new(
        app: &App,
        actor: Actor,
        object_id: Uuid,
        headers: Vec<String>,
        settings: ImportSettings,
    ) -> Result<Plan> {
        let schema = app.schema().await?;
        let obj = schema.object_by_id(object_id).cloned().ok_or_else(|| AppError::not_found("object.not_found"))?;
        super::mapping::validate(&actor, &schema, &obj, &settings, headers.len())?;
        let mut cols = Vec::with_capacity(headers.len());
        let mut uniques = Vec::new();
        let mut key = None;
        for (i, c) in settings.columns.iter().enumerate() {
            let Some(f) = c.as_ref().and_then(|a| obj.field(a)) else {
                cols.push(Col::Skip);
                continue;
            };
            if settings.key.as_deref() == Some(f.api_name.as_str()) {
                key = Some((i, f.clone()));
            }
            if f.unique {
                uniques.push((i, f.clone()));
            }
            cols.push(match f.ftype {
                FieldType::User if f.api_name == "owner" => Col::Owner(f.clone()),
                FieldType::User => Col::Owner(f.clone()),
                FieldType::Relation => match f.options.target.and_then(|t| schema.object_by_id(t)) {
                    Some(t) => Col::Relation(f.clone(), t.clone()),
                    None => Col::Skip,
                },
                _ => Col::Field(f.clone()),
            });
        }
        let create_scope = actor.check(&obj, Action::Create).ok();
        let update_scope = actor.check(&obj, Action::Update).ok();
        let mut users = UserIndex::default();
        if cols.iter().any(|c| matches!(c, Col::Owner(_))) {
            let q = Query::select()
                .columns(["id", "email", "name", "team_id"].map(Alias::new))
                .from(Alias::new("users"))
                .and_where(col("is_active").eq(true))
                .to_owned();
            for r in app.db.all(&q).await? {
                let (Some(id), Some(email), Some(name)) = (r.uuid(0), r.string(1), r.string(2)) else { continue };
                let team = r.uuid(3);
                users.by_email.insert(email.to_lowercase(), (id, team));
                users.by_name.entry(name.trim().to_string()).or_default().push((id, team));
            }
        }
        Ok(Plan { obj, schema, actor, settings, headers, cols, key, uniques, create_scope, update_scope, users })
    }

    pub(super) fn header(&self, i: usize) -> String {
        self.headers.get(i).cloned().unwrap_or_default()
    }

    pub(super) fn column_of(&self, api: &str) -> String {
        match self.settings.columns.iter().position(|c| c.as_deref() == Some(api)) {
            Some(i) => self.header(i),
            None => self.obj.field(api).map(|f| f.label.zh.clone()).unwrap_or_else(|| api.to_string()),
        }
    }

    /// The normalised key/unique value of a cell (None when empty or invalid).
    pub(crate) fn unique_value(f: &FieldDef, cell: &str) -> Option<String> {
        let cell = clean_cell(cell);
        if cell.is_empty() {
            return None;
        }
        parse_input(f, &Json::String(cell.to_string())).ok().as_ref().and_then(storage_key)
    }

    /// Which columns are checked for duplicates within the file.
    pub(crate) fn dup_columns(&self) -> Vec<(usize, Arc<FieldDef>)> {
        let mut out = self.uniques.clone();
        if let Some((i, f)) = &self.key {
            if !out.iter().any(|(j, _)| j == i) {
                out.push((*i, f.clone()));
            }
        }
        out
    }

    /// Decide every row of a batch. `rows` are (row number, cells, duplicate-in-file issue).
    pub(crate) async fn plan_batch(
        &self,
        conn: &mut Conn<'_>,
        session: &mut Session,
        rows: Vec<BatchRow>,
    ) -> Result<Vec<Outcome>> {
        let found = self.look_up(conn, &rows).await?;
        Ok(self.decide(session, &found, rows))
    }

    /// Decide every row given the batch's lookups (no database access).
    pub(crate) fn decide(&self, session: &mut Session, found: &Lookups, rows: Vec<BatchRow>) -> Vec<Outcome> {
        rows.into_iter()
            .map(|(row, cells, dup)| {
                self.plan_row(session, &found.holders, &found.matched, &found.related, row, cells, dup)
            })
            .collect()
    }

    /// Read what the rows of a batch refer to: records holding their key and unique values,
    /// the records their key matches, related records by name or external id.
    pub(crate) async fn look_up(&self, conn: &mut Conn<'_>, rows: &[BatchRow]) -> Result<Lookups> {
        let obj = &self.obj;
        // Values to look up, for all rows at once.
        let mut unique_vals: HashMap<Uuid, HashSet<String>> = HashMap::new();
        let mut rel_names: HashMap<Uuid, HashSet<String>> = HashMap::new();
        for (_, cells, _) in rows {
            for (i, f) in &self.uniques {
                if let Some(v) = cells.get(*i).and_then(|c| Self::unique_value(f, c)) {
                    unique_vals.entry(f.id).or_default().insert(v);
                }
            }
            if let Some((i, f)) = &self.key {
                if let Some(v) = cells.get(*i).and_then(|c| Self::unique_value(f, c)) {
                    unique_vals.entry(f.id).or_default().insert(v);
                }
            }
            for (i, c) in self.cols.iter().enumerate() {
                if let (Col::Relation(_, t), Some(cell)) = (c, cells.get(i)) {
                    let cell = clean_cell(cell);
                    if !cell.is_empty() {
                        rel_names.entry(t.id).or_default().insert(cell.to_string());
                    }
                }
            }
        }
        // value → ids holding it (every record not in the recycle bin, whatever its owner).
        let mut holders: HashMap<(Uuid, String), Vec<Uuid>> = HashMap::new();
        for (fid, vals) in &unique_vals {
            let Some(f) = obj.fields.iter().find(|f| f.id == *fid) else { continue };
            let vals: Vec<String> = vals.iter().cloned().collect();
            for chunk in vals.chunks(500) {
                let mut q = Query::select();
                q.column(Alias::new("id"))
                    .column(Alias::new(&f.column))
                    .from(Alias::new(&obj.table))
                    .and_where(col("deleted_at").is_null())
                    .and_where(col(&f.column).is_in(chunk.iter().map(|v| encode(f, &text_value(f, v)))));
                for r in conn.all(&q).await? {
                    let (Some(id), Some(v)) = (r.uuid(0), key_of(&r, 1)) else { continue };
                    holders.entry((f.id, v)).or_default().push(id);
                }
            }
        }
        // Records matched by the key, read in full within the update scope.
        let mut matched: HashMap<Uuid, Record> = HashMap::new();
        if let (Some((_, kf)), Some(scope)) = (&self.key, &self.update_scope) {
            let ids: Vec<Uuid> =
                holders.iter().filter(|((f, _), _)| *f == kf.id).flat_map(|(_, ids)| ids.iter().copied()).collect();
            for chunk in ids.chunks(500) {
                let mut q = select_in_scope(obj, scope);
                q.and_where(col("id").is_in(chunk.iter().copied())).and_where(col("deleted_at").is_null());
                for r in conn.all(&q).await? {
                    if let Some(rec) = decode(obj, &r) {
                        matched.insert(rec.id, rec);
                    }
                }
            }
        }
        // Related records by external id or name: (target, text) → ids, and which are readable.
        let mut related: HashMap<(Uuid, String), Vec<(Uuid, bool)>> = HashMap::new();
        for (tid, names) in &rel_names {
            let Some(t) = self.schema.object_by_id(*tid) else { continue };
            let read = self.actor.check(t, Action::Read).ok();
            let names: Vec<String> = names.iter().cloned().collect();
            let title = t.title_field().cloned();
            let ext = t.field("external_id").cloned();
            for chunk in names.chunks(400) {
                let mut q = Query::select();
                q.column(Alias::new("id")).column(Alias::new("owner_id")).from(Alias::new(&t.table));
                let mut any = sea_query::Condition::any();
                for f in [&title, &ext].into_iter().flatten() {
                    q.column(Alias::new(&f.column));
                    any = any.add(col(&f.column).is_in(chunk.iter().cloned()));
                }
                q.cond_where(any).and_where(col("deleted_at").is_null());
                let rows = conn.all(&q).await?;
                let visible: HashSet<Uuid> = match &read {
                    Some(s) if *s != ScopeFilter::All => {
                        let ids: Vec<Uuid> = rows.iter().filter_map(|r| r.uuid(0)).collect();
                        let mut q = Query::select();
                        q.column(Alias::new("id")).from(Alias::new(&t.table)).and_where(col("id").is_in(ids));
                        if let Some(e) = scope_expr(s, "owner_id") {
                            q.and_where(e);
                        }
                        conn.all(&q).await?.iter().filter_map(|r| r.uuid(0)).collect()
                    }
                    Some(_) => rows.iter().filter_map(|r| r.uuid(0)).collect(),
                    None => HashSet::new(),
                };
                for r in &rows {
                    let Some(id) = r.uuid(0) else { continue };
                    let mut i = 2;
                    for (kind, f) in [("name", &title), ("ext", &ext)] {
                        if f.is_none() {
                            continue;
                        }
                        if let Some(v) = r.string(i) {
                            // External ids win over names: they get their own key space.
                            let k = if kind == "ext" { format!("\u{1}{v}") } else { v };
                            related.entry((*tid, k)).or_default().push((id, visible.contains(&id)));
                        }
                        i += 1;
                    }
                }
            }
        }
        Ok(Lookups { holders, matched, related })
    }
}

/// A stored key value as text (text columns, or integers).
fn key_of(r: &DbRow, i: usize) -> Option<String> {
    r.string(i).or_else(|| r.i64(i).map(|n| n.to_string()))
}

/// The typed value of a normalised key text, for binding.
fn text_value(f: &FieldDef, v: &str) -> Value {
    match f.ftype {
        FieldType::Integer => v.parse().map(Value::Int).unwrap_or(Value::Null),
        _ => Value::Text(v.to_string()),
    }
}
