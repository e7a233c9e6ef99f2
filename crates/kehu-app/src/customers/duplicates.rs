//! Duplicate detection for any object with e-mail or phone fields (companies, contacts, custom
//! objects alike): the same e-mail (stored lower-cased), the same phone number (stored
//! normalised; `+86 138-0013-8000` and `13800138000` share a key), or the same name — at the
//! same company when the object has a relation to companies.
//!
//! Two uses: the create form asks while the user types (`find_duplicates`), and the duplicates
//! page lists likely duplicate groups across the database (`duplicate_groups`). Both run on the
//! indexed columns (keyset-paged `GROUP BY` over the column's `(column, id)` index; rows in the
//! recycle bin are dropped afterwards, so the grouping needs no table lookups), never a scan
//! in memory. Matches the actor cannot read are reported only as "a matching record exists".
//!
//! Must never: show a title, owner or id of a record outside the actor's scope.

use crate::{App, Result};
use base64::Engine;
use kehu_core::meta::{FieldDef, FieldType, ObjectDef, Schema};
use kehu_core::perm::{mask_email, mask_phone, Action, Actor, ScopeFilter};
use kehu_core::value::{parse_input, Value};
use kehu_core::{AppError, Uuid};
use kehu_db::records::{col, scope_expr};
use kehu_db::{Db, DbRow, Raw};
use sea_query::{Alias, Query};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Why two records look alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Email,
    Phone,
    Name,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Email => "email",
            MatchKind::Phone => "phone",
            MatchKind::Name => "name",
        }
    }
}

/// One way of matching records of an object: a field (and, for names, the company relation).
#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: MatchKind,
    pub field: Arc<FieldDef>,
    /// For names: the relation to companies that must be equal too.
    pub company: Option<Arc<FieldDef>>,
}

impl Rule {
    /// The rule's name in URLs: the matched field's api name.
    pub fn key(&self) -> &str {
        &self.field.api_name
    }
}

/// The matching rules of an object: every e-mail and phone field, and — for objects that
/// have one of those — the title field, together with a relation to companies if any.
pub fn rules(schema: &Schema, obj: &ObjectDef) -> Vec<Rule> {
    let mut out = Vec::new();
    for f in obj.data_fields() {
        match f.ftype {
            FieldType::Email => out.push(Rule { kind: MatchKind::Email, field: f.clone(), company: None }),
            FieldType::Phone => out.push(Rule { kind: MatchKind::Phone, field: f.clone(), company: None }),
            _ => {}
        }
    }
    if out.is_empty() {
        return out;
    }
    if let Some(title) = obj.title_field() {
        let company = obj
            .data_fields()
            .find(|f| {
                f.ftype == FieldType::Relation
                    && f.options.target.and_then(|t| schema.object_by_id(t)).is_some_and(|t| t.api_name == "company")
                    && f.options.target != Some(obj.id)
            })
            .cloned();
        out.push(Rule { kind: MatchKind::Name, field: title.clone(), company });
    }
    out
}

/// The comparison key of a stored phone number: the national number for `+86` numbers.
pub fn phone_key(stored: &str) -> &str {
    stored.strip_prefix("+86").filter(|n| n.len() >= 5).unwrap_or(stored)
}

/// Stored forms that share a phone key.
fn phone_variants(key: &str) -> Vec<String> {
    if key.starts_with('+') {
        vec![key.to_string()]
    } else {
        vec![key.to_string(), format!("+86{key}")]
    }
}

/// A record found as a likely duplicate, as far as the actor may see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DupRecord {
    pub id: Uuid,
    pub title: String,
}

/// A match found while typing. `record` is `None` when the matching record lies outside the
/// actor's scope: then only its existence is told.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DuplicateMatch {
    pub kinds: Vec<MatchKind>,
    pub record: Option<DupRecord>,
}

