//! Full-text search over all objects, behind one trait (`SearchEngine`) with two implementations:
//! SQLite FTS5 (unicode61 over pre-tokenised words, trigram over e-mails and phones) and
//! PostgreSQL (`tsvector` from the same tokens, `pg_trgm` for substrings).
//!
//! Documents carry the record's owner, so the record scope is applied inside the index query.

use crate::bulk::InsertInto;
use crate::conn::{Backend, Db, DbResult, Raw, Tx};
use kehu_core::perm::ScopeFilter;
use kehu_core::text::Query as TextQuery;
use kehu_core::Uuid;
use sea_query::Value;

/// The indexed form of one record.
#[derive(Debug, Clone)]
pub struct SearchDoc {
    pub record_id: Uuid,
    pub object_id: Uuid,
    pub owner_id: Option<Uuid>,
    pub title: Option<String>,
    /// Space-separated tokens from `kehu_core::text`.
    pub words: String,
    /// E-mails and phone numbers, space separated, for substring search.
    pub ident: String,
}

/// A search hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub object_id: Uuid,
    pub record_id: Uuid,
    pub title: Option<String>,
}

/// The search documents' columns and upsert, in the order of `doc_row`.
pub fn docs_into() -> InsertInto {
    InsertInto::new("search_docs", ["record_id", "object_id", "owner_id", "title", "words", "ident"]).tail(
        "ON CONFLICT (record_id) DO UPDATE SET owner_id = excluded.owner_id, title = excluded.title, \
         words = excluded.words, ident = excluded.ident",
    )
}

/// The values of one document's row.
pub fn doc_row(d: SearchDoc) -> Vec<Value> {
    vec![d.record_id.into(), d.object_id.into(), d.owner_id.into(), d.title.into(), d.words.into(), d.ident.into()]
}

/// Insert or replace the documents of some records.
pub async fn upsert(tx: &mut Tx, docs: &[SearchDoc]) -> DbResult<()> {
    let rows = docs.iter().cloned().map(doc_row);
    tx.exec_pipeline(docs_into().statements(tx.backend(), rows)).await.map(|_| ())
}

/// Remove a record's document (deleted records are not searchable).
pub async fn remove(tx: &mut Tx, record_id: Uuid) -> DbResult<()> {
    tx.exec(&Raw::new("DELETE FROM search_docs WHERE record_id = $1", vec![record_id.into()])).await.map(|_| ())
}

/// Bound parameters for hand-written SQL.
struct Params(Vec<Value>);

impl Params {
    fn push(&mut self, v: impl Into<Value>) -> String {
        self.0.push(v.into());
        format!("${}", self.0.len())
    }
}

/// `(object_id = $a AND <scope>) OR …` over the objects the actor may read.
fn scope_sql(p: &mut Params, objects: &[(Uuid, ScopeFilter)]) -> String {
    let parts: Vec<String> = objects
        .iter()
        .map(|(oid, scope)| {
            let o = format!("d.object_id = {}", p.push(*oid));
            match scope {
                ScopeFilter::All => o,
                ScopeFilter::Owner(u) => format!("({o} AND d.owner_id = {})", p.push(*u)),
                ScopeFilter::Teams(ts) => {
                    let list: Vec<String> = ts.iter().map(|t| p.push(*t)).collect();
                    format!("({o} AND d.owner_id IN (SELECT id FROM users WHERE team_id IN ({})))", list.join(","))
                }
                ScopeFilter::Owners(us) if us.is_empty() => "1 = 0".into(),
                ScopeFilter::Owners(us) => {
                    let list: Vec<String> = us.iter().map(|u| p.push(*u)).collect();
                    format!("({o} AND d.owner_id IN ({}))", list.join(","))
                }
                ScopeFilter::Nothing => "1 = 0".into(),
            }
        })
        .collect();
    if parts.is_empty() {
        "1 = 0".into()
    } else {
        format!("({})", parts.join(" OR "))
    }
}

fn like_pattern(raw: &str) -> String {
    let mut o = String::from("%");
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('%');
    o
}

/// Whether the raw query is worth a substring search of e-mails and phones: one piece, at
/// least 3 characters, of the characters those contain.
fn ident_candidate(raw: &str) -> bool {
    raw.chars().count() >= 3
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | '+'))
}

