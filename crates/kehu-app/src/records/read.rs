//! Reads: get by id, list with filters, sorting, cursors and counts, and search across
//! objects — all limited to the actor's record scope and readable fields.

use super::{search_doc, view, RecordView};
use crate::{App, Result};
use kehu_core::filter::{self, ResolveCtx, SortKey};
use kehu_core::meta::ObjectDef;
use kehu_core::perm::{Action, Actor};
use kehu_core::text;
use kehu_core::{AppError, Uuid};
use kehu_db::query::{count_query, fetch_page, next_cursor, ListSpec};
use kehu_db::records::{decode, select_one, Record};
use kehu_db::search;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::sync::Arc;

/// How to count the matching records of a list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    /// No count.
    #[default]
    None,
    /// Count every match.
    Exact,
    /// Count up to 10,000 and say "10,000+" beyond.
    Capped,
}

/// Largest count a capped count reports exactly.
pub const COUNT_CAP: u64 = 10_000;

/// A list request, as the API receives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    #[serde(default)]
    pub filter: Option<Json>,
    #[serde(default)]
    pub sort: Option<Json>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub count: Count,
    /// List the recycle bin instead.
    #[serde(default)]
    pub deleted: bool,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub records: Vec<RecordView>,
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// True when `total` is a lower bound (a capped count that hit the cap).
    pub total_is_capped: bool,
}

impl Page {
    /// The total as a user reads it: `123`, `10000+` when capped, empty when not counted.
    pub fn total_text(&self) -> String {
        match (self.total, self.total_is_capped) {
            (Some(n), true) => format!("{n}+"),
            (Some(n), false) => n.to_string(),
            (None, _) => String::new(),
        }
    }
}

/// A search hit as an actor sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SearchResult {
    pub object: String,
    pub id: Uuid,
    pub title: Option<String>,
    /// Up to three other readable, non-empty searchable values (phone and e-mail masked).
    pub detail: Vec<String>,
    /// The readable fields whose values match the query, with the value as the actor may see
    /// it (masked), so a hit shows why it was found.
    pub matched: Vec<MatchedField>,
}

/// A field of a hit that matches the query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedField {
    pub field: String,
    pub value: String,
}

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

