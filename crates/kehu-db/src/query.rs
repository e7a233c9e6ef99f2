//! The filter → SQL compiler, sorting with a stable tiebreak, keyset (cursor) pagination and
//! counts. It works on resolved filters (`kehu_core::filter::Expr`), so every column it names
//! comes from metadata and every value is bound.

use crate::conn::{Backend, Db, DbRow, DbVal, Sql};
use crate::records::{col, encode, scope_expr, select_columns};
use base64::Engine;
use kehu_core::filter::{Expr as F, Op, Operand, SortKey};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef, Storage};
use kehu_core::perm::ScopeFilter;
use kehu_core::value::Value;
use kehu_core::{AppError, Uuid};
use sea_query::{
    Alias, Cond, Condition, Expr, Func, LikeExpr, NullOrdering, Order, Query, SelectStatement, SimpleExpr,
};
use serde_json::Value as Json;

/// Escape `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub fn like_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// Case-insensitive LIKE on both backends (SQLite's LIKE already is, for ASCII; PostgreSQL
/// compares lower-cased text).
pub fn ilike(b: Backend, column: &str, pattern: String) -> SimpleExpr {
    match b {
        Backend::Sqlite => col(column).like(LikeExpr::new(pattern).escape('\\')),
        Backend::Postgres => {
            Expr::expr(Func::lower(col(column))).like(LikeExpr::new(pattern.to_lowercase()).escape('\\'))
        }
    }
}

/// `position(needle in column) > 0`, case-sensitive, for JSON-encoded lists.
pub(crate) fn list_has(b: Backend, column: &str, key: &str) -> SimpleExpr {
    let needle = serde_json::to_string(key).unwrap_or_default();
    let f = match b {
        Backend::Sqlite => "instr",
        Backend::Postgres => "strpos",
    };
    Expr::expr(Func::cust(Alias::new(f)).arg(col(column)).arg(needle)).gt(0)
}

/// Compile a resolved filter to a condition.
pub fn compile(b: Backend, e: &F) -> SimpleExpr {
    match e {
        F::And(kids) => kids.iter().fold(Cond::all(), |c, k| c.add(compile(b, k))).into(),
        F::Or(kids) => kids.iter().fold(Cond::any(), |c, k| c.add(compile(b, k))).into(),
        F::Cond { field, op, operand } => cond(b, field, *op, operand),
    }
}

fn cond(b: Backend, f: &FieldDef, op: Op, operand: &Operand) -> SimpleExpr {
    let c = || col(&f.column);
    let v = |x: &Value| encode(f, x);
    let is_list = matches!(f.ftype, FieldType::MultiSelect | FieldType::Tags);
    match (op, operand) {
        (Op::IsEmpty, _) => c().is_null(),
        (Op::IsNotEmpty, _) => c().is_not_null(),
        (Op::Eq | Op::RelationIs, Operand::One(x)) => c().eq(v(x)),
        (Op::Neq, Operand::One(x)) => Cond::any().add(c().ne(v(x))).add(c().is_null()).into(),
        (Op::Lt, Operand::One(x)) => c().lt(v(x)),
        (Op::Lte, Operand::One(x)) => c().lte(v(x)),
        (Op::Gt, Operand::One(x)) => c().gt(v(x)),
        (Op::Gte, Operand::One(x)) => c().gte(v(x)),
        (Op::Between, Operand::Two(lo, hi)) => Cond::all().add(c().gte(v(lo))).add(c().lte(v(hi))).into(),
        (Op::Contains, Operand::Pattern(p)) => ilike(b, &f.column, format!("%{}%", like_escape(p))),
        (Op::StartsWith, Operand::Pattern(p)) => ilike(b, &f.column, format!("{}%", like_escape(p))),
        (Op::Contains, Operand::One(Value::Choice(k))) if is_list => list_has(b, &f.column, k),
        (Op::In, Operand::Many(xs)) if is_list => xs
            .iter()
            .filter_map(|x| match x {
                Value::Choice(k) => Some(list_has(b, &f.column, k)),
                _ => None,
            })
            .fold(Cond::any(), |cd, e| cd.add(e))
            .into(),
        (Op::In | Op::RelationIs, Operand::Many(xs)) => c().is_in(xs.iter().map(v)),
        // None of the values; an empty field is none of them too.
        (Op::NotIn, Operand::Many(xs)) if is_list => {
            let any = xs
                .iter()
                .filter_map(|x| match x {
                    Value::Choice(k) => Some(list_has(b, &f.column, k)),
                    _ => None,
                })
                .fold(Cond::any(), |cd, e| cd.add(e));
            Cond::any().add(any.not()).add(c().is_null()).into()
        }
        (Op::NotIn, Operand::Many(xs)) => Cond::any().add(c().is_not_in(xs.iter().map(v))).add(c().is_null()).into(),
        // Resolution only produces the pairs above; anything else matches nothing.
        _ => Expr::cust("1 = 0"),
    }
}

