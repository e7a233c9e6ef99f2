//! SQL for records: typed values ↔ columns, insert/update/delete statements, the scope
//! predicate. Names come from metadata only; values are always bound.

use crate::conn::DbRow;
use kehu_core::meta::{FieldDef, FieldType, ObjectDef, Storage};
use kehu_core::perm::ScopeFilter;
use kehu_core::value::Value;
use kehu_core::Uuid;
use sea_query::{Alias, Expr, Query, SelectStatement, SimpleExpr};
use std::sync::Arc;

/// A record as stored: system columns plus the values of active fields (built-ins included).
#[derive(Debug, Clone)]
pub struct Record {
    pub id: Uuid,
    pub version: i64,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<Uuid>,
    pub values: Vec<(Arc<FieldDef>, Value)>,
}

impl Record {
    pub fn get(&self, api: &str) -> &Value {
        self.values.iter().find(|(f, _)| f.api_name == api).map(|(_, v)| v).unwrap_or(&Value::Null)
    }
    pub fn owner(&self) -> Option<Uuid> {
        match self.get("owner") {
            Value::Ref(u) => Some(*u),
            _ => None,
        }
    }
}

pub fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

/// A typed NULL for a storage class.
pub fn null_of(s: Storage) -> sea_query::Value {
    match s {
        Storage::Text => sea_query::Value::String(None),
        Storage::BigInt => sea_query::Value::BigInt(None),
        Storage::Bool => sea_query::Value::Bool(None),
        Storage::Uuid => sea_query::Value::Uuid(None),
    }
}

