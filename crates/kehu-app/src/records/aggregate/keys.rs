//! Group keys: the database key of each requested key, a group's identity, and a key as
//! shown — its value, label, and the conditions that list its records — with its sort rank.

use super::buckets::{bucket_days, bucket_label, day_start};
use super::KeyValue;
use kehu_core::meta::{FieldDef, FieldType};
use kehu_core::value::format_datetime;
use kehu_core::Uuid;
use kehu_db::aggregate::{Bucket, Key};
use kehu_db::{DbRow, DbVal};
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) enum KeyKind {
    Value,
    Element,
    Date(Bucket),
}

pub(super) struct K {
    pub(super) field: Arc<FieldDef>,
    pub(super) kind: KeyKind,
    /// Kept values of a capped key (`None`: not capped).
    pub(super) keep: Option<Vec<Json>>,
}

/// A key's raw value from the database, comparable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Raw {
    Null,
    Int(i64),
    Text(String),
    Uuid(Uuid),
    Bool(bool),
}

impl Raw {
    pub(super) fn of(v: &DbVal) -> Raw {
        match v {
            DbVal::Null => Raw::Null,
            DbVal::Int(n) => Raw::Int(*n),
            DbVal::Real(x) => Raw::Int(*x as i64),
            DbVal::Text(s) => Raw::Text(s.clone()),
            DbVal::Blob(b) => Uuid::from_slice(b).map(Raw::Uuid).unwrap_or(Raw::Null),
            DbVal::Bool(b) => Raw::Bool(*b),
            DbVal::Uuid(u) => Raw::Uuid(*u),
        }
    }
    pub(super) fn json(&self) -> Json {
        match self {
            Raw::Null => Json::Null,
            Raw::Int(n) => json!(n),
            Raw::Text(s) => json!(s),
            Raw::Uuid(u) => json!(u),
            Raw::Bool(b) => json!(b),
        }
    }
}

/// A group's identity: per key, its raw value and "other" flag.
pub(super) type GroupId = Vec<(Raw, bool)>;

/// A currency measure's cells per currency code.
pub(super) type PerCurrency = Vec<(String, Vec<DbVal>)>;

