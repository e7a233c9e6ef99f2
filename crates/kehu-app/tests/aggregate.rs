//! Aggregation against a ground truth computed here from the records themselves (read through
//! the list, page by page), on random data of a custom object: every measure, select, boolean,
//! user, relation and tags keys, two keys, every date bucket of a datetime in two time zones
//! (values clustered around local midnight and the New York DST changes) and of a date, with a
//! Sunday week and an April fiscal year; as an administrator, a manager and a rep (scope); a
//! capped key's "other" group; every group's filter lists exactly its count of records; an
//! unreadable field refused; bad requests refused with their own codes.

use crate::support::*;
use chrono::{Datelike, NaiveDate, TimeZone};
use kehu_app::metadata::{NewField, NewObject};
use kehu_app::records::aggregate::{avg_text, Aggregate, AggregateRequest, GroupBy, MeasureSpec};
use kehu_app::ListRequest;
use kehu_core::meta::{FieldType, Label};
use kehu_core::perm::Actor;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

fn field(api: &str, t: FieldType, extra: Json) -> NewField {
    let mut base = json!({"api_name": api, "type": t.as_str(), "label": {"en": api, "zh-CN": api}, "filterable": true});
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    serde_json::from_value(base).expect("field json")
}

fn req(keys: &[(&str, Option<&str>)], measures: &[(&str, Option<&str>)]) -> AggregateRequest {
    AggregateRequest {
        group_by: keys.iter().map(|(f, b)| GroupBy { field: f.to_string(), bucket: b.map(str::to_owned) }).collect(),
        measures: measures
            .iter()
            .map(|(op, f)| MeasureSpec { op: op.to_string(), field: f.map(str::to_owned) })
            .collect(),
        ..Default::default()
    }
}

/// Every record of `deal` the actor may read, through the list (the ground truth's rows).
async fn rows(t: &TestApp, actor: &Actor) -> Vec<serde_json::Map<String, Json>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let r = ListRequest { limit: Some(200), cursor: cursor.clone(), ..Default::default() };
        let page = t.list(actor, "deal", &r).await.unwrap();
        out.extend(page.records.into_iter().map(|r| r.fields));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// Every group's filter lists exactly its count of records (the first measure is a count).
async fn reconciles(t: &TestApp, actor: &Actor, a: &Aggregate) {
    for g in &a.groups {
        if let Some(f) = &g.filter {
            let n = t.count(actor, "deal", Some(f)).await.unwrap();
            assert_eq!(json!(n), g.values[0], "group {:?} with filter {f}", g.keys);
        }
    }
    let n = t.count(actor, "deal", a.total.filter.as_ref()).await.unwrap();
    assert_eq!(json!(n), a.total.values[0]);
}

/// Groups as `key label or value → values`.
fn by_key(a: &Aggregate) -> BTreeMap<String, Vec<Json>> {
    a.groups
        .iter()
        .map(|g| {
            let k: Vec<String> = g
                .keys
                .iter()
                .map(|k| {
                    if k.other {
                        "<other>".into()
                    } else if k.empty {
                        "<empty>".into()
                    } else {
                        k.value.as_str().map(str::to_owned).unwrap_or_else(|| k.value.to_string())
                    }
                })
                .collect();
            (k.join("|"), g.values.clone())
        })
        .collect()
}

fn s(v: &Json) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// The bucket start (as the aggregation names it) of a local date.
fn bucket_start(d: NaiveDate, bucket: &str, ws: u32, fs: u32) -> String {
    let start = match bucket {
        "day" => d,
        "week" => {
            let back = (d.weekday().num_days_from_monday() + 7 - ws) % 7;
            d - chrono::Duration::days(back as i64)
        }
        "month" => d.with_day(1).unwrap(),
        _ => {
            let months = d.year() * 12 + d.month0() as i32 - (fs as i32 - 1);
            let span = if bucket == "quarter" { 3 } else { 12 };
            let m = months.div_euclid(span) * span + (fs as i32 - 1);
            NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1).unwrap()
        }
    };
    start.to_string()
}

