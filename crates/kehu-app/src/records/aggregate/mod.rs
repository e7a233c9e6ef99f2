//! Aggregation for every object: measures over the records a list shows (same filter, same
//! scope, readable fields only), grouped by up to two keys — a select, multi-select or tags
//! field, a boolean, a user, a relation (named by its target's title), or a date bucket in the
//! viewer's time zone with a chosen week start and fiscal-year start. Currency is summed per
//! currency. Users, relations and tags are capped at `limit` values with an "other" group.
//! Every group carries the filter that lists its records, so a total reconciles with the list
//! it opens (the "other" group of a multi-value key excepted: no list filter says "has a value
//! outside these", so it carries none).

mod buckets;
mod keys;
mod measures;

pub use buckets::zone_offsets;
pub use measures::avg_text;

use crate::{App, Result};
use buckets::{parse_bucket, week_start};
use kehu_core::filter::{self, ResolveCtx};
use kehu_core::meta::{FieldDef, FieldType};
use kehu_core::perm::{Action, Actor};
use kehu_core::value::{currency_digits, format_datetime};
use kehu_core::{AppError, Uuid};
use kehu_db::aggregate::{aggregate_query, AggSpec, Key, Measure};
use kehu_db::DbVal;
use keys::{db_key, group_id, key_value, rank, GroupId, KeyKind, PerCurrency, Raw, K};
use measures::{db_measures, measure_value, Op, M};
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

fn bad(code: &'static str) -> AppError {
    AppError::invalid(code)
}

fn numeric(t: FieldType) -> bool {
    matches!(t, FieldType::Integer | FieldType::Decimal | FieldType::Percent | FieldType::Currency)
}

fn dated(t: FieldType) -> bool {
    matches!(t, FieldType::Date | FieldType::DateTime)
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
            // Counts come from the first column; money has its own queries.
            .filter(|(_, m)| m.op != Op::Count && m.field.as_ref().is_none_or(|f| f.ftype != FieldType::Currency))
            .flat_map(|(i, m)| db_measures(m).into_iter().map(move |x| (i, x)))
            .collect();
        let mut db_ms: Vec<Measure> = vec![Measure::Count];
        db_ms.extend(plain.iter().map(|(_, m)| *m));
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