/// The value of the field's first column (for filters, sorts and cursors).
pub fn encode(field: &FieldDef, v: &Value) -> sea_query::Value {
    match v {
        Value::Null => null_of(field.ftype.storage()),
        Value::Text(s) | Value::Choice(s) => s.clone().into(),
        Value::Int(n) | Value::Scaled(n) | Value::DateTime(n) => (*n).into(),
        Value::Money { minor, .. } => (*minor).into(),
        Value::Bool(b) => (*b).into(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string().into(),
        Value::List(l) => serde_json::to_string(l).unwrap_or_default().into(),
        Value::Ref(u) => (*u).into(),
    }
}

/// Every (column, value) pair a field writes (currency writes two).
pub fn encode_columns(field: &FieldDef, v: &Value) -> Vec<(String, sea_query::Value)> {
    let mut out = vec![(field.column.clone(), encode(field, v))];
    if let Some(cur) = currency_value(field, v) {
        out.push((field.currency_column(), cur));
    }
    out
}

/// The currency column's value of a currency field (None for other types).
fn currency_value(field: &FieldDef, v: &Value) -> Option<sea_query::Value> {
    (field.ftype == FieldType::Currency).then(|| match v {
        Value::Money { currency, .. } => Some(currency.clone()).into(),
        _ => None::<String>.into(),
    })
}

/// Columns selected for a record, in the order `decode` reads them.
pub fn select_columns(obj: &ObjectDef) -> Vec<String> {
    let mut cols: Vec<String> = ["id", "version", "deleted_at", "deleted_by"].map(String::from).to_vec();
    for f in obj.active() {
        cols.push(f.column.clone());
        if f.ftype == FieldType::Currency {
            cols.push(f.currency_column());
        }
    }
    cols
}

/// Decode a row selected with `select_columns`.
pub fn decode(obj: &ObjectDef, row: &DbRow) -> Option<Record> {
    let id = row.uuid(0)?;
    let mut i = 4;
    let mut values = Vec::with_capacity(obj.fields.len());
    for f in obj.active() {
        let v = decode_value(f, row, i);
        i += if f.ftype == FieldType::Currency { 2 } else { 1 };
        values.push((f.clone(), v));
    }
    Some(Record { id, version: row.i64(1).unwrap_or(0), deleted_at: row.i64(2), deleted_by: row.uuid(3), values })
}

fn decode_value(f: &FieldDef, row: &DbRow, i: usize) -> Value {
    let opt = match f.ftype {
        FieldType::Text | FieldType::LongText | FieldType::Email | FieldType::Phone | FieldType::Url => {
            row.string(i).map(Value::Text)
        }
        FieldType::Select => row.string(i).map(Value::Choice),
        FieldType::MultiSelect | FieldType::Tags => {
            row.str(i).and_then(|s| serde_json::from_str::<Vec<String>>(s).ok()).map(Value::List)
        }
        FieldType::Integer => row.i64(i).map(Value::Int),
        FieldType::Decimal | FieldType::Percent => row.i64(i).map(Value::Scaled),
        FieldType::Currency => {
            row.i64(i).map(|minor| Value::Money { minor, currency: row.string(i + 1).unwrap_or_else(|| "CNY".into()) })
        }
        FieldType::Boolean => row.bool(i).map(Value::Bool),
        FieldType::Date => row.str(i).and_then(kehu_core::value::parse_date).map(Value::Date),
        FieldType::DateTime => row.i64(i).map(Value::DateTime),
        FieldType::Relation | FieldType::User => row.uuid(i).map(Value::Ref),
    };
    opt.unwrap_or(Value::Null)
}

/// The record-scope predicate on `owner_id`, or None for all records.
pub fn scope_expr(scope: &ScopeFilter, owner_col: &str) -> Option<SimpleExpr> {
    match scope {
        ScopeFilter::All => None,
        ScopeFilter::Owner(u) => Some(col(owner_col).eq(*u)),
        ScopeFilter::Teams(teams) => Some(
            col(owner_col).in_subquery(
                Query::select()
                    .column(Alias::new("id"))
                    .from(Alias::new("users"))
                    .and_where(col("team_id").is_in(teams.iter().copied()))
                    .to_owned(),
            ),
        ),
        ScopeFilter::Owners(us) if us.is_empty() => Some(Expr::cust("1 = 0")),
        ScopeFilter::Owners(us) => Some(col(owner_col).is_in(us.iter().copied())),
        ScopeFilter::Nothing => Some(Expr::cust("1 = 0")),
    }
}

/// `SELECT <all columns> FROM <table> [WHERE scope]`: every record the scope allows, deleted
/// ones included; callers add their conditions.
pub fn select_in_scope(obj: &ObjectDef, scope: &ScopeFilter) -> SelectStatement {
    let mut q = Query::select();
    q.from(Alias::new(&obj.table));
    for c in select_columns(obj) {
        q.column(Alias::new(c));
    }
    if let Some(s) = scope_expr(scope, "owner_id") {
        q.and_where(s);
    }
    q
}

/// `SELECT <all columns> FROM <table> WHERE id = ? [AND scope]` (deleted rows included; the
/// caller decides what a deleted row means).
pub fn select_one(obj: &ObjectDef, id: Uuid, scope: &ScopeFilter) -> SelectStatement {
    let mut q = select_in_scope(obj, scope);
    q.and_where(col("id").eq(id));
    q
}

/// Columns and values for inserting one record.
pub struct InsertRow<'a> {
    pub id: Uuid,
    pub owner: Option<Uuid>,
    pub actor: Option<Uuid>,
    pub now: i64,
    pub values: &'a [(Arc<FieldDef>, Value)],
}

/// Column names of a multi-row insert for these fields (must match `insert_values`).
pub fn insert_columns(fields: &[Arc<FieldDef>]) -> Vec<String> {
    let mut cols: Vec<String> = ["id", "owner_id", "created_at", "created_by", "updated_at", "updated_by", "version"]
        .map(String::from)
        .to_vec();
    for f in fields {
        cols.push(f.column.clone());
        if f.ftype == FieldType::Currency {
            cols.push(f.currency_column());
        }
    }
    cols
}

/// Values of one row for `insert_columns(fields)`; values of other fields (the owner) are ignored.
pub fn insert_values(fields: &[Arc<FieldDef>], row: &InsertRow<'_>) -> Vec<sea_query::Value> {
    let mut vals: Vec<sea_query::Value> = Vec::with_capacity(fields.len() + 8);
    vals.extend([
        row.id.into(),
        sea_query::Value::from(row.owner),
        row.now.into(),
        sea_query::Value::from(row.actor),
        row.now.into(),
        sea_query::Value::from(row.actor),
        1i64.into(),
    ]);
    for f in fields {
        let v = row.values.iter().find(|(g, _)| g.id == f.id).map(|(_, v)| v).unwrap_or(&Value::Null);
        vals.push(encode(f, v));
        vals.extend(currency_value(f, v));
    }
    vals
}