/// One full-text engine: the statements that differ between SQLite FTS5 and PostgreSQL.
/// Documents, scopes and the merging of word and substring hits are shared.
pub trait SearchEngine: Sync {
    /// Hits whose words match `q` (bound as `m`), newest first.
    fn words_sql(&self, m: &str, scope: &str, limit: u32) -> String;
    /// The query text bound for `words_sql`.
    fn words_query(&self, q: &TextQuery) -> String;
    /// Hits whose e-mails or phone numbers contain the LIKE pattern bound as `pat`.
    fn ident_sql(&self, pat: &str, scope: &str, limit: u32) -> String;
    /// For engines that cannot stream hits newest first from the index: the condition of
    /// `words_sql` / `ident_sql` (`kind` "words" or "ident"), to be run bounded (see `bounded`).
    fn bounded_condition(&self, _kind: &str, _param: &str) -> Option<String> {
        None
    }
    /// The bound value for `ident_sql` from the raw query text.
    fn ident_pattern(&self, raw: &str) -> String {
        like_pattern(raw)
    }
    /// For engines whose substring index cannot filter by owner: the substring matches,
    /// collected unordered through the index up to `SEARCH_WINDOW + 1`, then scoped and sorted
    /// (the last column counts the window). `None`: `bounded_condition` does it.
    fn ident_window_sql(&self, _pat: &str, _scope: &str, _limit: u32) -> Option<String> {
        None
    }
    /// The substring matches of a narrow scope (owners, not everyone), read through the
    /// owners' documents rather than the substring index.
    fn ident_owned_sql(&self, _pat: &str, _scope: &str, _limit: u32) -> Option<String> {
        None
    }
}

/// Rows a bounded search collects through the index before it treats the query as dense.
pub const SEARCH_WINDOW: u32 = 2000;

/// Collect at most `SEARCH_WINDOW + 1` matches through the text index, then sort those by
/// recency. The last column counts the window: when it overflows, matches are dense and the
/// ordered scan of the unbounded statement finds the newest ones quickly instead.
fn bounded(cond: &str, scope: &str, limit: u32) -> String {
    format!(
        "WITH m AS MATERIALIZED (SELECT d.object_id, d.record_id, d.title FROM search_docs d \
         WHERE {cond} AND {scope} LIMIT {}) \
         SELECT object_id, record_id, title, (SELECT COUNT(*) FROM m) FROM m ORDER BY record_id DESC LIMIT {limit}",
        SEARCH_WINDOW + 1
    )
}

/// SQLite: FTS5 `search_words` (unicode61 over our tokens) and `search_ident` (trigram).
pub struct Fts5;

impl SearchEngine for Fts5 {
    fn words_sql(&self, m: &str, scope: &str, limit: u32) -> String {
        format!(
            "SELECT d.object_id, d.record_id, d.title FROM search_words w \
             JOIN search_docs d ON d.rid = w.rowid \
             WHERE search_words MATCH {m} AND {scope} ORDER BY w.rowid DESC LIMIT {limit}"
        )
    }
    fn words_query(&self, q: &TextQuery) -> String {
        q.to_fts5()
    }
    fn ident_sql(&self, pat: &str, scope: &str, limit: u32) -> String {
        // GLOB uses the trigram index (LIKE with ESCAPE does not), and needs no positions:
        // FTS5 finds the documents with all the pattern's trigrams, SQLite checks the pattern.
        format!(
            "SELECT d.object_id, d.record_id, d.title FROM search_ident i \
             JOIN search_docs d ON d.rid = i.rowid \
             WHERE i.ident GLOB {pat} AND {scope} ORDER BY i.rowid DESC LIMIT {limit}"
        )
    }
    fn ident_pattern(&self, raw: &str) -> String {
        glob_pattern(raw)
    }
    fn ident_window_sql(&self, pat: &str, scope: &str, limit: u32) -> Option<String> {
        Some(format!(
            "WITH m AS MATERIALIZED (SELECT rowid AS rid FROM search_ident WHERE ident GLOB {pat} LIMIT {}) \
             SELECT d.object_id, d.record_id, d.title, (SELECT COUNT(*) FROM m) FROM m \
             JOIN search_docs d ON d.rid = m.rid WHERE {scope} ORDER BY d.rid DESC LIMIT {limit}",
            SEARCH_WINDOW + 1
        ))
    }
    fn ident_owned_sql(&self, pat: &str, scope: &str, limit: u32) -> Option<String> {
        Some(format!(
            "SELECT d.object_id, d.record_id, d.title FROM search_docs d \
             WHERE {scope} AND d.ident GLOB {pat} ORDER BY d.rid DESC LIMIT {limit}"
        ))
    }
}