async fn setup(t: &TestApp) -> (Org, Vec<kehu_core::Uuid>) {
    let o = org(t).await;
    let a = system();
    let deal = NewObject {
        api_name: "deal".into(),
        label: Label::new("Deal", "商机"),
        plural: Label::new("Deals", "商机"),
        icon: None,
    };
    t.create_object(&a, deal).await.unwrap();
    let choices = json!({"options": {"choices": [
        {"key": "lead", "label": {"en": "Lead", "zh-CN": "线索"}, "color": "gray"},
        {"key": "quote", "label": {"en": "Quote", "zh-CN": "报价"}, "color": "blue"},
        {"key": "won", "label": {"en": "Won", "zh-CN": "成交"}, "color": "green"}]}});
    for (api, ty, extra) in [
        ("stage", FieldType::Select, choices),
        ("amount", FieldType::Currency, json!({})),
        ("qty", FieldType::Integer, json!({})),
        ("prob", FieldType::Percent, json!({})),
        ("closed_at", FieldType::DateTime, json!({})),
        ("close_date", FieldType::Date, json!({})),
        ("labels", FieldType::Tags, json!({})),
        ("hot", FieldType::Boolean, json!({})),
        ("rep", FieldType::User, json!({})),
        ("company", FieldType::Relation, json!({"target_object": "company"})),
    ] {
        t.add_field(&a, "deal", field(api, ty, extra)).await.unwrap();
    }
    let mut companies = Vec::new();
    for i in 0..6 {
        let owner = if i < 3 { o.rep_east1.user_id } else { o.rep_north.user_id };
        let c = t.create(&a, "company", &obj(json!({"name": format!("客户 {i}"), "owner": owner}))).await.unwrap();
        companies.push(c.id);
    }
    let owners = [o.rep_east1.user_id.unwrap(), o.rep_east2.user_id.unwrap(), o.rep_north.user_id.unwrap()];
    let reps = [owners[0], owners[1], owners[2], o.manager_sales.user_id.unwrap()];
    let mut rng = SmallRng::seed_from_u64(20261208);
    // Instants around midnight in Shanghai (16:00 UTC) and New York, and across the 2026 US
    // DST changes (8 March, 1 November), from 2025 to 2027.
    let anchors = [
        chrono::Utc.with_ymd_and_hms(2025, 12, 31, 16, 0, 0).unwrap(),
        chrono::Utc.with_ymd_and_hms(2026, 3, 8, 5, 0, 0).unwrap(),
        chrono::Utc.with_ymd_and_hms(2026, 3, 31, 16, 0, 0).unwrap(),
        chrono::Utc.with_ymd_and_hms(2026, 11, 1, 4, 0, 0).unwrap(),
        chrono::Utc.with_ymd_and_hms(2026, 6, 28, 4, 0, 0).unwrap(),
        chrono::Utc.with_ymd_and_hms(2027, 1, 3, 16, 0, 0).unwrap(),
    ];
    let mut inputs = Vec::new();
    for i in 0..360 {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!(format!("商机 {i}")));
        m.insert("owner".into(), json!(owners[rng.gen_range(0..3)]));
        if rng.gen_bool(0.9) {
            m.insert("stage".into(), json!(["lead", "quote", "won"][rng.gen_range(0..3)]));
        }
        if rng.gen_bool(0.8) {
            let cur = ["CNY", "CNY", "USD", "JPY"][rng.gen_range(0..4)];
            let amount = if cur == "JPY" {
                format!("{}", rng.gen_range(0..900000))
            } else {
                format!("{}.{:02}", rng.gen_range(0..90000), rng.gen_range(0..100))
            };
            m.insert("amount".into(), json!({"amount": amount, "currency": cur}));
        }
        if rng.gen_bool(0.85) {
            m.insert("qty".into(), json!(rng.gen_range(-50..500)));
        }
        if rng.gen_bool(0.7) {
            m.insert("prob".into(), json!(format!("{}.{}", rng.gen_range(0..100), rng.gen_range(0..100))));
        }
        if rng.gen_bool(0.9) {
            let base = anchors[rng.gen_range(0..anchors.len())];
            let at = base + chrono::Duration::seconds(rng.gen_range(-5400..5400));
            m.insert("closed_at".into(), json!(at.to_rfc3339()));
        }
        if rng.gen_bool(0.8) {
            let d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(rng.gen_range(-40..400));
            m.insert("close_date".into(), json!(d.to_string()));
        }
        let tags: Vec<&str> = ["重点", "续约", "vip", "渠道"].into_iter().filter(|_| rng.gen_bool(0.3)).collect();
        if !tags.is_empty() {
            m.insert("labels".into(), json!(tags));
        }
        if rng.gen_bool(0.8) {
            m.insert("hot".into(), json!(rng.gen_bool(0.5)));
        }
        if rng.gen_bool(0.9) {
            m.insert("rep".into(), json!(reps[rng.gen_range(0..reps.len())]));
        }
        if rng.gen_bool(0.9) {
            m.insert("company".into(), json!(companies[rng.gen_range(0..companies.len())]));
        }
        inputs.push(m);
    }
    for chunk in inputs.chunks(120) {
        t.create_many(&a, "deal", chunk).await.unwrap();
    }
    (o, companies)
}