impl App {
    /// One record the actor may read (not in the recycle bin).
    pub async fn get(&self, actor: &Actor, object: &str, id: Uuid) -> Result<RecordView> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        let scope = actor.check(obj, Action::Read)?;
        let row =
            self.db.one(&select_one(obj, id, &scope)).await?.ok_or_else(|| AppError::not_found("record.not_found"))?;
        let rec = decode(obj, &row).ok_or_else(|| AppError::internal("undecodable row"))?;
        if rec.deleted_at.is_some() {
            return Err(AppError::not_found("record.not_found"));
        }
        self.audit_reveal(actor, obj, std::slice::from_ref(&rec)).await?;
        Ok(view(actor, obj, &rec))
    }

    /// One audit entry per record whose phone numbers or e-mails an actor chose to reveal,
    /// naming the fields whose values were shown; a record with none of them revealed nothing
    /// and gets no entry.
    async fn audit_reveal(&self, actor: &Actor, obj: &ObjectDef, records: &[Record]) -> Result<()> {
        if !actor.is_revealing() {
            return Ok(());
        }
        let at = kehu_core::now_micros();
        let entries: Vec<_> = records
            .iter()
            .filter_map(|r| {
                let fields: Vec<&str> = obj
                    .active()
                    .filter(|f| super::is_contact(f) && actor.can_read_field(obj, f) && !r.get(&f.api_name).is_null())
                    .map(|f| f.api_name.as_str())
                    .collect();
                (!fields.is_empty()).then(|| kehu_db::journal::AuditEntry {
                    at,
                    actor: actor.user_id,
                    object_id: obj.id,
                    record_id: r.id,
                    action: "record.revealed",
                    changes: serde_json::json!({ "fields": fields }),
                })
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        kehu_db::journal::audit(&mut tx, &entries).await?;
        tx.commit().await?;
        Ok(())
    }

    fn resolve_ctx<'a>(
        actor: &'a Actor,
        obj: &'a ObjectDef,
    ) -> impl Fn(&kehu_core::meta::FieldDef) -> bool + Sync + 'a {
        move |f| actor.can_read_field(obj, f)
    }

    /// A page of records matching a filter, sorted, after a cursor.
    pub async fn list(&self, actor: &Actor, object: &str, req: &ListRequest) -> Result<Page> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        let scope = actor.check(obj, Action::Read)?;
        let can_read = Self::resolve_ctx(actor, obj);
        let ctx = ResolveCtx { me: actor.user_id, can_read: &can_read };
        let filter = match &req.filter {
            None | Some(Json::Null) => None,
            Some(f) => Some(filter::resolve(f, obj, &ctx)?),
        };
        let mut sort: Vec<SortKey> = filter::resolve_sort(req.sort.as_ref().unwrap_or(&Json::Null), obj, &ctx)?;
        if sort.is_empty() {
            if let Some(f) = obj.field("updated_at") {
                sort.push(SortKey { field: f.clone(), desc: true });
            }
        }
        let limit = req.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(AppError::field("limit", "query.invalid_limit"));
        }
        let spec = ListSpec {
            obj,
            scope: &scope,
            filter: filter.as_ref(),
            sort: &sort,
            limit,
            cursor: req.cursor.as_deref().filter(|c| !c.is_empty()),
            deleted: req.deleted,
        };
        let b = self.db.backend();
        let (total, total_is_capped) = match req.count {
            Count::None => (None, false),
            Count::Exact => (self.count_rows(&count_query(b, &spec, None)).await?, false),
            Count::Capped => {
                let n = self.count_rows(&count_query(b, &spec, Some(COUNT_CAP))).await?;
                match n {
                    Some(n) if n > COUNT_CAP => (Some(COUNT_CAP), true),
                    other => (other, false),
                }
            }
        };
        let (rows, first_sort_col) = fetch_page(&self.db, &spec).await?;
        let more = rows.len() as u64 > limit;
        let mut decoded = Vec::with_capacity(rows.len().min(limit as usize));
        let mut next = None;
        for (i, row) in rows.iter().take(limit as usize).enumerate() {
            let rec = decode(obj, row).ok_or_else(|| AppError::internal("undecodable row"))?;
            if more && i + 1 == limit as usize {
                next = Some(next_cursor(&spec, rec.id, row, first_sort_col));
            }
            decoded.push(rec);
        }
        self.audit_reveal(actor, obj, &decoded).await?;
        let records = decoded.iter().map(|rec| view(actor, obj, rec)).collect();
        Ok(Page { records, next_cursor: next, total, total_is_capped })
    }

    async fn count_rows(&self, q: &sea_query::SelectStatement) -> Result<Option<u64>> {
        Ok(self.db.one(q).await?.and_then(|r| r.i64(0)).map(|n| n as u64))
    }

    /// Count the records of an object the actor may read that match a filter.
    pub async fn count(&self, actor: &Actor, object: &str, filter_json: Option<&Json>) -> Result<u64> {
        let req =
            ListRequest { filter: filter_json.cloned(), count: Count::Exact, limit: Some(1), ..Default::default() };
        Ok(self.list(actor, object, &req).await?.total.unwrap_or(0))
    }

    /// Search records across `objects` (all readable ones when `None`), best matches first.
    pub async fn search(
        &self,
        actor: &Actor,
        q: &str,
        objects: Option<&[&str]>,
        limit: u32,
    ) -> Result<Vec<SearchResult>> {
        let schema = self.schema().await?;
        let query = text::parse_query(q);
        let mut targets = Vec::new();
        let mut objs: Vec<&Arc<ObjectDef>> = Vec::new();
        for o in schema.objects() {
            if objects.is_some_and(|list| !list.contains(&o.api_name.as_str())) {
                continue;
            }
            if let Ok(scope) = actor.check(o, Action::Read) {
                targets.push((o.id, scope));
                objs.push(o);
            }
        }
        if let Some(list) = objects {
            for name in list {
                schema.object(name)?;
            }
        }
        if targets.is_empty() || query.raw.is_empty() {
            return Ok(Vec::new());
        }
        let limit = limit.clamp(1, 100);
        // Fetch extra candidates when some hits may have to be dropped below.
        let hidden = |o: &ObjectDef| o.active().any(|f| f.searchable && !actor.can_read_field(o, f));
        let fetch = if objs.iter().any(|o| hidden(o)) { limit * 4 } else { limit };
        let hits = search::query(&self.db, &query, &targets, fetch).await?;
        let mut out = Vec::with_capacity(hits.len());
        for h in hits {
            let Some(obj) = schema.object_by_id(h.object_id) else {
                continue;
            };
            if hidden(obj) && !self.hit_matches_readable(actor, obj, h.record_id, &query).await? {
                continue;
            }
            let title_field = obj.title_field().filter(|f| actor.can_read_field(obj, f));
            let title = match (h.title, title_field) {
                (Some(t), Some(f)) if super::is_contact(f) => Some(super::mask(f, &t)),
                (t, Some(_)) => t,
                (_, None) => None,
            };
            let (detail, matched) = self.hit_detail(actor, obj, h.record_id, &query).await?;
            out.push(SearchResult { object: obj.api_name.clone(), id: h.record_id, title, detail, matched });
            if out.len() >= limit as usize {
                break;
            }
        }
        Ok(out)
    }

    /// The values shown under a hit's title — searchable fields other than the title — and
    /// the readable fields that match the query, as the actor sees them (masked unless
    /// revealed; search never reveals).
    async fn hit_detail(
        &self,
        actor: &Actor,
        obj: &ObjectDef,
        id: Uuid,
        q: &text::Query,
    ) -> Result<(Vec<String>, Vec<MatchedField>)> {
        let Some(row) = self.db.one(&select_one(obj, id, &kehu_core::perm::ScopeFilter::All)).await? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let Some(rec) = decode(obj, &row) else { return Ok((Vec::new(), Vec::new())) };
        let title = obj.title_field().map(|f| f.id);
        let (mut out, mut matched) = (Vec::new(), Vec::new());
        for (f, v) in &rec.values {
            let searched = f.searchable || Some(f.id) == title;
            if !searched || !actor.can_read_field(obj, f) {
                continue;
            }
            let kehu_core::value::Value::Text(s) = v else { continue };
            if s.is_empty() {
                continue;
            }
            // Search never reveals: only Kehu itself sees these unmasked.
            let shown = if super::is_contact(f) && !actor.is_system() { super::mask(f, s) } else { s.clone() };
            let mut toks = String::new();
            super::index_value(f, s, Some(f.id) == title, &mut toks);
            if matched.len() < 3 && q.matches_some(&toks) {
                matched.push(MatchedField { field: f.api_name.clone(), value: shown.clone() });
            }
            if Some(f.id) != title && f.searchable && out.len() < 3 {
                out.push(shown);
            }
        }
        Ok((out, matched))
    }

    /// Re-check a hit against only the fields the actor may read, so that search never reveals
    /// a value of a hidden field.
    async fn hit_matches_readable(&self, actor: &Actor, obj: &ObjectDef, id: Uuid, q: &text::Query) -> Result<bool> {
        let row = self.db.one(&select_one(obj, id, &kehu_core::perm::ScopeFilter::All)).await?;
        let Some(rec) = row.as_ref().and_then(|r| decode(obj, r)) else {
            return Ok(false);
        };
        let doc = search_doc(obj, id, &rec.values, |f| actor.can_read_field(obj, f));
        let raw = q.raw.to_lowercase();
        Ok((!q.is_empty() && q.matches_tokens(&doc.words))
            || (raw.chars().count() >= 3 && doc.ident.to_lowercase().contains(&raw)))
    }
}