pub(super) fn db_key<'a>(k: &'a K, offsets: &'a [(i64, i64)], ws: i64, fs: i64, keep: Option<&Vec<Json>>) -> Key<'a> {
    match k.kind {
        KeyKind::Value => Key::Value {
            field: &k.field,
            keep: keep.map(|vals| {
                vals.iter()
                    .map(|v| match (k.field.ftype, v) {
                        (FieldType::User | FieldType::Relation, Json::String(s)) => {
                            s.parse::<Uuid>().map(sea_query::Value::from).unwrap_or_else(|_| s.clone().into())
                        }
                        (_, Json::Number(n)) => n.as_i64().unwrap_or(0).into(),
                        (_, v) => v.as_str().unwrap_or_default().to_string().into(),
                    })
                    .collect()
            }),
        },
        KeyKind::Element => Key::Element {
            field: &k.field,
            keep: keep.map(|vals| vals.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
        },
        KeyKind::Date(bucket) => Key::Date { field: &k.field, bucket, offsets, week_start: ws, fiscal_start: fs },
    }
}

pub(super) fn group_id(r: &DbRow, nk: usize) -> GroupId {
    (0..nk).map(|i| (Raw::of(r.val(2 * i)), r.i64(2 * i + 1).unwrap_or(0) == 1)).collect()
}

/// A group's key as shown, and the conditions that list its records (`None`: not listable).
#[allow(clippy::too_many_arguments)]
pub(super) fn key_value(
    k: &K,
    raw: &(Raw, bool),
    tz: &chrono_tz::Tz,
    ws: i64,
    fs: i64,
    lang: &str,
    labels: &HashMap<(usize, String), String>,
    i: usize,
) -> (KeyValue, Option<Vec<Json>>) {
    let f = &k.field;
    let name = f.api_name.as_str();
    let (v, other) = raw;
    if *other {
        let kv = KeyValue { value: Json::Null, label: String::new(), empty: false, other: true };
        return match k.kind {
            KeyKind::Element => (kv, None),
            _ => {
                let keep = k.keep.clone().unwrap_or_default();
                let conds = vec![
                    json!({"field": name, "op": "is_not_empty"}),
                    json!({"field": name, "op": "not_in", "value": keep}),
                ];
                (kv, Some(conds))
            }
        };
    }
    if *v == Raw::Null {
        let kv = KeyValue { value: Json::Null, label: String::new(), empty: true, other: false };
        return (kv, Some(vec![json!({"field": name, "op": "is_empty"})]));
    }
    match k.kind {
        KeyKind::Date(bucket) => {
            let key = match v {
                Raw::Int(n) => *n,
                Raw::Text(s) => s.parse().unwrap_or(0),
                _ => 0,
            };
            let Some((start, end)) = bucket_days(bucket, key, ws, fs) else {
                return (KeyValue { value: Json::Null, label: String::new(), empty: true, other: false }, None);
            };
            let (lo, hi) = if f.ftype == FieldType::Date {
                (json!(start.to_string()), json!(end.to_string()))
            } else {
                (json!(format_datetime(day_start(tz, start))), json!(format_datetime(day_start(tz, end))))
            };
            let kv = KeyValue {
                value: json!(start.to_string()),
                label: bucket_label(bucket, key, start, fs),
                empty: false,
                other: false,
            };
            (
                kv,
                Some(vec![
                    json!({"field": name, "op": "gte", "value": lo}),
                    json!({"field": name, "op": "lt", "value": hi}),
                ]),
            )
        }
        KeyKind::Element => {
            let key = v.json();
            let label = choice_label(f, key.as_str().unwrap_or_default(), lang);
            let kv = KeyValue { value: key.clone(), label, empty: false, other: false };
            (kv, Some(vec![json!({"field": name, "op": "contains", "value": key})]))
        }
        KeyKind::Value => {
            let mut key = v.json();
            if f.ftype == FieldType::Boolean {
                key = match v {
                    Raw::Int(n) => json!(*n != 0),
                    _ => key,
                };
            }
            let label = match f.ftype {
                FieldType::Select => choice_label(f, key.as_str().unwrap_or_default(), lang),
                FieldType::User | FieldType::Relation => {
                    labels.get(&(i, key.as_str().unwrap_or_default().to_string())).cloned().unwrap_or_default()
                }
                FieldType::Boolean => String::new(),
                _ => key.as_str().map(str::to_owned).unwrap_or_else(|| key.to_string()),
            };
            let kv = KeyValue { value: key.clone(), label, empty: false, other: false };
            (kv, Some(vec![json!({"field": name, "op": "eq", "value": key})]))
        }
    }
}

pub(super) fn choice_label(f: &FieldDef, key: &str, lang: &str) -> String {
    f.options
        .choices
        .iter()
        .find(|c| c.key == key)
        .map(|c| c.label.get(lang).to_string())
        .unwrap_or_else(|| key.to_string())
}

/// The sort rank of a group's key: option order for selects, false before true, time order
/// for dates, most records first for the rest; empty and "other" last.
pub(super) fn rank(k: &K, kv: &KeyValue, count: i64) -> (u8, i64, String) {
    if kv.other {
        return (3, 0, String::new());
    }
    if kv.empty {
        return (2, 0, String::new());
    }
    match (&k.kind, k.field.ftype) {
        (KeyKind::Date(_), _) => (0, 0, kv.value.as_str().unwrap_or_default().to_string()),
        (KeyKind::Value, FieldType::Select) => {
            let pos = k.field.options.choices.iter().position(|c| Some(c.key.as_str()) == kv.value.as_str());
            (0, pos.map(|p| p as i64).unwrap_or(i64::MAX), String::new())
        }
        (KeyKind::Value, FieldType::Boolean) => (0, i64::from(kv.value == json!(true)), String::new()),
        _ => (0, -count, kv.label.clone()),
    }
}
