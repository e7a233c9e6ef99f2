//! Aggregation for every object: measures over the records a list shows (same filter, same
//! scope, readable fields only), grouped by up to two keys — a select, multi-select or tags
//! field, a boolean, a user, a relation (named by its target's title), or a date bucket in the
//! viewer's time zone with a chosen week start and fiscal-year start. Currency is summed per
//! currency. Users, relations and tags are capped at `limit` values with an "other" group.
//! Every group carries the filter that lists its records, so a total reconciles with the list
//! it opens (the "other" group of a multi-value key excepted: no list filter says "has a value
//! outside these", so it carries none).

use crate::{App, Result};
use chrono::{Duration, NaiveDate, Offset, TimeZone};
use kehu_core::filter::{self, ResolveCtx};
use kehu_core::meta::{FieldDef, FieldType};
use kehu_core::perm::{Action, Actor};
use kehu_core::value::{currency_digits, format_datetime, format_scaled};
use kehu_core::{AppError, Uuid};
use kehu_db::aggregate::{aggregate_query, AggSpec, Bucket, Key, Measure, DAY};
use kehu_db::{DbRow, DbVal};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

/// Most groups per capped key, and most groups in all.
pub const MAX_LIMIT: u64 = 500;
pub const DEFAULT_LIMIT: u64 = 50;
const MAX_GROUPS: usize = 10_000;
const MAX_MEASURES: usize = 10;

/// An aggregation request (`POST /api/v1/{object}/aggregate`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateRequest {
    /// The list filter language.
    #[serde(default)]
    pub filter: Option<Json>,
    /// Up to two keys.
    #[serde(default)]
    pub group_by: Vec<GroupBy>,
    /// Default: a count.
    #[serde(default)]
    pub measures: Vec<MeasureSpec>,
    /// IANA name; default the user's zone, else the organisation's.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `monday` (default) … `sunday`.
    #[serde(default)]
    pub week_start: Option<String>,
    /// First month of the fiscal year, 1 (default) … 12.
    #[serde(default)]
    pub fiscal_year_start: Option<u32>,
    /// Values kept per user, relation or tags key before the rest become "other".
    #[serde(default)]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBy {
    pub field: String,
    /// For date fields: `day`, `week`, `month` (default), `quarter`, `year`.
    #[serde(default)]
    pub bucket: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSpec {
    /// `count`, `count_distinct`, `sum`, `avg`, `min`, `max`, `empty_share`.
    pub op: String,
    #[serde(default)]
    pub field: Option<String>,
}

/// One key of a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyValue {
    /// The stored value (option key, user or record id, boolean), the bucket's first day for
    /// dates; null for the empty and "other" groups.
    pub value: Json,
    /// What to show: the option's label, the person's or record's name, the bucket's name;
    /// empty for booleans and the empty and "other" groups (the page names them).
    pub label: String,
    /// No value.
    pub empty: bool,
    /// The values beyond the cap.
    pub other: bool,
}

/// One group: its keys, one value per measure, and the filter listing its records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub keys: Vec<KeyValue>,
    pub values: Vec<Json>,
    pub filter: Option<Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    pub groups: Vec<Group>,
    /// Every matching record (keys empty; its filter is the request's).
    pub total: Group,
    /// Some key had more values than `limit`.
    pub capped: bool,
    pub time_zone: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    EmptyShare,
}

struct M {
    op: Op,
    field: Option<Arc<FieldDef>>,
}

enum KeyKind {
    Value,
    Element,
    Date(Bucket),
}

struct K {
    field: Arc<FieldDef>,
    kind: KeyKind,
    /// Kept values of a capped key (`None`: not capped).
    keep: Option<Vec<Json>>,
}

/// A key's raw value from the database, comparable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Raw {
    Null,
    Int(i64),
    Text(String),
    Uuid(Uuid),
    Bool(bool),
}

