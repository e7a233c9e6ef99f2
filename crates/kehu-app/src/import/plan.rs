//! Deciding what each row does, without writing: the dry run runs this over the whole file,
//! and every batch of the real run runs the very same code on its rows inside its
//! transaction (where the database already holds the earlier batches' records) — so both
//! count the same.
//!
//! Per batch: the key, unique, relation and owner values of all rows are looked up with one
//! `IN (…)` query each (no per-row round trips); then each row is parsed by the engine's own
//! field parser and classified as create / update / unchanged / skipped / failed.

use super::mapping::{ImportMode, ImportSettings};
use crate::records::input::{parse_fields, Mode, Values};
use crate::{App, Result};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef, Schema};
use kehu_core::perm::{Action, Actor, ScopeFilter};
use kehu_core::value::{parse_input, Value};
use kehu_core::{AppError, Uuid};
use kehu_db::records::{col, decode, encode, scope_expr, select_columns, Record};
use kehu_db::conn::DbResult;
use kehu_db::{Db, DbRow, Sql, Tx};
use sea_query::{Alias, Query};
use serde::Serialize;
use serde_json::{Map, Value as Json};
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
    users: UserIndex,
}

#[derive(Default)]
struct UserIndex {
    by_email: HashMap<String, (Uuid, Option<Uuid>)>,
    by_name: HashMap<String, Vec<(Uuid, Option<Uuid>)>>,
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
    freed: HashSet<(Uuid, String)>,
}

/// A neutralising apostrophe our CSV exports put before `=`, `+`, `-`, `@` is not data.
pub(crate) fn clean_cell(s: &str) -> &str {
    let t = s.trim();
    match t.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => t,
    }
}