/// Ground truth of measures over a set of rows.
struct Truth<'a>(Vec<&'a serde_json::Map<String, Json>>);

impl Truth<'_> {
    fn count(&self) -> Json {
        json!(self.0.len())
    }
    fn ints(&self, f: &str) -> Vec<i128> {
        self.0.iter().filter_map(|r| r.get(f).and_then(Json::as_i64)).map(i128::from).collect()
    }
    fn sum(&self, f: &str) -> Json {
        let v = self.ints(f);
        if v.is_empty() {
            Json::Null
        } else {
            json!(v.iter().sum::<i128>() as i64)
        }
    }
    fn avg(&self, f: &str) -> Json {
        let v = self.ints(f);
        if v.is_empty() {
            Json::Null
        } else {
            json!(avg_text(v.iter().sum(), v.len() as i128, 0))
        }
    }
    fn min(&self, f: &str) -> Json {
        self.ints(f).into_iter().min().map(|n| json!(n as i64)).unwrap_or(Json::Null)
    }
    fn max(&self, f: &str) -> Json {
        self.ints(f).into_iter().max().map(|n| json!(n as i64)).unwrap_or(Json::Null)
    }
    fn distinct(&self, f: &str) -> Json {
        let mut v: Vec<String> = self.0.iter().filter_map(|r| r.get(f).and_then(s)).collect();
        v.sort();
        v.dedup();
        json!(v.len())
    }
    fn empty_share(&self, f: &str) -> Json {
        if self.0.is_empty() {
            return Json::Null;
        }
        let empty = self.0.iter().filter(|r| r.get(f).is_none_or(Json::is_null)).count() as f64;
        json!((empty / self.0.len() as f64 * 10_000.0).round() / 10_000.0)
    }
    /// Percent sums, as the scaled decimal text (scale 2).
    fn sum_pct(&self) -> Json {
        let v: Vec<i128> = self
            .0
            .iter()
            .filter_map(|r| r.get("prob").and_then(s))
            .map(|p| (kehu_core::value::parse_scaled(&p, 2).unwrap()) as i128)
            .collect();
        if v.is_empty() {
            return Json::Null;
        }
        json!(kehu_core::value::format_scaled(v.iter().sum::<i128>() as i64, 2))
    }
    /// Money per currency: sums in minor units, formatted.
    fn money(&self) -> Json {
        let mut by: BTreeMap<String, i64> = BTreeMap::new();
        for r in &self.0 {
            if let Some(m) = r.get("amount").filter(|m| !m.is_null()) {
                let cur = m["currency"].as_str().unwrap().to_string();
                let d = kehu_core::value::currency_digits(&cur);
                *by.entry(cur).or_default() +=
                    kehu_core::value::parse_scaled(m["amount"].as_str().unwrap(), d).unwrap();
            }
        }
        json!(by
            .into_iter()
            .map(|(c, n)| (c.clone(), json!(kehu_core::value::format_scaled(n, kehu_core::value::currency_digits(&c)))))
            .collect::<serde_json::Map<_, _>>())
    }
}