/// A decoded cursor: the last row's sort values and id.
#[derive(Debug, Clone)]
struct Cursor {
    values: Vec<Option<sea_query::Value>>,
    id: Uuid,
}

fn sort_signature(keys: &[SortKey]) -> String {
    keys.iter().map(|k| format!("{}{}", if k.desc { "-" } else { "" }, k.field.api_name)).collect::<Vec<_>>().join(",")
}

/// Encode a cursor after `row` (a row selected by `list`, whose trailing columns are the sort
/// values).
fn encode_cursor(keys: &[SortKey], rec_id: Uuid, row: &DbRow, first_sort_col: usize) -> String {
    let mut vals = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let j = first_sort_col + i;
        vals.push(match (k.field.ftype.storage(), row.val(j)) {
            (_, DbVal::Null) => Json::Null,
            (Storage::Uuid, _) => row.uuid(j).map(|u| Json::String(u.to_string())).unwrap_or(Json::Null),
            (Storage::Bool, _) => row.bool(j).map(Json::Bool).unwrap_or(Json::Null),
            (Storage::BigInt, _) => row.i64(j).map(Json::from).unwrap_or(Json::Null),
            (Storage::Text, _) => row.string(j).map(Json::String).unwrap_or(Json::Null),
        });
    }
    cursor_after(keys, vals, rec_id)
}

/// A list cursor positioned after a row with these sort values (JSON: numbers for integer and
/// time columns, strings for text and ids) and id — for a caller that keeps its own place, as
/// the timeline does.
pub fn cursor_after(keys: &[SortKey], values: Vec<Json>, id: Uuid) -> String {
    let body = serde_json::json!({ "s": sort_signature(keys), "v": values, "id": id.to_string() });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
}

fn decode_cursor(keys: &[SortKey], s: &str) -> Result<Cursor, AppError> {
    let bad = || AppError::invalid("query.invalid_cursor");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.as_bytes()).map_err(|_| bad())?;
    let j: Json = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if j.get("s").and_then(Json::as_str) != Some(&sort_signature(keys)) {
        return Err(bad());
    }
    let id = j.get("id").and_then(Json::as_str).and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(bad)?;
    let vals = j.get("v").and_then(Json::as_array).filter(|a| a.len() == keys.len()).ok_or_else(bad)?;
    let mut values = Vec::new();
    for (k, v) in keys.iter().zip(vals) {
        values.push(match (k.field.ftype.storage(), v) {
            (_, Json::Null) => None,
            (Storage::Uuid, Json::String(s)) => Some(Uuid::parse_str(s).map_err(|_| bad())?.into()),
            (Storage::Bool, Json::Bool(b)) => Some((*b).into()),
            (Storage::BigInt, Json::Number(n)) => Some(n.as_i64().ok_or_else(bad)?.into()),
            (Storage::Text, Json::String(s)) => Some(s.clone().into()),
            _ => return Err(bad()),
        });
    }
    Ok(Cursor { values, id })
}

/// Direction of the `id` tiebreak: that of the last sort key, so a `(column, id)` index
/// serves the whole ORDER BY in either direction.
fn id_desc(keys: &[SortKey]) -> bool {
    keys.last().is_some_and(|k| k.desc)
}

/// The keyset predicate "after the cursor" for keys sorted with NULL as the smallest value
/// (first ascending, last descending — SQLite's native order, and PostgreSQL's with our
/// `NULLS FIRST` indexes), then `id`.
fn after(keys: &[SortKey], cur: &Cursor) -> SimpleExpr {
    let mut any = Cond::any();
    // Equal on all previous keys, beyond on this one.
    let mut prefix: Vec<SimpleExpr> = Vec::new();
    for (k, v) in keys.iter().zip(&cur.values) {
        let c = || col(&k.field.column);
        let beyond: Option<SimpleExpr> = match (v, k.desc) {
            (Some(v), false) => Some(c().gt(v.clone())),
            (None, false) => Some(c().is_not_null()),
            (Some(v), true) => Some(Cond::any().add(c().lt(v.clone())).add(c().is_null()).into()),
            (None, true) => None,
        };
        if let Some(bexp) = beyond {
            any = any.add(prefix.iter().cloned().fold(Cond::all(), |a, p| a.add(p)).add(bexp));
        }
        prefix.push(match v {
            Some(v) => c().eq(v.clone()),
            None => c().is_null(),
        });
    }
    let id_after = if id_desc(keys) { col("id").lt(cur.id) } else { col("id").gt(cur.id) };
    any = any.add(prefix.into_iter().fold(Cond::all(), |a, p| a.add(p)).add(id_after));
    any.into()
}