/// Split a tags / multi-select cell on the usual separators.
fn split_list(s: &str) -> Json {
    Json::Array(
        s.split([',', ';', '、', '|', '，', '；'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Json::String(p.to_string()))
            .collect(),
    )
}

fn storage_key(v: &Value) -> Option<String> {
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
        Ok(Plan {
            obj,
            schema,
            actor,
            settings,
            headers,
            cols,
            key,
            uniques,
            create_scope,
            update_scope,
            users,
        })
    }

    fn header(&self, i: usize) -> String {
        self.headers.get(i).cloned().unwrap_or_default()
    }

    fn column_of(&self, api: &str) -> String {
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
        rows: Vec<(u64, Vec<String>, Option<RowIssue>)>,
    ) -> Result<Vec<Outcome>> {
        let obj = &self.obj;
        // 1. Values to look up, for all rows at once.
        let mut unique_vals: HashMap<Uuid, HashSet<String>> = HashMap::new();
        let mut rel_names: HashMap<Uuid, HashSet<String>> = HashMap::new();
        for (_, cells, _) in &rows {
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
                let mut q = Query::select();
                q.from(Alias::new(&obj.table));
                for c in select_columns(obj) {
                    q.column(Alias::new(c));
                }
                q.and_where(col("id").is_in(chunk.iter().copied())).and_where(col("deleted_at").is_null());
                if let Some(s) = scope_expr(scope, "owner_id") {
                    q.and_where(s);
                }
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
                        q.column(Alias::new("id"))
                            .from(Alias::new(&t.table))
                            .and_where(col("id").is_in(ids));
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
        // 2. Each row.
        let mut out = Vec::with_capacity(rows.len());
        for (row, cells, dup) in rows {
            out.push(self.plan_row(session, &holders, &matched, &related, row, cells, dup));
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_row(
        &self,
        session: &mut Session,
        holders: &HashMap<(Uuid, String), Vec<Uuid>>,
        matched: &HashMap<Uuid, Record>,
        related: &HashMap<(Uuid, String), Vec<(Uuid, bool)>>,
        row: u64,
        cells: Vec<String>,
        dup: Option<RowIssue>,
    ) -> Outcome {
        let obj = &self.obj;
        let mut issues: Vec<RowIssue> = Vec::new();
        let issue = |column: String, code: &str| RowIssue { row, column, code: code.to_string(), first_row: None };
        if let Some(d) = dup {
            issues.push(d);
        }
        if cells.len() > self.headers.len() && cells[self.headers.len()..].iter().any(|c| !c.trim().is_empty()) {
            issues.push(issue(format!("#{}", self.headers.len() + 1), "import.extra_cells"));
        }
        // Find the existing record by the key.
        let mut target: Option<&Record> = None;
        let mut key_found = false;
        if let Some((i, kf)) = &self.key {
            let raw = cells.get(*i).map(|c| clean_cell(c)).unwrap_or("");
            match Self::unique_value(kf, raw) {
                None if raw.is_empty() => {
                    if self.settings.mode == ImportMode::Update {
                        issues.push(issue(self.header(*i), "import.key_missing"));
                    }
                }
                None => {
                    let code = parse_input(kf, &Json::String(raw.to_string())).err().unwrap_or("import.key_missing");
                    issues.push(issue(self.header(*i), code));
                }
                Some(v) => {
                    if let Some(ids) = holders.get(&(kf.id, v)) {
                        key_found = true;
                        if ids.len() > 1 {
                            issues.push(issue(self.header(*i), "import.key_ambiguous"));
                        } else if self.settings.mode != ImportMode::Create {
                            match matched.get(&ids[0]) {
                                Some(r) => target = Some(r),
                                None => issues.push(issue(self.header(*i), "import.out_of_scope")),
                            }
                        }
                    }
                }
            }
        }
        if issues.is_empty() {
            match self.settings.mode {
                ImportMode::Create if key_found => return Outcome::Skipped,
                ImportMode::Update if !key_found => return Outcome::Skipped,
                _ => {}
            }
        }
        let creating = target.is_none();
        let scope = if creating { self.create_scope.as_ref() } else { self.update_scope.as_ref() };
        let Some(scope) = scope else {
            issues.push(issue(String::new(), "permission.denied"));
            return Outcome::Failed { row, cells, issues };
        };
        // Build the input the engine's parser takes.
        let mut input = Map::new();
        let mut placeholders: Vec<Uuid> = Vec::new();
        for (i, c) in self.cols.iter().enumerate() {
            let cell = cells.get(i).map(|c| clean_cell(c)).unwrap_or("");
            if cell.is_empty() {
                continue; // an empty cell leaves the value as it is (or the default)
            }
            match c {
                Col::Skip => {}
                Col::Field(f) => {
                    let v = match f.ftype {
                        FieldType::Tags | FieldType::MultiSelect => split_list(cell),
                        _ => Json::String(cell.to_string()),
                    };
                    input.insert(f.api_name.clone(), v);
                }
                Col::Owner(f) => {
                    let found = match self.users.by_email.get(&cell.to_lowercase()) {
                        Some(u) => Ok(*u),
                        None => match self.users.by_name.get(cell).map(Vec::as_slice) {
                            Some([u]) => Ok(*u),
                            Some([_, _, ..]) => Err("import.user_ambiguous"),
                            _ => Err("import.unknown_user"),
                        },
                    };
                    match found {
                        Ok((u, team)) => {
                            if f.api_name == "owner" && !self.actor.owner_in_scope(scope, Some(u), team) {
                                issues.push(issue(self.header(i), "permission.owner_out_of_scope"));
                            } else {
                                input.insert(f.api_name.clone(), Json::String(u.to_string()));
                            }
                        }
                        Err(code) => issues.push(issue(self.header(i), code)),
                    }
                }
                Col::Relation(f, t) => {
                    let by_ext = related.get(&(t.id, format!("\u{1}{cell}")));
                    let hits = by_ext.or_else(|| related.get(&(t.id, cell.to_string())));
                    match hits.map(Vec::as_slice) {
                        Some([(id, true)]) => {
                            input.insert(f.api_name.clone(), Json::String(id.to_string()));
                        }
                        Some([(_, false)]) => issues.push(issue(self.header(i), "import.reference_out_of_scope")),
                        Some([_, _, ..]) => issues.push(issue(self.header(i), "import.reference_ambiguous")),
                        _ if self.settings.create_missing => {
                            let k = (t.id, cell.to_string());
                            let p = *session.pending.entry(k).or_insert_with(kehu_core::new_id);
                            placeholders.push(p);
                            input.insert(f.api_name.clone(), Json::String(p.to_string()));
                        }
                        _ => issues.push(issue(self.header(i), "import.reference_not_found")),
                    }
                }
            }
        }
        let input = if creating { crate::records::write::with_full_name(obj, &input).into_owned() } else { input };
        let (mut errors, mut denied) = (Vec::new(), Vec::new());
        let mode = if creating { Mode::Create } else { Mode::Update };
        let mut values = parse_fields(&self.actor, obj, &input, mode, "", &mut errors, &mut denied);
        for e in errors.into_iter().chain(denied) {
            issues.push(issue(self.column_of(&e.field), &e.code));
        }
        // Unique values held by another record (unless an earlier row freed them).
        for (f, v) in &values {
            if !f.unique {
                continue;
            }
            let Some(k) = storage_key(v) else { continue };
            if session.freed.contains(&(f.id, k.clone())) {
                continue;
            }
            if let Some(ids) = holders.get(&(f.id, k)) {
                if ids.iter().any(|id| Some(*id) != target.map(|t| t.id)) {
                    issues.push(issue(self.column_of(&f.api_name), "field.not_unique"));
                }
            }
        }
        if !issues.is_empty() {
            let mut seen = HashSet::new();
            issues.retain(|i| seen.insert((i.column.clone(), i.code.clone())));
            return Outcome::Failed { row, cells, issues };
        }
        session.used.extend(placeholders);
        match target {
            None => {
                if let Some(owner) = obj.field("owner") {
                    if !values.iter().any(|(f, _)| f.id == owner.id) {
                        values.push((owner.clone(), self.actor.user_id.map(Value::Ref).unwrap_or(Value::Null)));
                    }
                }
                Outcome::Create { row, values }
            }
            Some(cur) => {
                let changed: Values = values.into_iter().filter(|(f, v)| cur.get(&f.api_name) != v).collect();
                if changed.is_empty() {
                    return Outcome::Unchanged;
                }
                for (f, _) in &changed {
                    if f.unique {
                        if let Some(old) = storage_key(cur.get(&f.api_name)) {
                            session.freed.insert((f.id, old));
                        }
                    }
                }
                Outcome::Update { row, cur: Box::new(cur.clone()), values: changed }
            }
        }
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

/// Values seen so far in the key and unique columns, to report a later row holding the same
/// value ("duplicate in file, first seen on row N"). Values are kept as 128-bit hashes.
#[derive(Default)]
pub(crate) struct DupIndex {
    seen: HashMap<(usize, u128), u64>,
}

fn hash128(s: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let mut a = std::collections::hash_map::DefaultHasher::new();
    (0u8, s).hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (1u8, s).hash(&mut b);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

impl DupIndex {
    /// The duplicate issue of this row, if one of its key/unique values appeared before.
    pub(crate) fn check(&mut self, cols: &[(usize, Arc<FieldDef>)], headers: &[String], row: u64, cells: &[String]) -> Option<RowIssue> {
        let mut out = None;
        for (i, f) in cols {
            let Some(v) = cells.get(*i).and_then(|c| Plan::unique_value(f, c)) else { continue };
            match self.seen.entry((*i, hash128(&v))) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    if out.is_none() {
                        out = Some(RowIssue {
                            row,
                            column: headers.get(*i).cloned().unwrap_or_default(),
                            code: "import.duplicate_in_file".into(),
                            first_row: Some(*e.get()),
                        });
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(row);
                }
            }
        }
        out
    }
}