async fn matches_ground_truth(t: TestApp) {
    let (o, _) = setup(&t).await;
    for actor in [&o.admin, &o.manager_sales, &o.rep_east1] {
        let all = rows(&t, actor).await;
        assert!(all.len() > 50, "enough rows for {:?}", actor.user_id);

        // Every measure by stage (select, option order, empty last).
        let r = req(
            &[("stage", None)],
            &[
                ("count", None),
                ("sum", Some("qty")),
                ("avg", Some("qty")),
                ("min", Some("qty")),
                ("max", Some("qty")),
                ("count_distinct", Some("company")),
                ("empty_share", Some("close_date")),
                ("sum", Some("amount")),
                ("sum", Some("prob")),
            ],
        );
        let a = t.aggregate(actor, "deal", &r, "zh-CN").await.unwrap();
        let order: Vec<String> = a.groups.iter().map(|g| g.keys[0].label.clone()).collect();
        assert_eq!(order, ["线索", "报价", "成交", ""], "option order, empty last");
        for g in &a.groups {
            let key = g.keys[0].value.as_str().map(str::to_owned);
            let truth = Truth(all.iter().filter(|r| r.get("stage").and_then(s) == key).collect());
            let want = vec![
                truth.count(),
                truth.sum("qty"),
                truth.avg("qty"),
                truth.min("qty"),
                truth.max("qty"),
                truth.distinct("company"),
                truth.empty_share("close_date"),
                truth.money(),
                truth.sum_pct(),
            ];
            assert_eq!(g.values, want, "stage {key:?}");
        }
        let everyone = Truth(all.iter().collect());
        assert_eq!(a.total.values[0], everyone.count());
        assert_eq!(a.total.values[7], everyone.money());
        reconciles(&t, actor, &a).await;

        // Date buckets of a datetime, in two zones, Sunday weeks, an April fiscal year.
        for zone in ["Asia/Shanghai", "America/New_York"] {
            let tz: chrono_tz::Tz = zone.parse().unwrap();
            for bucket in ["day", "week", "month", "quarter", "year"] {
                let mut r = req(&[("closed_at", Some(bucket))], &[("count", None), ("sum", Some("qty"))]);
                r.time_zone = Some(zone.into());
                r.week_start = Some("sunday".into());
                r.fiscal_year_start = Some(4);
                let a = t.aggregate(actor, "deal", &r, "en").await.unwrap();
                let mut want: BTreeMap<String, Vec<&serde_json::Map<String, Json>>> = BTreeMap::new();
                for row in &all {
                    let key = match row.get("closed_at").and_then(s) {
                        Some(at) => {
                            let utc = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
                            bucket_start(utc.with_timezone(&tz).date_naive(), bucket, 6, 4)
                        }
                        None => "<empty>".into(),
                    };
                    want.entry(key).or_default().push(row);
                }
                let want: BTreeMap<String, Vec<Json>> = want
                    .into_iter()
                    .map(|(k, rs)| {
                        let tr = Truth(rs);
                        (k, vec![tr.count(), tr.sum("qty")])
                    })
                    .collect();
                assert_eq!(by_key(&a), want, "{zone} {bucket}");
                reconciles(&t, actor, &a).await;
            }
        }

        // A date field by month and by quarter (fiscal April).
        for bucket in ["month", "quarter"] {
            let mut r = req(&[("close_date", Some(bucket))], &[("count", None)]);
            r.fiscal_year_start = Some(4);
            let a = t.aggregate(actor, "deal", &r, "en").await.unwrap();
            let mut want: BTreeMap<String, Vec<Json>> = BTreeMap::new();
            for row in &all {
                let key = match row.get("close_date").and_then(s) {
                    Some(d) => bucket_start(d.parse().unwrap(), bucket, 0, 4),
                    None => "<empty>".into(),
                };
                let e = want.entry(key).or_insert_with(|| vec![json!(0)]);
                e[0] = json!(e[0].as_i64().unwrap() + 1);
            }
            assert_eq!(by_key(&a), want, "close_date {bucket}");
            if bucket == "quarter" {
                assert!(a.groups.iter().any(|g| g.keys[0].label == "FY2025 Q4"), "fiscal labels");
            }
            reconciles(&t, actor, &a).await;
        }

        // Tags: a record counts once per tag; untagged records are the empty group.
        let a = t.aggregate(actor, "deal", &req(&[("labels", None)], &[("count", None)]), "en").await.unwrap();
        let mut want: BTreeMap<String, Vec<Json>> = BTreeMap::new();
        for row in &all {
            let tags: Vec<String> = row
                .get("labels")
                .and_then(Json::as_array)
                .map(|a| a.iter().filter_map(s).collect())
                .unwrap_or_default();
            let keys = if tags.is_empty() { vec!["<empty>".to_string()] } else { tags };
            for k in keys {
                let e = want.entry(k).or_insert_with(|| vec![json!(0)]);
                e[0] = json!(e[0].as_i64().unwrap() + 1);
            }
        }
        assert_eq!(by_key(&a), want, "tags");
        reconciles(&t, actor, &a).await;

        // Two keys: stage × hot (boolean), and user × relation with names.
        let a = t
            .aggregate(actor, "deal", &req(&[("stage", None), ("hot", None)], &[("count", None)]), "en")
            .await
            .unwrap();
        let mut want: BTreeMap<String, Vec<Json>> = BTreeMap::new();
        for row in &all {
            let st = row.get("stage").and_then(s).unwrap_or("<empty>".into());
            let hot = row.get("hot").and_then(Json::as_bool).map(|b| b.to_string()).unwrap_or("<empty>".into());
            let e = want.entry(format!("{st}|{hot}")).or_insert_with(|| vec![json!(0)]);
            e[0] = json!(e[0].as_i64().unwrap() + 1);
        }
        assert_eq!(by_key(&a), want, "stage × hot");
        reconciles(&t, actor, &a).await;
        let a = t
            .aggregate(actor, "deal", &req(&[("rep", None), ("company", None)], &[("count", None)]), "en")
            .await
            .unwrap();
        assert_eq!(a.groups.iter().map(|g| g.values[0].as_i64().unwrap()).sum::<i64>(), all.len() as i64);
        // A company is named when the actor may read it, and only then.
        for g in a.groups.iter().filter(|g| !g.keys[1].empty) {
            let id: kehu_core::Uuid = g.keys[1].value.as_str().unwrap().parse().unwrap();
            let readable = t.get(actor, "company", id).await.ok().map(|c| c.get("name").as_str().unwrap().to_string());
            assert_eq!(Some(g.keys[1].label.clone()).filter(|l| !l.is_empty()), readable);
        }
        assert!(a.groups.iter().filter(|g| !g.keys[0].empty).all(|g| g.keys[0].label.ends_with("@kehu.test")));
        reconciles(&t, actor, &a).await;

        // A capped key: two values kept, the rest one "other" group whose filter lists them.
        let mut r = req(&[("rep", None)], &[("count", None)]);
        r.limit = Some(2);
        let a = t.aggregate(actor, "deal", &r, "en").await.unwrap();
        assert!(a.capped);
        let named = a.groups.iter().filter(|g| !g.keys[0].other && !g.keys[0].empty).count();
        assert_eq!(named, 2);
        let other = a.groups.iter().find(|g| g.keys[0].other).expect("an other group");
        assert!(other.values[0].as_i64().unwrap() > 0);
        assert_eq!(a.groups.iter().map(|g| g.values[0].as_i64().unwrap()).sum::<i64>(), all.len() as i64);
        reconciles(&t, actor, &a).await;
    }

    // A rep sees only their records: the totals differ from the manager's.
    let rep = t.aggregate(&o.rep_east1, "deal", &req(&[], &[("count", None)]), "en").await.unwrap();
    let mgr = t.aggregate(&o.manager_sales, "deal", &req(&[], &[("count", None)]), "en").await.unwrap();
    assert!(rep.total.values[0].as_i64() < mgr.total.values[0].as_i64());
}
both!(matches_ground_truth);