impl Raw {
    fn of(v: &DbVal) -> Raw {
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
    fn json(&self) -> Json {
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
type GroupId = Vec<(Raw, bool)>;

/// A currency measure's cells per currency code.
type PerCurrency = Vec<(String, Vec<DbVal>)>;

fn bad(code: &'static str) -> AppError {
    AppError::invalid(code)
}

fn numeric(t: FieldType) -> bool {
    matches!(t, FieldType::Integer | FieldType::Decimal | FieldType::Percent | FieldType::Currency)
}

fn dated(t: FieldType) -> bool {
    matches!(t, FieldType::Date | FieldType::DateTime)
}

fn parse_bucket(s: &str) -> Option<Bucket> {
    Some(match s {
        "day" => Bucket::Day,
        "week" => Bucket::Week,
        "month" => Bucket::Month,
        "quarter" => Bucket::Quarter,
        "year" => Bucket::Year,
        _ => return None,
    })
}

fn week_start(s: Option<&str>) -> Result<i64> {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    match s {
        None => Ok(0),
        Some(s) => {
            days.iter().position(|d| *d == s).map(|i| i as i64).ok_or_else(|| bad("aggregate.invalid_week_start"))
        }
    }
}

impl App {
    /// Aggregate the records of `object` the actor may read. `lang` names the labels.
    pub async fn aggregate(
        &self,
        actor: &Actor,
        object: &str,
        req: &AggregateRequest,
        lang: &str,
    ) -> Result<Aggregate> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let scope = actor.check(&obj, Action::Read)?;
        let can_read = |f: &FieldDef| actor.can_read_field(&obj, f);
        let field = |name: &str| -> Result<Arc<FieldDef>> {
            let f = obj.field(name).ok_or_else(|| bad("aggregate.unknown_field").with_detail(name.to_string()))?;
            if !can_read(f) {
                return Err(AppError::forbidden("aggregate.field_not_readable").with_detail(name.to_string()));
            }
            Ok(f.clone())
        };
        // Request checks, each with its own translated error.
        if req.group_by.len() > 2 {
            return Err(bad("aggregate.too_many_keys"));
        }
        if req.measures.len() > MAX_MEASURES {
            return Err(bad("aggregate.too_many_measures"));
        }
        let limit = req.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(AppError::field("limit", "aggregate.invalid_limit"));
        }
        let ws = week_start(req.week_start.as_deref())?;
        let fs = i64::from(req.fiscal_year_start.unwrap_or(1));
        if !(1..=12).contains(&fs) {
            return Err(bad("aggregate.invalid_fiscal_start"));
        }
        let tz = self.viewer_zone(actor, req.time_zone.as_deref()).await?;
        let mut keys = Vec::new();
        for g in &req.group_by {
            let f = field(&g.field)?;
            let kind = match (f.ftype, g.bucket.as_deref()) {
                (t, b) if dated(t) => {
                    KeyKind::Date(parse_bucket(b.unwrap_or("month")).ok_or_else(|| bad("aggregate.unknown_bucket"))?)
                }
                (_, Some(_)) => return Err(bad("aggregate.bucket_not_date").with_detail(g.field.clone())),
                (FieldType::MultiSelect | FieldType::Tags, None) => KeyKind::Element,
                (
                    FieldType::Select
                    | FieldType::Boolean
                    | FieldType::User
                    | FieldType::Relation
                    | FieldType::Text
                    | FieldType::Email
                    | FieldType::Phone
                    | FieldType::Integer,
                    None,
                ) => KeyKind::Value,
                _ => return Err(bad("aggregate.group_not_supported").with_detail(g.field.clone())),
            };
            keys.push(K { field: f, kind, keep: None });
        }
        let mut measures = Vec::new();
        for m in req.measures.iter() {
            let op = match m.op.as_str() {
                "count" => Op::Count,
                "count_distinct" => Op::CountDistinct,
                "sum" => Op::Sum,
                "avg" => Op::Avg,
                "min" => Op::Min,
                "max" => Op::Max,
                "empty_share" => Op::EmptyShare,
                _ => return Err(bad("aggregate.unknown_measure").with_detail(m.op.clone())),
            };
            let f = match (&m.field, op) {
                (None, Op::Count) => None,
                (Some(_), Op::Count) | (None, _) => return Err(bad("aggregate.measure_field")),
                (Some(name), _) => Some(field(name)?),
            };
            let fits = match (op, f.as_ref().map(|f| f.ftype)) {
                (Op::Count, _) | (Op::EmptyShare, _) => true,
                (Op::CountDistinct, Some(t)) => {
                    !matches!(t, FieldType::MultiSelect | FieldType::Tags | FieldType::LongText)
                }
                (Op::Sum | Op::Avg, Some(t)) => numeric(t),
                (Op::Min | Op::Max, Some(t)) => numeric(t) || dated(t),
                _ => false,
            };
            if !fits {
                return Err(bad("aggregate.measure_not_supported").with_detail(m.field.clone().unwrap_or_default()));
            }
            measures.push(M { op, field: f });
        }
        if measures.is_empty() {
            measures.push(M { op: Op::Count, field: None });
        }
        let ctx = ResolveCtx { me: actor.user_id, can_read: &can_read };
        let base = match &req.filter {
            None | Some(Json::Null) => None,
            Some(f) => Some(filter::resolve(f, &obj, &ctx)?),
        };
        let b = self.db.backend();

        // The zone's offsets over the range of each datetime key.
        let mut offsets: Vec<Vec<(i64, i64)>> = Vec::new();
        for k in &keys {
            if let (KeyKind::Date(_), FieldType::DateTime) = (&k.kind, k.field.ftype) {
                let ms = [Measure::Min(&k.field), Measure::Max(&k.field)];
                let spec = AggSpec {
                    obj: &obj,
                    scope: &scope,
                    filter: base.as_ref(),
                    keys: &[],
                    measures: &ms,
                    currency: None,
                    top: None,
                };
                let row = self.db.one(&aggregate_query(b, &spec)).await?;
                let (lo, hi) = row.map(|r| (r.i64(0), r.i64(1))).unwrap_or((None, None));
                offsets.push(zone_offsets(&tz, lo.unwrap_or(0), hi.unwrap_or(0)));
            } else {
                offsets.push(Vec::new());
            }
        }

        // Cap users, relations, tags and text at `limit` values, most frequent first.
        let mut capped = false;
        for (i, k) in keys.iter_mut().enumerate() {
            if !matches!(k.kind, KeyKind::Element)
                && !matches!(
                    k.field.ftype,
                    FieldType::User
                        | FieldType::Relation
                        | FieldType::Text
                        | FieldType::Email
                        | FieldType::Phone
                        | FieldType::Integer
                )
            {
                continue;
            }
            let key = db_key(k, &offsets[i], ws, fs, None);
            let ms = [Measure::Count];
            let spec = AggSpec {
                obj: &obj,
                scope: &scope,
                filter: base.as_ref(),
                keys: std::slice::from_ref(&key),
                measures: &ms,
                currency: None,
                top: Some(limit + 2),
            };
            let rows = self.db.all(&aggregate_query(b, &spec)).await?;
            let values: Vec<Raw> = rows.iter().map(|r| Raw::of(r.val(0))).filter(|v| *v != Raw::Null).collect();
            if values.len() as u64 > limit {
                capped = true;
                k.keep = Some(values.iter().take(limit as usize).map(Raw::json).collect());
            }
        }

        // The groups, then the currency measures per currency.
        let key_specs: Vec<Key> =
            keys.iter().enumerate().map(|(i, k)| db_key(k, &offsets[i], ws, fs, k.keep.as_ref())).collect();
        let plain: Vec<(usize, Measure)> = measures
            .iter()
            .enumerate()
            .filter(|(_, m)| m.field.as_ref().is_none_or(|f| f.ftype != FieldType::Currency))
            .flat_map(|(i, m)| db_measures(m).into_iter().map(move |x| (i, x)))
            .collect();
        let mut db_ms: Vec<Measure> = vec![Measure::Count];
        db_ms.extend(plain.iter().map(|(_, m)| clone_measure(m)));
        let spec = AggSpec {
            obj: &obj,
            scope: &scope,
            filter: base.as_ref(),
            keys: &key_specs,
            measures: &db_ms,
            currency: None,
            top: None,
        };
        let mut stmt = aggregate_query(b, &spec);
        stmt.limit(MAX_GROUPS as u64 + 1);
        let rows = self.db.all(&stmt).await?;
        if rows.len() > MAX_GROUPS {
            return Err(bad("aggregate.too_many_groups"));
        }
        let nk = keys.len();
        let mut order: Vec<GroupId> = Vec::new();
        let mut counts: HashMap<GroupId, i64> = HashMap::new();
        let mut cells: HashMap<GroupId, Vec<DbVal>> = HashMap::new();
        for r in &rows {
            let id = group_id(r, nk);
            counts.insert(id.clone(), r.i64(2 * nk).unwrap_or(0));
            cells.insert(id.clone(), (0..plain.len()).map(|j| r.val(2 * nk + 1 + j).clone()).collect());
            order.push(id);
        }
        // Totals: the same measures without keys.
        let tspec = AggSpec { keys: &[], ..spec };
        let trow = self.db.one(&aggregate_query(b, &tspec)).await?;
        let total_count = trow.as_ref().and_then(|r| r.i64(0)).unwrap_or(0);
        let total_cells: Vec<DbVal> =
            (0..plain.len()).map(|j| trow.as_ref().map(|r| r.val(1 + j).clone()).unwrap_or(DbVal::Null)).collect();

        // Currency measures: per group, per currency.
        let mut money: HashMap<(usize, GroupId), PerCurrency> = HashMap::new();
        for (mi, m) in measures.iter().enumerate() {
            let Some(f) = m.field.as_ref().filter(|f| f.ftype == FieldType::Currency) else { continue };
            let ms = db_measures(m);
            for with_keys in [true, false] {
                let spec = AggSpec {
                    obj: &obj,
                    scope: &scope,
                    filter: base.as_ref(),
                    keys: if with_keys { &key_specs } else { &[] },
                    measures: &ms,
                    currency: Some(f),
                    top: None,
                };
                for r in self.db.all(&aggregate_query(b, &spec)).await? {
                    let n = if with_keys { nk } else { 0 };
                    let id = if with_keys { group_id(&r, nk) } else { Vec::new() };
                    let Some(cur) = r.string(2 * n) else { continue };
                    let vals = (0..ms.len()).map(|j| r.val(2 * n + 1 + j).clone()).collect();
                    money.entry((mi, id)).or_default().push((cur, vals));
                }
            }
        }

        // Labels of users and relation targets.
        let mut labels: HashMap<(usize, String), String> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            let ids: Vec<Uuid> = order
                .iter()
                .filter_map(|g| match &g[i].0 {
                    Raw::Text(s) => s.parse().ok(),
                    Raw::Uuid(u) => Some(*u),
                    _ => None,
                })
                .collect();
            let names = match k.field.ftype {
                FieldType::User => self.user_names(&ids).await?,
                FieldType::Relation => self.titles(actor, &schema, &k.field, &ids).await?,
                _ => continue,
            };
            for (id, n) in names {
                labels.insert((i, id.to_string()), n);
            }
        }

        let value_of = |mi: usize, m: &M, count: i64, id: &GroupId, cells: &[DbVal]| -> Json {
            if m.op == Op::Count {
                return json!(count);
            }
            let f = m.field.as_ref();
            if f.is_some_and(|f| f.ftype == FieldType::Currency) {
                let mut out = Map::new();
                for (cur, vals) in money.get(&(mi, id.clone())).map(Vec::as_slice).unwrap_or(&[]) {
                    // Money is always a decimal string, as records give it (JPY too).
                    let v = match measure_value(m, count, vals, currency_digits(cur)) {
                        Json::Number(n) => json!(n.to_string()),
                        v => v,
                    };
                    out.insert(cur.clone(), v);
                }
                return Json::Object(out);
            }
            let start = plain.iter().position(|(i, _)| *i == mi).unwrap_or(0);
            let width = db_measures(m).len();
            let scale = f
                .map(|f| if matches!(f.ftype, FieldType::Decimal | FieldType::Percent) { f.scale() } else { 0 })
                .unwrap_or(0);
            let v = measure_value(m, count, &cells[start..(start + width).min(cells.len())], scale);
            match (m.op, f) {
                (Op::Min | Op::Max, Some(f)) if f.ftype == FieldType::DateTime => {
                    v.as_i64().map(|n| json!(format_datetime(n))).unwrap_or(Json::Null)
                }
                _ => v,
            }
        };

        let mut groups = Vec::with_capacity(order.len());
        for id in &order {
            let count = counts.get(id).copied().unwrap_or(0);
            let c = cells.get(id).cloned().unwrap_or_default();
            let mut kvs = Vec::new();
            let mut conds: Vec<Json> = req.filter.iter().filter(|f| !f.is_null()).cloned().collect();
            let mut listable = true;
            for (i, k) in keys.iter().enumerate() {
                let (kv, cond) = key_value(k, &id[i], &tz, ws, fs, lang, &labels, i);
                match cond {
                    Some(c) => conds.extend(c),
                    None => listable = false,
                }
                kvs.push(kv);
            }
            let values = measures.iter().enumerate().map(|(mi, m)| value_of(mi, m, count, id, &c)).collect();
            groups.push((Group { keys: kvs, values, filter: listable.then(|| json!({"and": conds})) }, count));
        }
        groups.sort_by(|(a, na), (b, nb)| {
            for (i, k) in keys.iter().enumerate() {
                let o = rank(k, &a.keys[i], *na).cmp(&rank(k, &b.keys[i], *nb));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        let groups = groups.into_iter().map(|(g, _)| g).collect();
        let empty: GroupId = Vec::new();
        let total = Group {
            keys: Vec::new(),
            values: measures
                .iter()
                .enumerate()
                .map(|(mi, m)| value_of(mi, m, total_count, &empty, &total_cells))
                .collect(),
            filter: Some(req.filter.clone().filter(|f| !f.is_null()).unwrap_or_else(|| json!({"and": []}))),
        };
        Ok(Aggregate { groups, total, capped, time_zone: tz.name().to_string() })
    }

    /// The zone a viewer's dates are bucketed in: the request's, else the user's, else the
    /// organisation's.
    async fn viewer_zone(&self, actor: &Actor, asked: Option<&str>) -> Result<chrono_tz::Tz> {
        if let Some(z) = asked {
            return z.parse().map_err(|_| bad("aggregate.unknown_time_zone").with_detail(z.to_string()));
        }
        if let Some(u) = actor.user_id {
            let q = kehu_db::Raw::new("SELECT time_zone FROM users WHERE id = $1", vec![u.into()]);
            if let Some(z) = self.db.one(&q).await?.and_then(|r| r.string(0)).and_then(|s| s.parse().ok()) {
                return Ok(z);
            }
        }
        self.org_time_zone().await
    }

    /// Titles of relation targets the actor may read (others stay unnamed).
    async fn titles(
        &self,
        actor: &Actor,
        schema: &kehu_core::meta::Schema,
        f: &FieldDef,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, String>> {
        let Some(target) = f.options.target.and_then(|t| schema.object_by_id(t)) else { return Ok(HashMap::new()) };
        let Ok(scope) = actor.check(target, Action::Read) else { return Ok(HashMap::new()) };
        let Some(tf) = target.title_field().filter(|tf| actor.can_read_field(target, tf)) else {
            return Ok(HashMap::new());
        };
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let mut q = kehu_db::records::select_in_scope(target, &scope);
            q.and_where(kehu_db::records::col("id").is_in(chunk.iter().copied()));
            for row in self.db.all(&q).await? {
                if let Some(rec) = kehu_db::records::decode(target, &row) {
                    if let kehu_core::value::Value::Text(t) = rec.get(&tf.api_name) {
                        out.insert(rec.id, t.clone());
                    }
                }
            }
        }
        Ok(out)
    }
}

fn clone_measure<'a>(m: &Measure<'a>) -> Measure<'a> {
    match m {
        Measure::Count => Measure::Count,
        Measure::CountDistinct(f) => Measure::CountDistinct(f),
        Measure::Sum(f) => Measure::Sum(f),
        Measure::Min(f) => Measure::Min(f),
        Measure::Max(f) => Measure::Max(f),
        Measure::Filled(f) => Measure::Filled(f),
    }
}

/// The database measures behind one requested measure.
fn db_measures(m: &M) -> Vec<Measure<'_>> {
    let Some(f) = m.field.as_deref() else { return vec![Measure::Count] };
    match m.op {
        Op::Count => vec![Measure::Count],
        Op::CountDistinct => vec![Measure::CountDistinct(f)],
        Op::Sum => vec![Measure::Sum(f)],
        Op::Avg => vec![Measure::Sum(f), Measure::Filled(f)],
        Op::Min => vec![Measure::Min(f)],
        Op::Max => vec![Measure::Max(f)],
        Op::EmptyShare => vec![Measure::Filled(f)],
    }
}

