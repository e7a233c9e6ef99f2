//! Aggregation SQL: group the records a list would show (same scope, same filter) by up to two
//! keys and compute measures, in one statement on both backends. Keys are a field's value, one
//! element of a multi-value field, or a date bucket computed in the viewer's time zone from
//! UTC offsets the caller supplies (so both backends bucket alike, whatever time-zone data the
//! database has). Column names come from metadata; every value is bound.
//!
//! Result columns: per key `k<i>` (the value, or NULL) and `o<i>` (1 for the "other" group of
//! a capped key), then the currency code when asked, then one column per measure.

use crate::conn::Backend;
use crate::query::compile;
use crate::records::scope_expr;
use kehu_core::filter::Expr as F;
use kehu_core::meta::{FieldDef, FieldType, ObjectDef};
use kehu_core::perm::ScopeFilter;
use sea_query::{
    Alias, Condition, Expr, ExprTrait, Func, JoinType, Order, Query, SelectStatement, SimpleExpr, TableRef,
};

/// Microseconds in a day.
pub const DAY: i64 = 86_400_000_000;
/// Days added before integer division so that it floors for dates back to year 54 (a multiple
/// of 7, so weeks stay aligned).
const SHIFT_DAYS: i64 = 700_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// One group key.
pub enum Key<'a> {
    /// The field's value. With `keep`, values outside it form the key's "other" group.
    Value { field: &'a FieldDef, keep: Option<Vec<sea_query::Value>> },
    /// One group per element of a multi-select or tags field (a record with none is in the
    /// empty group). With `keep`, elements outside it form the "other" group.
    Element { field: &'a FieldDef, keep: Option<Vec<String>> },
    /// A date bucket. Day keys are day numbers since 1970-01-01 (local), week keys
    /// `floor((day + 3 - week_start) / 7)` (week_start 0 = Monday … 6 = Sunday), month keys
    /// `year * 12 + month - 1`, quarter and year keys count from the fiscal year's first
    /// month (`floor((month_key - (fiscal_start - 1)) / 3)` and `/ 12`). `offsets` are the
    /// zone's UTC offsets in microseconds, `(until, offset)` ascending with the last until
    /// `i64::MAX` (date fields ignore them).
    Date { field: &'a FieldDef, bucket: Bucket, offsets: &'a [(i64, i64)], week_start: i64, fiscal_start: i64 },
}

/// One measure.
#[derive(Clone, Copy)]
pub enum Measure<'a> {
    Count,
    CountDistinct(&'a FieldDef),
    /// Exact sum as text (PostgreSQL sums bigint as numeric).
    Sum(&'a FieldDef),
    Min(&'a FieldDef),
    Max(&'a FieldDef),
    /// Records where the field is set.
    Filled(&'a FieldDef),
}

pub struct AggSpec<'a> {
    pub obj: &'a ObjectDef,
    pub scope: &'a ScopeFilter,
    pub filter: Option<&'a F>,
    pub keys: &'a [Key<'a>],
    pub measures: &'a [Measure<'a>],
    /// Group by this currency field's code too (currency sums are per currency).
    pub currency: Option<&'a FieldDef>,
    /// Order by count, most first, and return at most this many groups (a capped key's top
    /// values); `None`: every group, in key order.
    pub top: Option<u64>,
}

const T: &str = "t";
const JE: &str = "je";

fn tcol(f: &FieldDef) -> SimpleExpr {
    Expr::col((Alias::new(T), Alias::new(&f.column))).into()
}

/// A custom expression over `inner`, with the backend's placeholders for `vals`.
struct Frag {
    b: Backend,
    sql: String,
    vals: Vec<sea_query::Value>,
}

impl Frag {
    fn new(b: Backend) -> Self {
        Frag { b, sql: String::new(), vals: Vec::new() }
    }
    fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }
    fn val(&mut self, v: impl Into<sea_query::Value>) -> &mut Self {
        self.vals.push(v.into());
        match self.b {
            Backend::Sqlite => self.sql.push('?'),
            Backend::Postgres => self.sql.push_str(&format!("${}", self.vals.len())),
        }
        self
    }
    fn expr(self) -> SimpleExpr {
        Expr::cust_with_values(self.sql, self.vals)
    }
}

fn quoted(f: &FieldDef) -> String {
    format!("\"{T}\".\"{}\"", f.column.replace('"', ""))
}

/// Local microseconds of a datetime column: the column plus its offset.
fn local_micros(fr: &mut Frag, c: &str, offsets: &[(i64, i64)]) {
    fr.push("(").push(c).push(" + ");
    match offsets {
        [] => {
            fr.val(0i64);
        }
        [(_, off)] => {
            fr.val(*off);
        }
        many => {
            fr.push("CASE");
            let (last, rest) = many.split_last().unwrap_or((&(i64::MAX, 0), &[]));
            for (until, off) in rest {
                fr.push(" WHEN ").push(c).push(" < ").val(*until).push(" THEN ").val(*off);
            }
            fr.push(" ELSE ").val(last.1).push(" END");
        }
    }
    fr.push(")");
}

/// Local day number (days since 1970-01-01) of a date or datetime column.
fn day_number(fr: &mut Frag, f: &FieldDef, offsets: &[(i64, i64)]) {
    let c = quoted(f);
    if f.ftype == FieldType::Date {
        match fr.b {
            Backend::Sqlite => fr.push("CAST(julianday(").push(&c).push(") - 2440587.5 AS INTEGER)"),
            Backend::Postgres => fr.push("(CAST(").push(&c).push(" AS DATE) - DATE '1970-01-01')"),
        };
        return;
    }
    fr.push("((");
    local_micros(fr, &c, offsets);
    fr.push(" + ").val(SHIFT_DAYS * DAY).push(") / ").val(DAY).push(" - ").val(SHIFT_DAYS).push(")");
}

/// Local month key (`year * 12 + month - 1`) of a date or datetime column.
fn month_key(fr: &mut Frag, f: &FieldDef, offsets: &[(i64, i64)]) {
    let c = quoted(f);
    if f.ftype == FieldType::Date {
        fr.push("(CAST(substr(")
            .push(&c)
            .push(", 1, 4) AS BIGINT) * 12 + CAST(substr(")
            .push(&c)
            .push(", 6, 2) AS BIGINT) - 1)");
        return;
    }
    // From local seconds with fractions (a float keeps the sign right before 1970).
    let part = |fr: &mut Frag, year: bool| match fr.b {
        Backend::Sqlite => {
            fr.push("CAST(strftime('").push(if year { "%Y" } else { "%m" }).push("', ");
            local_micros(fr, &c, offsets);
            fr.push(" / 1000000.0, 'unixepoch') AS BIGINT)");
        }
        Backend::Postgres => {
            fr.push("CAST(EXTRACT(").push(if year { "YEAR" } else { "MONTH" }).push(" FROM to_timestamp(");
            local_micros(fr, &c, offsets);
            fr.push(" / 1000000.0) AT TIME ZONE 'UTC') AS BIGINT)");
        }
    };
    fr.push("(");
    part(fr, true);
    fr.push(" * 12 + ");
    part(fr, false);
    fr.push(" - 1)");
}

fn date_key(b: Backend, f: &FieldDef, bucket: Bucket, offsets: &[(i64, i64)], ws: i64, fs: i64) -> SimpleExpr {
    let mut fr = Frag::new(b);
    // Empty dates stay empty.
    fr.push("CASE WHEN ").push(&quoted(f)).push(" IS NULL THEN NULL ELSE ");
    match bucket {
        Bucket::Day => day_number(&mut fr, f, offsets),
        Bucket::Week => {
            fr.push("((");
            day_number(&mut fr, f, offsets);
            fr.push(" + ").val(SHIFT_DAYS + 3 - ws).push(") / 7 - ").val(SHIFT_DAYS / 7).push(")");
        }
        Bucket::Month => month_key(&mut fr, f, offsets),
        Bucket::Quarter | Bucket::Year => {
            let n: i64 = if bucket == Bucket::Quarter { 3 } else { 12 };
            fr.push("((");
            month_key(&mut fr, f, offsets);
            fr.push(" - ").val(fs - 1).push(") / ").val(n).push(")");
        }
    }
    fr.push(" END");
    fr.expr()
}

/// `(k, o)`: the key expression and its "other" flag.
fn key_exprs(b: Backend, k: &Key) -> (SimpleExpr, SimpleExpr) {
    let zero = || Expr::val(0i64).into();
    match k {
        Key::Value { field, keep: None } => (tcol(field), zero()),
        Key::Value { field, keep: Some(keep) } => {
            let c = tcol(field);
            if keep.is_empty() {
                return (Expr::cust("NULL"), Expr::case(c.is_null(), 0i64).finally(1i64).into());
            }
            let kept = c.clone().is_in(keep.iter().cloned());
            let value = Expr::case(kept.clone(), c.clone()).finally(Expr::cust("NULL")).into();
            (value, Expr::case(c.is_null(), 0i64).case(kept, 0i64).finally(1i64).into())
        }
        Key::Element { keep, .. } => {
            let el: SimpleExpr = Expr::col((Alias::new(JE), Alias::new("value"))).into();
            match keep {
                None => (el, zero()),
                Some(keep) if keep.is_empty() => {
                    (Expr::cust("NULL"), Expr::case(el.is_null(), 0i64).finally(1i64).into())
                }
                Some(keep) => {
                    let kept = el.clone().is_in(keep.iter().cloned());
                    let value = Expr::case(kept.clone(), el.clone()).finally(Expr::cust("NULL")).into();
                    let other = Expr::case(el.is_null(), 0i64).case(kept, 0i64).finally(1i64).into();
                    (value, other)
                }
            }
        }
        Key::Date { field, bucket, offsets, week_start, fiscal_start } => {
            (date_key(b, field, *bucket, offsets, *week_start, *fiscal_start), zero())
        }
    }
}

fn measure_expr(b: Backend, m: &Measure) -> SimpleExpr {
    match m {
        Measure::Count => Expr::cust("COUNT(*)"),
        Measure::CountDistinct(f) => Func::count_distinct(tcol(f)).into(),
        Measure::Sum(f) => {
            let mut fr = Frag::new(b);
            fr.push("CAST(SUM(").push(&quoted(f)).push(") AS TEXT)");
            fr.expr()
        }
        Measure::Min(f) => Func::min(tcol(f)).into(),
        Measure::Max(f) => Func::max(tcol(f)).into(),
        Measure::Filled(f) => Func::count(tcol(f)).into(),
    }
}

/// The aggregate statement.
pub fn aggregate_query(b: Backend, spec: &AggSpec) -> SelectStatement {
    let mut q = Query::select();
    q.from_as(Alias::new(&spec.obj.table), Alias::new(T));
    let mut groups = Vec::new();
    for (i, k) in spec.keys.iter().enumerate() {
        let (kx, ox) = key_exprs(b, k);
        q.expr_as(kx, Alias::new(format!("k{i}")));
        q.expr_as(ox, Alias::new(format!("o{i}")));
        groups.push(format!("k{i}"));
        groups.push(format!("o{i}"));
        if let Key::Element { field, .. } = k {
            let arg = tcol(field);
            let func = match b {
                Backend::Sqlite => Func::cust(Alias::new("json_each")).arg(arg),
                Backend::Postgres => Func::cust(Alias::new("jsonb_array_elements_text"))
                    .arg(Expr::cust_with_expr("CAST($1 AS jsonb)", arg)),
            };
            q.join(
                JoinType::LeftJoin,
                TableRef::FunctionCall(func, sea_query::SeaRc::new(Alias::new(JE))),
                Expr::cust("1 = 1"),
            );
        }
    }
    if let Some(cf) = spec.currency {
        q.expr_as(Expr::col((Alias::new(T), Alias::new(cf.currency_column()))), Alias::new("cur"));
        groups.push("cur".into());
    }
    for (i, m) in spec.measures.iter().enumerate() {
        q.expr_as(measure_expr(b, m), Alias::new(format!("m{i}")));
    }
    q.and_where(Expr::col((Alias::new(T), Alias::new("deleted_at"))).is_null());
    if let Some(s) = scope_expr(spec.scope, "owner_id") {
        q.and_where(s);
    }
    if let Some(f) = spec.filter {
        q.cond_where(Condition::all().add(compile(b, f)));
    }
    for g in &groups {
        q.add_group_by([SimpleExpr::from(Expr::col(Alias::new(g)))]);
    }
    match spec.top {
        Some(n) => {
            q.order_by_expr(Expr::cust("COUNT(*)"), Order::Desc);
            for g in &groups {
                q.order_by(Alias::new(g), Order::Asc);
            }
            q.limit(n);
        }
        None => {
            for g in &groups {
                q.order_by(Alias::new(g), Order::Asc);
            }
        }
    }
    q
}