/// `*text*` for GLOB over the lower-cased e-mails and phones: the text lower-cased, GLOB's
/// own characters (`*`, `?`, `[`) each in brackets so they match themselves.
fn glob_pattern(raw: &str) -> String {
    let mut o = String::from("*");
    for c in raw.to_lowercase().chars() {
        if matches!(c, '*' | '?' | '[') {
            o.extend(['[', c, ']']);
        } else {
            o.push(c);
        }
    }
    o.push('*');
    o
}

/// PostgreSQL: a `tsvector` of our tokens (GIN) and `pg_trgm` on the e-mails and phones.
pub struct PgText;

impl SearchEngine for PgText {
    fn words_sql(&self, m: &str, scope: &str, limit: u32) -> String {
        format!(
            "SELECT d.object_id, d.record_id, d.title FROM search_docs d \
             WHERE d.tsv @@ {m}::tsquery AND {scope} ORDER BY d.record_id DESC LIMIT {limit}"
        )
    }
    fn words_query(&self, q: &TextQuery) -> String {
        q.to_tsquery()
    }
    fn ident_sql(&self, pat: &str, scope: &str, limit: u32) -> String {
        format!(
            "SELECT d.object_id, d.record_id, d.title FROM search_docs d \
             WHERE d.ident ILIKE {pat} ESCAPE '\\' AND {scope} ORDER BY d.record_id DESC LIMIT {limit}"
        )
    }
    fn bounded_condition(&self, kind: &str, param: &str) -> Option<String> {
        Some(match kind {
            "words" => format!("d.tsv @@ {param}::tsquery"),
            _ => format!("d.ident ILIKE {param} ESCAPE '\\'"),
        })
    }
}

/// The engine of a backend.
pub fn engine(b: Backend) -> &'static dyn SearchEngine {
    match b {
        Backend::Sqlite => &Fts5,
        Backend::Postgres => &PgText,
    }
}