/// A measure's value from its database cells; `scale` formats sums of scaled numbers.
fn measure_value(m: &M, count: i64, cells: &[DbVal], scale: u8) -> Json {
    let int = |v: &DbVal| -> Option<i128> {
        match v {
            DbVal::Int(n) => Some(i128::from(*n)),
            DbVal::Text(s) => s.trim().split('.').next().and_then(|s| s.parse().ok()),
            DbVal::Real(x) => Some(*x as i128),
            _ => None,
        }
    };
    let scaled = |n: i128| -> Json {
        if scale == 0 {
            i64::try_from(n).map(|n| json!(n)).unwrap_or_else(|_| json!(n.to_string()))
        } else {
            i64::try_from(n).map(|n| json!(format_scaled(n, scale))).unwrap_or_else(|_| json!(n.to_string()))
        }
    };
    match m.op {
        Op::Count => json!(count),
        Op::CountDistinct => cells.first().and_then(int).map(|n| json!(n as i64)).unwrap_or(json!(0)),
        Op::Sum => cells.first().and_then(int).map(scaled).unwrap_or(Json::Null),
        Op::Avg => {
            let (Some(sum), Some(n)) = (cells.first().and_then(int), cells.get(1).and_then(int)) else {
                return Json::Null;
            };
            if n == 0 {
                return Json::Null;
            }
            json!(avg_text(sum, n, scale))
        }
        Op::Min | Op::Max => match cells.first() {
            Some(DbVal::Text(s)) => json!(s),
            Some(v) => int(v).map(scaled).unwrap_or(Json::Null),
            None => Json::Null,
        },
        Op::EmptyShare => {
            let filled = cells.first().and_then(int).unwrap_or(0);
            if count == 0 {
                return Json::Null;
            }
            let share = (count as f64 - filled as f64) / count as f64;
            json!((share * 10_000.0).round() / 10_000.0)
        }
    }
}