/// Columns every record has a value in (`NOT NULL` in every object table).
const NOT_NULL: [&str; 4] = ["id", "created_at", "updated_at", "version"];

/// A bound on the first sort key implied by "after the cursor", as a plain range the sort
/// index `(key, id)` can seek to. `after` alone is an OR of several terms, which neither
/// planner turns into an index range: each page then walks the index from the first row
/// and skips everything before the cursor — a streamed export of N records read N²/2 rows.
/// Descending from a value of a column that may be NULL, the rows after the cursor are the
/// smaller values *and* the NULLs (last when descending): the bound `<= v` leaves the NULLs
/// out, and `fetch_page` reads them separately once the values run out (`nulls_follow`).
fn first_key_bound(keys: &[SortKey], cur: &Cursor) -> Option<SimpleExpr> {
    let (k, v) = (keys.first()?, cur.values.first()?);
    let c = col(&k.field.column);
    match (v, k.desc) {
        (Some(v), false) => Some(c.gte(v.clone())),
        (None, true) => Some(c.is_null()),
        (Some(v), true) => Some(c.lte(v.clone())),
        (None, false) => None,
    }
}

/// Whether the page's bound left out NULLs of the first key that come after the cursor:
/// descending, from a value, on a column that may be NULL.
fn nulls_follow(spec: &ListSpec) -> Result<bool, AppError> {
    let (Some(k), Some(c)) = (spec.sort.first(), spec.cursor) else { return Ok(false) };
    if !k.desc || NOT_NULL.contains(&k.field.column.as_str()) {
        return Ok(false);
    }
    Ok(decode_cursor(spec.sort, c)?.values.first().is_some_and(Option::is_some))
}

/// A list request, resolved.
pub struct ListSpec<'a> {
    pub obj: &'a ObjectDef,
    pub scope: &'a ScopeFilter,
    pub filter: Option<&'a F>,
    pub sort: &'a [SortKey],
    pub limit: u64,
    pub cursor: Option<&'a str>,
    pub deleted: bool,
}

fn base_where(b: Backend, q: &mut SelectStatement, spec: &ListSpec) {
    q.and_where(if spec.deleted { col("deleted_at").is_not_null() } else { col("deleted_at").is_null() });
    if let Some(s) = scope_expr(spec.scope, "owner_id") {
        q.and_where(s);
    }
    if let Some(f) = spec.filter {
        q.cond_where(Condition::all().add(compile(b, f)));
    }
}

/// Build the page query: record columns, then the sort columns (for the next cursor).
pub fn list_query(b: Backend, spec: &ListSpec) -> Result<(SelectStatement, usize), AppError> {
    let mut q = Query::select();
    q.from(Alias::new(&spec.obj.table));
    let cols = select_columns(spec.obj);
    let first_sort_col = cols.len();
    for c in cols {
        q.column(Alias::new(c));
    }
    for k in spec.sort {
        q.column(Alias::new(&k.field.column));
    }
    base_where(b, &mut q, spec);
    if let Some(c) = spec.cursor {
        let cur = decode_cursor(spec.sort, c)?;
        if let Some(bound) = first_key_bound(spec.sort, &cur) {
            q.and_where(bound);
        }
        q.and_where(after(spec.sort, &cur));
    }
    for k in spec.sort {
        let (o, n) = if k.desc { (Order::Desc, NullOrdering::Last) } else { (Order::Asc, NullOrdering::First) };
        q.order_by_with_nulls(Alias::new(&k.field.column), o, n);
    }
    // The tiebreak carries the same explicit NULL order, so PostgreSQL matches it to the index.
    let (o, n) = if id_desc(spec.sort) { (Order::Desc, NullOrdering::Last) } else { (Order::Asc, NullOrdering::First) };
    q.order_by_with_nulls(Alias::new("id"), o, n).limit(spec.limit + 1);
    Ok((q, first_sort_col))
}

