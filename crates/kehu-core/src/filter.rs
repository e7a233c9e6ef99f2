//! The filter language: AND/OR groups of conditions on fields, parsed from JSON and resolved
//! against an object's metadata (unknown fields, unsupported operators, unreadable fields and
//! bad values are all refused here, before any SQL exists).
//!
//! ```json
//! {"and": [{"field": "city", "op": "eq", "value": "上海"},
//!          {"or": [{"field": "score", "op": "gte", "value": 80},
//!                  {"field": "tags", "op": "contains", "value": "vip"}]}]}
//! ```

use crate::error::{AppError, Result};
use crate::meta::{FieldDef, FieldType, ObjectDef};
use crate::value::{self, Value};
use serde_json::Value as Json;
use std::sync::Arc;
use uuid::Uuid;

/// Operators of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Contains,
    StartsWith,
    In,
    /// None of the values (an empty field included): the "other" bucket of an aggregation.
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Between,
    RelationIs,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "contains" => Op::Contains,
            "starts_with" => Op::StartsWith,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "is_empty" => Op::IsEmpty,
            "is_not_empty" => Op::IsNotEmpty,
            "between" => Op::Between,
            "relation_is" => Op::RelationIs,
            _ => return None,
        })
    }

    /// Whether `self` applies to fields of type `t`.
    pub fn supports(self, t: FieldType) -> bool {
        use FieldType as T;
        match self {
            Op::IsEmpty | Op::IsNotEmpty => true,
            Op::Eq | Op::Neq => !matches!(t, T::MultiSelect | T::Tags),
            Op::In | Op::NotIn => true,
            Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::Between => t.is_ordered(),
            Op::Contains => t.is_textual() || matches!(t, T::MultiSelect | T::Tags),
            Op::StartsWith => t.is_textual(),
            Op::RelationIs => matches!(t, T::Relation | T::User),
        }
    }
}

/// The operand(s) of a resolved condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    None,
    One(Value),
    Two(Value, Value),
    Many(Vec<Value>),
    /// A raw substring for contains / starts with on text.
    Pattern(String),
}

/// A filter resolved against metadata: every field exists, is readable and every value is typed.
#[derive(Debug, Clone)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cond { field: Arc<FieldDef>, op: Op, operand: Operand },
}

/// Limits that keep a filter cheap to compile and run.
pub const MAX_DEPTH: usize = 6;
pub const MAX_CONDITIONS: usize = 100;
pub const MAX_IN_VALUES: usize = 1000;

/// Context for resolving: who asks (`$me`) and which fields they may read.
pub struct ResolveCtx<'a> {
    pub me: Option<Uuid>,
    pub can_read: &'a (dyn Fn(&FieldDef) -> bool + Sync),
}

/// Parse and resolve a JSON filter for `obj`.
pub fn resolve(json: &Json, obj: &ObjectDef, ctx: &ResolveCtx) -> Result<Expr> {
    let mut count = 0;
    resolve_node(json, obj, ctx, 0, &mut count)
}

fn malformed() -> AppError {
    AppError::invalid("filter.malformed")
}

fn resolve_node(json: &Json, obj: &ObjectDef, ctx: &ResolveCtx, depth: usize, count: &mut usize) -> Result<Expr> {
    if depth > MAX_DEPTH {
        return Err(AppError::invalid("filter.too_complex"));
    }
    let map = json.as_object().ok_or_else(malformed)?;
    if let Some(kids) = map.get("and").or_else(|| map.get("or")) {
        if map.len() != 1 {
            return Err(malformed());
        }
        let kids = kids.as_array().ok_or_else(malformed)?;
        let exprs = kids.iter().map(|k| resolve_node(k, obj, ctx, depth + 1, count)).collect::<Result<Vec<_>>>()?;
        return Ok(if map.contains_key("and") { Expr::And(exprs) } else { Expr::Or(exprs) });
    }
    *count += 1;
    if *count > MAX_CONDITIONS {
        return Err(AppError::invalid("filter.too_complex"));
    }
    if map.keys().any(|k| !matches!(k.as_str(), "field" | "op" | "value")) {
        return Err(malformed());
    }
    let fname = map.get("field").and_then(Json::as_str).ok_or_else(malformed)?;
    let op_name = map.get("op").and_then(Json::as_str).ok_or_else(malformed)?;
    let field =
        obj.field(fname).ok_or_else(|| AppError::invalid("filter.unknown_field").with_detail(fname.to_string()))?;
    if !(ctx.can_read)(field) {
        return Err(AppError::forbidden("filter.field_not_readable"));
    }
    let op = Op::parse(op_name).ok_or_else(|| AppError::invalid("filter.unknown_op"))?;
    if !op.supports(field.ftype) {
        return Err(AppError::invalid("filter.op_not_supported"));
    }
    let raw = map.get("value").unwrap_or(&Json::Null);
    let operand = operand(field, op, raw, ctx).map_err(|code| AppError::field(fname, code))?;
    Ok(Expr::Cond { field: field.clone(), op, operand })
}