/// One group of likely duplicates on the duplicates page.
#[derive(Debug, Clone, Serialize)]
pub struct DuplicateGroup {
    pub kind: MatchKind,
    /// The shared value as the actor may see it (phones and e-mails masked).
    pub value: String,
    /// The records the actor can read (at most `GROUP_RECORDS`).
    pub records: Vec<DupRecord>,
    /// How many more matching records exist that the actor cannot read.
    pub hidden: usize,
}

/// A page of duplicate groups for one rule.
#[derive(Debug, Clone, Serialize)]
pub struct GroupPage {
    pub rule: String,
    pub groups: Vec<DuplicateGroup>,
    /// Opaque cursor for the next page.
    pub next: Option<String>,
}

/// Groups per page and keys fetched per scan step.
pub const GROUPS_PER_PAGE: usize = 25;
/// Records shown per group.
pub const GROUP_RECORDS: usize = 10;
/// Scan steps a page may take looking for groups the actor can see.
const SCAN_STEPS: usize = 4;
/// Matches reported while typing.
const MAX_MATCHES: usize = 10;

fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `$1, $2, …` placeholders from `start`, binding `vals`.
fn placeholders(params: &mut Vec<sea_query::Value>, vals: impl IntoIterator<Item = sea_query::Value>) -> String {
    let mut out = Vec::new();
    for v in vals {
        params.push(v);
        out.push(format!("${}", params.len()));
    }
    out.join(", ")
}

/// A candidate row: id, owner, title, the matched column, the company column.
struct Cand {
    id: Uuid,
    title: String,
    value: String,
    company: Option<Uuid>,
}

fn title_col(obj: &ObjectDef) -> String {
    obj.title_field().map(|f| f.column.clone()).unwrap_or_else(|| "id".into())
}

/// Live rows of `obj` whose `rule` column is one of `values` (and, for a name rule with a
/// company, whose company is one of `companies`).
async fn candidates(
    db: &Db,
    obj: &ObjectDef,
    rule: &Rule,
    values: &[String],
    companies: &[Uuid],
    exclude: Option<Uuid>,
    limit: usize,
) -> Result<Vec<Cand>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Vec::new();
    let company_col = rule.company.as_ref().map(|c| q(&c.column)).unwrap_or_else(|| "NULL".into());
    let mut sql = format!(
        "SELECT id, {}, {}, {company_col} FROM {} WHERE deleted_at IS NULL AND {} IN ({})",
        q(&title_col(obj)),
        q(&rule.field.column),
        q(&obj.table),
        q(&rule.field.column),
        placeholders(&mut p, values.iter().map(|v| v.clone().into()))
    );
    if let Some(c) = &rule.company {
        if companies.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(&format!(
            " AND {} IN ({})",
            q(&c.column),
            placeholders(&mut p, companies.iter().map(|u| (*u).into()))
        ));
    }
    if let Some(x) = exclude {
        sql.push_str(&format!(" AND id <> {}", placeholders(&mut p, [x.into()])));
    }
    sql.push_str(&format!(" LIMIT {limit}"));
    let rows = db.all(&Raw::new(sql, p)).await?;
    Ok(rows
        .iter()
        .filter_map(|r: &DbRow| {
            Some(Cand {
                id: r.uuid(0)?,
                title: r.string(1).unwrap_or_default(),
                value: r.string(2)?,
                company: r.uuid(3),
            })
        })
        .collect())
}

/// Which of `ids` the actor may read.
async fn readable(db: &Db, obj: &ObjectDef, scope: &ScopeFilter, ids: &[Uuid]) -> Result<HashSet<Uuid>> {
    if ids.is_empty() || *scope == ScopeFilter::Nothing {
        return Ok(HashSet::new());
    }
    if *scope == ScopeFilter::All {
        return Ok(ids.iter().copied().collect());
    }
    let mut out = HashSet::new();
    for chunk in ids.chunks(500) {
        let mut s = Query::select();
        s.column(Alias::new("id")).from(Alias::new(&obj.table)).and_where(col("id").is_in(chunk.iter().copied()));
        if let Some(e) = scope_expr(scope, "owner_id") {
            s.and_where(e);
        }
        out.extend(db.all(&s).await?.iter().filter_map(|r| r.uuid(0)));
    }
    Ok(out)
}