/// The cursor for the page that follows `row`.
pub fn next_cursor(spec: &ListSpec, rec_id: Uuid, row: &DbRow, first_sort_col: usize) -> String {
    encode_cursor(spec.sort, rec_id, row, first_sort_col)
}

/// `SELECT COUNT(*)` of the matching rows, capped at `cap` when given (counts stop early).
pub fn count_query(b: Backend, spec: &ListSpec, cap: Option<u64>) -> SelectStatement {
    let mut inner = Query::select();
    inner.from(Alias::new(&spec.obj.table)).expr(Expr::val(1));
    base_where(b, &mut inner, spec);
    if let Some(cap) = cap {
        inner.limit(cap + 1);
    }
    Query::select().expr(Expr::cust("COUNT(*)")).from_subquery(inner, Alias::new("c")).to_owned()
}

/// A statement run with SQLite's `INDEXED BY` (sea-query has no such clause).
pub struct IndexedBy<'a> {
    pub stmt: &'a SelectStatement,
    pub table: &'a str,
    pub index: String,
}

impl Sql for IndexedBy<'_> {
    fn build(&self, b: Backend) -> (String, sea_query::Values) {
        let (sql, values) = self.stmt.build_any(b.query_builder());
        if b != Backend::Sqlite {
            return (sql, values);
        }
        let from = format!("FROM \"{}\"", self.table);
        let with = format!("{from} INDEXED BY \"{}\"", self.index);
        (sql.replacen(&from, &with, 1), values)
    }
}

/// Rows of the sort index a page walks before it gives up and lets the planner choose.
pub const SORT_WINDOW: u64 = 5000;

/// The index that yields rows in the list's order, if there is one: the owner index for "my
/// records by update time", else the first sort key's `(column, id)` index.
pub fn sort_index(spec: &ListSpec) -> Option<String> {
    let first = spec.sort.first()?;
    if matches!(spec.scope, ScopeFilter::Owner(_)) && first.field.column == "updated_at" {
        return Some(crate::ddl::index_name("ix", &spec.obj.table, "owner_id"));
    }
    crate::ddl::has_sort_index(&first.field).then(|| crate::ddl::index_name("ix", &spec.obj.table, &first.field.column))
}

/// The windowed form of a page: the first `SORT_WINDOW` rows in sort order (scope and
/// cursor applied, walked along the sort index), then the filter on those rows only.
fn windowed_query(b: Backend, spec: &ListSpec) -> Result<SelectStatement, AppError> {
    let unfiltered = ListSpec { filter: None, limit: SORT_WINDOW - 1, ..*spec };
    let (inner, _) = list_query(b, &unfiltered)?;
    let mut q = Query::select();
    q.column(sea_query::Asterisk).from_subquery(inner, Alias::new("w"));
    if let Some(f) = spec.filter {
        q.cond_where(Condition::all().add(compile(b, f)));
    }
    q.limit(spec.limit + 1);
    Ok(q)
}

/// Fetch one page. SQLite's planner prefers a filter's index and then sorts every match, which
/// is slow when many rows match. So a filtered page first walks the sort index for at most
/// `SORT_WINDOW` rows: that window holds the page whenever matches are not rare (cost bounded
/// by the window); otherwise the planner's plan runs, which is fast exactly when matches are
/// rare. PostgreSQL's planner weighs this itself.
pub async fn fetch_page(db: &Db, spec: &ListSpec<'_>) -> Result<(Vec<DbRow>, usize), AppError> {
    let b = db.backend();
    let (q, first_sort_col) = list_query(b, spec)?;
    if b == Backend::Sqlite && spec.filter.is_some() && !spec.deleted {
        if let Some(index) = sort_index(spec) {
            let w = windowed_query(b, spec)?;
            let rows = db.all(&IndexedBy { stmt: &w, table: &spec.obj.table, index }).await?;
            if rows.len() as u64 > spec.limit {
                return Ok((rows, first_sort_col));
            }
        }
    }
    let mut rows = db.all(&q).await?;
    if rows.len() as u64 <= spec.limit && nulls_follow(spec)? {
        // The values ran out before the page was full: go on with the NULL block, from its
        // top (every NULL row comes after a cursor that has a value).
        let from_top = ListSpec { cursor: None, ..*spec };
        let (mut tail, _) = list_query(b, &from_top)?;
        tail.and_where(col(&spec.sort[0].field.column).is_null()).limit(spec.limit + 1 - rows.len() as u64);
        rows.extend(db.all(&tail).await?);
    }
    Ok((rows, first_sort_col))
}