/// `sum / n` of values scaled by `scale` digits, as a decimal with `scale + 2` digits, rounded
/// half away from zero.
pub fn avg_text(sum: i128, n: i128, scale: u8) -> String {
    let digits = u32::from(scale) + 2;
    let num = sum * 100;
    let q = num / n;
    let r = num % n;
    let q = if (r.abs() * 2) >= n.abs() { q + num.signum() * n.signum() } else { q };
    let neg = q < 0;
    let a = q.unsigned_abs();
    let p = 10u128.pow(digits);
    let int = a / p;
    let frac = a % p;
    let s = format!("{int}.{frac:0width$}", width = digits as usize);
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if neg && s != "0" {
        format!("-{s}")
    } else {
        s
    }
}

fn db_key<'a>(k: &'a K, offsets: &'a [(i64, i64)], ws: i64, fs: i64, keep: Option<&Vec<Json>>) -> Key<'a> {
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

fn group_id(r: &DbRow, nk: usize) -> GroupId {
    (0..nk).map(|i| (Raw::of(r.val(2 * i)), r.i64(2 * i + 1).unwrap_or(0) == 1)).collect()
}

/// The zone's UTC offsets (microseconds) between two instants: `(until, offset)` ascending,
/// the last until `i64::MAX`. Transitions are found day by day, then to the second.
pub fn zone_offsets(tz: &chrono_tz::Tz, lo: i64, hi: i64) -> Vec<(i64, i64)> {
    let off = |t: i64| -> i64 {
        let secs = t.div_euclid(1_000_000);
        tz.offset_from_utc_datetime(&chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default().naive_utc())
            .fix()
            .local_minus_utc() as i64
            * 1_000_000
    };
    // Years 1900–2200 bound the walk (values beyond take the offset at the bound), so a
    // wild date costs no more than a few hundred thousand steps and cannot overflow.
    const FLOOR: i64 = -2_208_988_800_000_000;
    const CEIL: i64 = 7_258_118_400_000_000;
    let (lo, hi) = (lo.min(hi).clamp(FLOOR, CEIL) - DAY, lo.max(hi).clamp(FLOOR, CEIL) + DAY);
    let mut out = Vec::new();
    let mut cur = off(lo);
    let mut t = lo;
    while t < hi {
        let next = (t + DAY).min(hi);
        if off(next) != cur {
            // Binary search the first second with the new offset.
            let (mut a, mut b) = (t.div_euclid(1_000_000), next.div_euclid(1_000_000));
            while b - a > 1 {
                let mid = (a + b) / 2;
                if off(mid * 1_000_000) == cur {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            out.push((b * 1_000_000, cur));
            cur = off(b * 1_000_000);
        }
        t = next;
    }
    out.push((i64::MAX, cur));
    out
}

/// The first local day of a date key, and of the next one.
fn bucket_days(bucket: Bucket, key: i64, ws: i64, fs: i64) -> Option<(NaiveDate, NaiveDate)> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let month = |m: i64| NaiveDate::from_ymd_opt(m.div_euclid(12) as i32, (m.rem_euclid(12) + 1) as u32, 1);
    Some(match bucket {
        Bucket::Day => {
            let d = epoch + Duration::days(key);
            (d, d + Duration::days(1))
        }
        Bucket::Week => {
            let d = epoch + Duration::days(7 * key - 3 + ws);
            (d, d + Duration::days(7))
        }
        Bucket::Month => (month(key)?, month(key + 1)?),
        Bucket::Quarter => (month(3 * key + fs - 1)?, month(3 * key + fs + 2)?),
        Bucket::Year => (month(12 * key + fs - 1)?, month(12 * key + fs + 11)?),
    })
}

/// The first instant of a local day in the zone.
fn day_start(tz: &chrono_tz::Tz, d: NaiveDate) -> i64 {
    let mut t = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.timestamp_micros();
        }
        t += Duration::minutes(30);
    }
    t.and_utc().timestamp_micros()
}

fn bucket_label(bucket: Bucket, key: i64, start: NaiveDate, fs: i64) -> String {
    let fy = |y: i64| if fs == 1 { y.to_string() } else { format!("FY{y}") };
    match bucket {
        Bucket::Day | Bucket::Week => start.format("%Y-%m-%d").to_string(),
        Bucket::Month => start.format("%Y-%m").to_string(),
        Bucket::Quarter => format!("{} Q{}", fy(key.div_euclid(4)), key.rem_euclid(4) + 1),
        Bucket::Year => fy(key),
    }
}

/// A group's key as shown, and the conditions that list its records (`None`: not listable).
#[allow(clippy::too_many_arguments)]
fn key_value(
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

fn choice_label(f: &FieldDef, key: &str, lang: &str) -> String {
    f.options
        .choices
        .iter()
        .find(|c| c.key == key)
        .map(|c| c.label.get(lang).to_string())
        .unwrap_or_else(|| key.to_string())
}

/// The sort rank of a group's key: option order for selects, false before true, time order
/// for dates, most records first for the rest; empty and "other" last.
fn rank(k: &K, kv: &KeyValue, count: i64) -> (u8, i64, String) {
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