/// The value of `f` in raw form input, parsed by its type; `None` when empty or not (yet) valid.
fn probe(f: &FieldDef, input: &Map<String, Json>) -> Option<Value> {
    let v = input.get(&f.api_name)?;
    match parse_input(f, v) {
        Ok(Value::Null) | Err(_) => None,
        Ok(v) => Some(v),
    }
}

fn cursor_encode(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn cursor_decode(s: &str) -> Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| AppError::invalid("query.invalid_cursor"))
}

impl App {
    /// Records that look like the one being typed (`input` holds raw form values by field api
    /// name; invalid or partial values are ignored). `exclude` leaves out the record itself.
    pub async fn find_duplicates(
        &self,
        actor: &Actor,
        object: &str,
        input: &Map<String, Json>,
        exclude: Option<Uuid>,
    ) -> Result<Vec<DuplicateMatch>> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        let read_scope = match actor.check(obj, Action::Read) {
            Ok(s) => s,
            Err(e) => {
                actor.check(obj, Action::Create).map_err(|_| e)?;
                ScopeFilter::Nothing
            }
        };
        let mut found: Vec<(Uuid, String, Vec<MatchKind>)> = Vec::new();
        for rule in rules(&schema, obj) {
            let Some(Value::Text(v)) = probe(&rule.field, input) else { continue };
            let (values, companies) = match rule.kind {
                MatchKind::Email => (vec![v], vec![]),
                MatchKind::Phone => (phone_variants(phone_key(&v)), vec![]),
                MatchKind::Name => match &rule.company {
                    Some(c) => match probe(c, input) {
                        Some(Value::Ref(id)) => (vec![v], vec![id]),
                        _ => continue,
                    },
                    None => (vec![v], vec![]),
                },
            };
            for c in candidates(&self.db, obj, &rule, &values, &companies, exclude, MAX_MATCHES).await? {
                match found.iter_mut().find(|(id, _, _)| *id == c.id) {
                    Some((_, _, kinds)) if !kinds.contains(&rule.kind) => kinds.push(rule.kind),
                    Some(_) => {}
                    None => found.push((c.id, c.title, vec![rule.kind])),
                }
            }
        }
        found.truncate(MAX_MATCHES);
        let ids: Vec<Uuid> = found.iter().map(|f| f.0).collect();
        let visible = readable(&self.db, obj, &read_scope, &ids).await?;
        let mut out: Vec<DuplicateMatch> = found
            .into_iter()
            .map(|(id, title, kinds)| DuplicateMatch {
                kinds,
                record: visible.contains(&id).then(|| DupRecord { id, title: display_title(title) }),
            })
            .collect();
        // Readable matches first; hidden ones carry nothing that could tell them apart.
        out.sort_by_key(|m| m.record.is_none());
        Ok(out)
    }

    /// A page of likely duplicate groups of `object` by one rule (`rule` is the matched
    /// field's api name, e.g. `phone`), after `cursor`. Groups the actor can see none of are
    /// left out; records they cannot read are only counted.
    pub async fn duplicate_groups(
        &self,
        actor: &Actor,
        object: &str,
        rule: &str,
        cursor: Option<&str>,
    ) -> Result<GroupPage> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        let scope = actor.check(obj, Action::Read)?;
        let rule = rules(&schema, obj)
            .into_iter()
            .find(|r| r.key() == rule)
            .ok_or_else(|| AppError::not_found("duplicates.unknown_rule"))?;
        let mut after = cursor.filter(|c| !c.is_empty()).map(cursor_decode).transpose()?;
        let mut groups = Vec::new();
        let mut next = None;
        for _ in 0..SCAN_STEPS {
            let (keys, more) = self.group_keys(obj, &rule, after.as_deref(), GROUPS_PER_PAGE).await?;
            if keys.is_empty() {
                next = None;
                break;
            }
            groups.extend(self.group_members(actor, obj, &rule, &scope, &keys).await?);
            after = keys.last().cloned();
            next = more.then(|| after.as_deref().map(cursor_encode)).flatten();
            if !more || groups.len() >= GROUPS_PER_PAGE / 2 {
                break;
            }
        }
        Ok(GroupPage { rule: rule.key().to_string(), groups, next })
    }

    /// Up to `n` group keys after `after`, in key order, and whether more may follow. Each
    /// statement walks the column's index in order and stops after `n` groups.
    async fn group_keys(
        &self,
        obj: &ObjectDef,
        rule: &Rule,
        after: Option<&str>,
        n: usize,
    ) -> Result<(Vec<String>, bool)> {
        let t = q(&obj.table);
        let c = q(&rule.field.column);
        let lim = n + 1;
        let mut keys: Vec<String> = Vec::new();
        let run = |sql: String, p: Vec<sea_query::Value>| async move { self.db.all(&Raw::new(sql, p)).await };
        match (rule.kind, &rule.company) {
            (MatchKind::Name, Some(company)) => {
                let cc = q(&company.column);
                let mut p: Vec<sea_query::Value> = Vec::new();
                let mut w = format!("{cc} IS NOT NULL AND {c} IS NOT NULL");
                if let Some((cid, name)) = after.and_then(|a| a.split_once('\u{1f}')) {
                    let cid: Uuid = cid.parse().map_err(|_| AppError::invalid("query.invalid_cursor"))?;
                    let a = placeholders(&mut p, [cid.into()]);
                    let b = placeholders(&mut p, [name.to_string().into()]);
                    w.push_str(&format!(" AND ({cc} > {a} OR ({cc} = {a} AND {c} > {b}))"));
                }
                let sql = format!(
                    "SELECT {cc}, {c} FROM {t} WHERE {w} GROUP BY {cc}, {c} HAVING COUNT(*) > 1 ORDER BY {cc}, {c} LIMIT {lim}"
                );
                for r in run(sql, p).await? {
                    if let (Some(id), Some(name)) = (r.uuid(0), r.string(1)) {
                        keys.push(format!("{id}\u{1f}{name}"));
                    }
                }
            }
            (MatchKind::Phone, _) => {
                // Three index walks, each in key order: numbers stored without `+86`, numbers
                // stored with it, and `+86` numbers whose national form is stored too.
                let after = after.unwrap_or("");
                let mut p1 = Vec::new();
                let a1 = placeholders(&mut p1, [after.to_string().into()]);
                let s1 = format!(
                    "SELECT {c} FROM {t} WHERE {c} > {a1} AND NOT ({c} >= '+86' AND {c} < '+87') \
                     GROUP BY {c} HAVING COUNT(*) > 1 ORDER BY {c} LIMIT {lim}"
                );
                let mut p2 = Vec::new();
                let a2 = placeholders(&mut p2, [format!("+86{after}").into()]);
                let s2 = format!(
                    "SELECT {c} FROM {t} WHERE {c} > {a2} AND {c} < '+87' \
                     GROUP BY {c} HAVING COUNT(*) > 1 ORDER BY {c} LIMIT {lim}"
                );
                let s3 = format!(
                    "SELECT DISTINCT a.{c} FROM {t} a WHERE a.{c} > {a2} AND a.{c} < '+87' \
                     AND EXISTS (SELECT 1 FROM {t} b WHERE b.{c} = substr(a.{c}, 4)) ORDER BY a.{c} LIMIT {lim}"
                );
                let mut all: Vec<String> = Vec::new();
                let mut full = false;
                for (sql, p) in [(s1, p1), (s2, p2.clone()), (s3, p2)] {
                    let rows = run(sql, p).await?;
                    full |= rows.len() >= lim;
                    all.extend(rows.iter().filter_map(|r| r.str(0)).map(|s| phone_key(s).to_string()));
                }
                all.sort();
                all.dedup();
                let more = full || all.len() > n;
                all.truncate(n);
                return Ok((all, more));
            }
            _ => {
                let mut p = Vec::new();
                let mut w = format!("{c} IS NOT NULL");
                if let Some(a) = after {
                    w.push_str(&format!(" AND {c} > {}", placeholders(&mut p, [a.to_string().into()])));
                }
                let sql =
                    format!("SELECT {c} FROM {t} WHERE {w} GROUP BY {c} HAVING COUNT(*) > 1 ORDER BY {c} LIMIT {lim}");
                keys.extend(run(sql, p).await?.iter().filter_map(|r| r.string(0)));
            }
        }
        let more = keys.len() > n;
        keys.truncate(n);
        Ok((keys, more))
    }

    /// The live records of each group key, split into readable ones and a hidden count.
    async fn group_members(
        &self,
        actor: &Actor,
        obj: &ObjectDef,
        rule: &Rule,
        scope: &ScopeFilter,
        keys: &[String],
    ) -> Result<Vec<DuplicateGroup>> {
        let (values, companies): (Vec<String>, Vec<Uuid>) = match (rule.kind, &rule.company) {
            (MatchKind::Phone, _) => (keys.iter().flat_map(|k| phone_variants(k)).collect(), vec![]),
            (MatchKind::Name, Some(_)) => {
                let mut vs = Vec::new();
                let mut cs = Vec::new();
                for k in keys {
                    if let Some((c, n)) = k.split_once('\u{1f}') {
                        vs.push(n.to_string());
                        cs.extend(c.parse::<Uuid>().ok());
                    }
                }
                (vs, cs)
            }
            _ => (keys.to_vec(), vec![]),
        };
        let cands = candidates(&self.db, obj, rule, &values, &companies, None, keys.len() * 50).await?;
        let ids: Vec<Uuid> = cands.iter().map(|c| c.id).collect();
        let visible = readable(&self.db, obj, scope, &ids).await?;
        let mut by_key: HashMap<String, Vec<&Cand>> = HashMap::new();
        for c in &cands {
            let k = match (rule.kind, c.company) {
                (MatchKind::Phone, _) => phone_key(&c.value).to_string(),
                (MatchKind::Name, Some(co)) if rule.company.is_some() => format!("{co}\u{1f}{}", c.value),
                _ => c.value.clone(),
            };
            by_key.entry(k).or_default().push(c);
        }
        let unmasked = actor.sees_unmasked();
        let mut out = Vec::new();
        for k in keys {
            let Some(members) = by_key.get(k) else { continue };
            if members.len() < 2 {
                continue;
            }
            let mut records: Vec<DupRecord> = members
                .iter()
                .filter(|c| visible.contains(&c.id))
                .map(|c| DupRecord { id: c.id, title: display_title(c.title.clone()) })
                .collect();
            if records.is_empty() {
                continue;
            }
            records.sort_by_key(|r| r.id);
            let hidden = members.len() - records.len();
            records.truncate(GROUP_RECORDS);
            let raw = members[0].value.clone();
            let value = match rule.kind {
                MatchKind::Phone if !unmasked => mask_phone(&raw),
                MatchKind::Email if !unmasked => mask_email(&raw),
                _ => raw,
            };
            out.push(DuplicateGroup { kind: rule.kind, value, records, hidden });
        }
        Ok(out)
    }
}

fn display_title(t: String) -> String {
    if t.trim().is_empty() {
        "—".into()
    } else {
        t
    }
}