/// Search documents of `objects` (each with the actor's scope), newest first, at most `limit`.
///
/// Every hit matches every query term, so hits are equally relevant to the terms; newest first
/// lets both engines stop after `limit` hits instead of scoring every match (a common name
/// matches thousands of records at a million contacts).
pub async fn query(db: &Db, q: &TextQuery, objects: &[(Uuid, ScopeFilter)], limit: u32) -> DbResult<Vec<Hit>> {
    let engine = engine(db.backend());
    // A team scope is its members, read once: the index query then filters on a list of
    // owners instead of a subquery per candidate (a manager searches as fast as an admin).
    let mut resolved: Vec<(Uuid, ScopeFilter)> = Vec::with_capacity(objects.len());
    let mut members: Option<(Vec<Uuid>, Vec<Uuid>)> = None;
    for (o, s) in objects {
        let s = match s {
            ScopeFilter::Teams(ts) => {
                if members.as_ref().is_none_or(|(k, _)| k != ts) {
                    let mut p = Params(Vec::new());
                    let list: Vec<String> = ts.iter().map(|t| p.push(*t)).collect();
                    let sql = format!("SELECT id FROM users WHERE team_id IN ({})", list.join(","));
                    let ids = db.all(&Raw::new(sql, p.0)).await?.iter().filter_map(|r| r.uuid(0)).collect();
                    members = Some((ts.clone(), ids));
                }
                ScopeFilter::Owners(members.as_ref().map(|m| m.1.clone()).unwrap_or_default())
            }
            other => other.clone(),
        };
        resolved.push((*o, s));
    }
    let objects = resolved.as_slice();
    let mut hits: Vec<Hit> = Vec::new();
    let limit = limit.clamp(1, 500);
    let collect = |rows: Vec<crate::DbRow>, hits: &mut Vec<Hit>| {
        for r in rows {
            if let (Some(o), Some(id)) = (r.uuid(0), r.uuid(1)) {
                if !hits.iter().any(|h| h.record_id == id) && hits.len() < limit as usize {
                    hits.push(Hit { object_id: o, record_id: id, title: r.string(2) });
                }
            }
        }
    };
    // The end of a phone number first, then every match.
    if let Some(end) = q.phone_end() {
        let mut p = Params(Vec::new());
        let m = p.push(engine.words_query(&end));
        let scope = scope_sql(&mut p, objects);
        let rows = run(db, engine, "words", &m, &scope, limit, p.0, |m, s| engine.words_sql(m, s, limit)).await?;
        collect(rows, &mut hits);
    }
    if !q.is_empty() && hits.len() < limit as usize {
        let mut p = Params(Vec::new());
        let m = p.push(engine.words_query(q));
        let scope = scope_sql(&mut p, objects);
        let rows = run(db, engine, "words", &m, &scope, limit, p.0, |m, s| engine.words_sql(m, s, limit)).await?;
        collect(rows, &mut hits);
    }
    // Substrings of e-mails and phones: for a fragment of an address (`ales@huax`), or when
    // the words found nothing. Digits alone mean a number's end (尾号), so digits inside other
    // numbers, and words inside other words, are searched only when nothing else matched.
    let fragment = q.raw.chars().any(|c| matches!(c, '@' | '.' | '-' | '_' | '+'));
    if hits.len() < limit as usize && ident_candidate(&q.raw) && !q.is_phone() && (fragment || hits.is_empty()) {
        let mut p = Params(Vec::new());
        let pat = p.push(engine.ident_pattern(&q.raw));
        let scope = scope_sql(&mut p, objects);
        let rows = match engine.ident_window_sql(&pat, &scope, limit) {
            // Few substring matches: all of them, scoped and sorted. Many: the newest through
            // the index for everyone's records, or through the owners' own documents for a
            // narrow scope (where walking the index newest first would pass over nearly all
            // of it before finding the owners' few).
            Some(window) => {
                let rows = db.all(&Raw::new(window, p.0.clone())).await?;
                let dense = rows.first().and_then(|r| r.i64(3)).unwrap_or(0) > SEARCH_WINDOW as i64;
                let narrow = objects.iter().all(|(_, s)| !matches!(s, ScopeFilter::All));
                match (dense, engine.ident_owned_sql(&pat, &scope, limit)) {
                    (false, _) => rows,
                    (true, Some(owned)) if narrow => db.all(&Raw::new(owned, p.0)).await?,
                    (true, _) => db.all(&Raw::new(engine.ident_sql(&pat, &scope, limit), p.0)).await?,
                }
            }
            None => run(db, engine, "ident", &pat, &scope, limit, p.0, |m, s| engine.ident_sql(m, s, limit)).await?,
        };
        collect(rows, &mut hits);
    }
    Ok(hits)
}

/// Run one search statement: bounded first where the engine needs it, unbounded otherwise.
#[allow(clippy::too_many_arguments)]
async fn run(
    db: &Db,
    engine: &dyn SearchEngine,
    kind: &str,
    param: &str,
    scope: &str,
    limit: u32,
    values: Vec<Value>,
    unbounded: impl Fn(&str, &str) -> String,
) -> DbResult<Vec<crate::DbRow>> {
    if let Some(cond) = engine.bounded_condition(kind, param) {
        let rows = db.all(&Raw::new(bounded(&cond, scope, limit), values.clone())).await?;
        let window = rows.first().and_then(|r| r.i64(3)).unwrap_or(0);
        if window <= SEARCH_WINDOW as i64 {
            return Ok(rows);
        }
    }
    db.all(&Raw::new(unbounded(param, scope), values)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns_match_their_text_only() {
        assert_eq!(glob_pattern("W@HuaX"), "*w@huax*");
        assert_eq!(glob_pattern("a*b?c[d"), "*a[*]b[?]c[[]d*");
    }
}