fn operand(field: &FieldDef, op: Op, raw: &Json, ctx: &ResolveCtx) -> Result<Operand, &'static str> {
    let one = |v: &Json| -> Result<Value, &'static str> {
        if matches!(field.ftype, FieldType::User) && v.as_str() == Some("$me") {
            return ctx.me.map(Value::Ref).ok_or("filter.invalid_value");
        }
        match parse_operand(field, v)? {
            Value::Null => Err("filter.value_required"),
            v => Ok(v),
        }
    };
    Ok(match op {
        Op::IsEmpty | Op::IsNotEmpty => Operand::None,
        Op::Contains | Op::StartsWith if field.ftype.is_textual() => {
            let s = raw.as_str().map(str::trim).ok_or("filter.invalid_value")?;
            let s = if field.ftype == FieldType::Phone {
                s.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect()
            } else if field.ftype == FieldType::Email {
                s.to_lowercase()
            } else {
                s.to_string()
            };
            if s.is_empty() || s.chars().count() > 255 || s.contains('\0') {
                return Err("filter.invalid_value");
            }
            Operand::Pattern(s)
        }
        Op::Contains => Operand::One(one_key(field, raw)?),
        Op::Between => {
            let arr = raw.as_array().filter(|a| a.len() == 2).ok_or("filter.invalid_value")?;
            Operand::Two(one(&arr[0])?, one(&arr[1])?)
        }
        Op::In | Op::NotIn | Op::RelationIs if raw.is_array() => {
            let arr = raw.as_array().ok_or("filter.invalid_value")?;
            if arr.is_empty() || arr.len() > MAX_IN_VALUES {
                return Err("filter.invalid_value");
            }
            let vals = if matches!(field.ftype, FieldType::MultiSelect | FieldType::Tags) {
                arr.iter().map(|v| one_key(field, v)).collect::<Result<Vec<_>, _>>()?
            } else {
                arr.iter().map(one).collect::<Result<Vec<_>, _>>()?
            };
            Operand::Many(vals)
        }
        Op::In | Op::NotIn if matches!(field.ftype, FieldType::MultiSelect | FieldType::Tags) => {
            Operand::Many(vec![one_key(field, raw)?])
        }
        Op::In | Op::NotIn => Operand::Many(vec![one(raw)?]),
        _ => Operand::One(one(raw)?),
    })
}

/// A single key of a multi select (must be an option) or a tag (any text).
fn one_key(field: &FieldDef, raw: &Json) -> Result<Value, &'static str> {
    let s = raw.as_str().map(str::trim).filter(|s| !s.is_empty()).ok_or("filter.invalid_value")?;
    match value::parse_input(field, &Json::String(s.to_string()))? {
        Value::List(mut l) if l.len() == 1 => Ok(Value::Choice(l.remove(0))),
        _ => Err("filter.invalid_value"),
    }
}

/// Values in filters are parsed like inputs, but leniently for text (no format checks: a
/// filter on an e-mail field may compare against any text).
fn parse_operand(field: &FieldDef, v: &Json) -> Result<Value, &'static str> {
    match field.ftype {
        FieldType::Email => Ok(Value::Text(v.as_str().ok_or("filter.invalid_value")?.trim().to_lowercase())),
        FieldType::Phone => {
            let s = match v {
                Json::Number(n) => n.to_string(),
                _ => v.as_str().ok_or("filter.invalid_value")?.to_string(),
            };
            value::normalize_phone(&s)?.map(Value::Text).ok_or("filter.value_required")
        }
        FieldType::Text | FieldType::LongText | FieldType::Url => {
            let s = v.as_str().ok_or("filter.invalid_value")?;
            if s.contains('\0') || s.chars().count() > 2048 {
                return Err("filter.invalid_value");
            }
            Ok(if s.is_empty() { Value::Null } else { Value::Text(s.to_string()) })
        }
        FieldType::DateTime => {
            let s = v.as_str().ok_or("filter.invalid_value")?;
            value::parse_datetime(s).map(Value::DateTime).ok_or("field.invalid_datetime")
        }
        _ => value::parse_input(field, v),
    }
}

/// One sort key.
#[derive(Debug, Clone)]
pub struct SortKey {
    pub field: Arc<FieldDef>,
    pub desc: bool,
}

/// Parse sort keys: `[{"field": "name", "dir": "asc"}]` or `"-updated_at,name"`.
pub fn resolve_sort(json: &Json, obj: &ObjectDef, ctx: &ResolveCtx) -> Result<Vec<SortKey>> {
    let items: Vec<(String, bool)> = match json {
        Json::Null => Vec::new(),
        Json::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.strip_prefix('-') {
                Some(f) => (f.to_string(), true),
                None => (p.to_string(), false),
            })
            .collect(),
        Json::Array(a) => a
            .iter()
            .map(|it| {
                let m = it.as_object().ok_or_else(|| AppError::invalid("sort.malformed"))?;
                if m.keys().any(|k| k != "field" && k != "dir") {
                    return Err(AppError::invalid("sort.malformed"));
                }
                let f = m.get("field").and_then(Json::as_str).ok_or_else(|| AppError::invalid("sort.malformed"))?;
                let desc = match m.get("dir").and_then(Json::as_str) {
                    None | Some("asc") => false,
                    Some("desc") => true,
                    _ => return Err(AppError::invalid("sort.malformed")),
                };
                Ok((f.to_string(), desc))
            })
            .collect::<Result<_>>()?,
        _ => return Err(AppError::invalid("sort.malformed")),
    };
    if items.len() > 5 {
        return Err(AppError::invalid("sort.too_many_keys"));
    }
    items
        .into_iter()
        .map(|(name, desc)| {
            let field = obj.field(&name).ok_or_else(|| AppError::invalid("sort.unknown_field"))?;
            if !(ctx.can_read)(field) {
                return Err(AppError::forbidden("sort.field_not_readable"));
            }
            if matches!(field.ftype, FieldType::MultiSelect | FieldType::Tags | FieldType::LongText) {
                return Err(AppError::invalid("sort.not_sortable"));
            }
            Ok(SortKey { field: field.clone(), desc })
        })
        .collect()
}