async fn refuses_bad_requests(t: TestApp) {
    let (o, _) = setup(&t).await;
    let a = &o.admin;
    // The error's code, or its field's (a bad `limit` names the field).
    let code = |r: Result<Aggregate, kehu_core::AppError>| {
        let e = r.unwrap_err();
        e.fields.first().map(|f| f.code.clone()).unwrap_or(e.code)
    };
    let k = |keys: &[(&str, Option<&str>)]| req(keys, &[]);
    assert_eq!(code(t.aggregate(a, "deal", &k(&[("nope", None)]), "en").await), "aggregate.unknown_field");
    assert_eq!(
        code(t.aggregate(a, "deal", &k(&[("stage", None), ("hot", None), ("rep", None)]), "en").await),
        "aggregate.too_many_keys"
    );
    assert_eq!(code(t.aggregate(a, "deal", &k(&[("stage", Some("month"))]), "en").await), "aggregate.bucket_not_date");
    assert_eq!(
        code(t.aggregate(a, "deal", &k(&[("closed_at", Some("fortnight"))]), "en").await),
        "aggregate.unknown_bucket"
    );
    assert_eq!(
        code(t.aggregate(a, "deal", &req(&[], &[("sum", Some("name"))]), "en").await),
        "aggregate.measure_not_supported"
    );
    assert_eq!(
        code(t.aggregate(a, "deal", &req(&[], &[("median", Some("qty"))]), "en").await),
        "aggregate.unknown_measure"
    );
    assert_eq!(code(t.aggregate(a, "deal", &req(&[], &[("sum", None)]), "en").await), "aggregate.measure_field");
    let mut r = k(&[("rep", None)]);
    r.limit = Some(1_000_000);
    assert_eq!(code(t.aggregate(a, "deal", &r, "en").await), "aggregate.invalid_limit");
    let mut r = k(&[]);
    r.time_zone = Some("Mars/Olympus".into());
    assert_eq!(code(t.aggregate(a, "deal", &r, "en").await), "aggregate.unknown_time_zone");
    let mut r = k(&[]);
    r.fiscal_year_start = Some(13);
    assert_eq!(code(t.aggregate(a, "deal", &r, "en").await), "aggregate.invalid_fiscal_start");
    let mut r = k(&[]);
    r.filter = Some(json!({"field": "nope", "op": "eq", "value": 1}));
    assert_eq!(code(t.aggregate(a, "deal", &r, "en").await), "filter.unknown_field");
    assert_eq!(code(t.aggregate(a, "nothing", &k(&[]), "en").await), "object.not_found");

    // Dates far from now bucket without trouble.
    for at in ["9999-12-31T23:00:00Z", "1000-01-01T00:00:00Z"] {
        t.create(&system(), "deal", &obj(json!({"name": "远期", "closed_at": at}))).await.unwrap();
    }
    let mut r = k(&[("closed_at", Some("year"))]);
    r.time_zone = Some("America/New_York".into());
    let years = t.aggregate(a, "deal", &r, "en").await.unwrap();
    let labels: Vec<_> = years.groups.iter().map(|g| g.keys[0].label.clone()).collect();
    // 1000-01-01 00:00 UTC is still 999 in New York.
    assert!(labels.contains(&"9999".to_string()) && labels.contains(&"999".to_string()), "{labels:?}");
    // A field the role may not read can be neither a key nor a measure.
    let mut grants = o.rep_east1.role.grants.clone();
    grants.fields.insert("deal.amount".into(), kehu_core::perm::FieldPerm { read: false, write: false });
    grants.fields.insert("deal.stage".into(), kehu_core::perm::FieldPerm { read: false, write: false });
    t.set_role_grants("sales_rep", &grants).await.unwrap();
    let rep = t.actor(o.rep_east1.user_id.unwrap()).await.unwrap();
    assert_eq!(
        code(t.aggregate(&rep, "deal", &req(&[], &[("sum", Some("amount"))]), "en").await),
        "aggregate.field_not_readable"
    );
    assert_eq!(code(t.aggregate(&rep, "deal", &k(&[("stage", None)]), "en").await), "aggregate.field_not_readable");
    assert!(t.aggregate(&rep, "deal", &k(&[("hot", None)]), "en").await.is_ok());
}
both!(refuses_bad_requests);
