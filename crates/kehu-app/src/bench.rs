//! `kehu bench`: latency of the engine's hot paths on the current database (normally the
//! `kehu demo` data set), as p50/p95/p99 in milliseconds of server time. Figures are printed,
//! never asserted.

use crate::records::{Count, ListRequest};
use crate::{App, Result};
use kehu_core::perm::Actor;
use kehu_core::{AppError, Uuid};
use kehu_db::Raw;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::time::Instant;

/// Latency figures of one operation.
#[derive(Debug, Clone)]
pub struct Stat {
    pub name: String,
    pub runs: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn stat(name: &str, mut samples: Vec<f64>) -> Stat {
    samples.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| samples.get(((samples.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    Stat { name: name.into(), runs: samples.len(), p50_ms: q(0.50), p95_ms: q(0.95), p99_ms: q(0.99), max_ms: q(1.0) }
}

/// Sample up to `n` contact ids, emails and phones spread over the table.
async fn sample(app: &App, n: usize, rng: &mut SmallRng) -> Result<Vec<(Uuid, String, String)>> {
    let total =
        app.db.one(&Raw::new("SELECT COUNT(*) FROM o_contact", vec![])).await?.and_then(|r| r.i64(0)).unwrap_or(0);
    if total == 0 {
        return Err(AppError::invalid("bench.no_data").with_detail("run `kehu demo --contacts N` first"));
    }
    let mut out = Vec::new();
    for _ in 0..(n / 50).max(1) {
        let off = rng.gen_range(0..total.max(1));
        let q = Raw::new(
            "SELECT id, f_email, f_phone FROM o_contact WHERE f_email IS NOT NULL AND f_phone IS NOT NULL LIMIT 50 OFFSET $1",
            vec![off.min((total - 50).max(0)).into()],
        );
        for r in app.db.all(&q).await? {
            if let (Some(id), Some(e), Some(p)) = (r.uuid(0), r.string(1), r.string(2)) {
                out.push((id, e, p));
            }
        }
    }
    Ok(out)
}

/// Run every benchmark `iterations` times; `actor` should be an admin (all records) and
/// `rep` a sales rep (own records) to measure the scoped path too.
pub async fn run(
    app: &App,
    actor: &Actor,
    rep: Option<&Actor>,
    manager: Option<&Actor>,
    iterations: usize,
) -> Result<Vec<Stat>> {
    let mut rng = SmallRng::seed_from_u64(7);
    let samples = sample(app, 1000, &mut rng).await?;
    if samples.is_empty() {
        return Err(AppError::invalid("bench.no_data").with_detail("no contacts with e-mail and phone"));
    }
    let mut stats = Vec::new();
    let time = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;

    let mut s = Vec::new();
    for _ in 0..iterations {
        let (id, _, _) = &samples[rng.gen_range(0..samples.len())];
        let t = Instant::now();
        app.get(actor, "contact", *id).await?;
        s.push(time(t));
    }
    stats.push(stat("get by id", s));

    let list_req = |rng: &mut SmallRng, count: Count| {
        let (city, _) = crate::demo::CITIES[rng.gen_range(0..crate::demo::CITIES.len())];
        ListRequest {
            filter: Some(json!({"and": [
                {"field": "city", "op": "eq", "value": city},
                {"field": "lifecycle_stage", "op": "in", "value": ["prospect", "customer"]}]})),
            sort: Some(json!("-updated_at")),
            limit: Some(50),
            count,
            ..Default::default()
        }
    };
    for (name, who, count) in
        [("list 50 filtered+sorted", actor, Count::None), ("list 50 + capped count", actor, Count::Capped)]
            .into_iter()
            .chain(rep.map(|r| ("list 50 as rep (own scope)", r, Count::None)))
    {
        let mut s = Vec::new();
        for _ in 0..iterations {
            let req = list_req(&mut rng, count);
            let t = Instant::now();
            app.list(who, "contact", &req).await?;
            s.push(time(t));
        }
        stats.push(stat(name, s));
    }

    // Search: Chinese names, phone suffixes and e-mail fragments, each on its own.
    let names = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "欧阳", "建华"];
    for kind in 0..3 {
        let mut s = Vec::new();
        for _ in 0..iterations {
            let (_, email, phone) = &samples[rng.gen_range(0..samples.len())];
            let q = match kind {
                0 => names[rng.gen_range(0..names.len())].to_string(),
                1 => phone[phone.len().saturating_sub(4)..].to_string(),
                _ => email.split('@').next().unwrap_or("").chars().take(6).collect(),
            };
            let t = Instant::now();
            app.search(actor, &q, None, 20).await?;
            s.push(time(t));
        }
        stats.push(stat(["search: Chinese name", "search: phone last 4", "search: e-mail prefix"][kind], s));
    }

    // Search by role: a full mobile number, its last four digits and a pinyin name, as the
    // administrator, a manager (team scope) and a rep (own scope).
    for (role, who) in [("admin", Some(actor)), ("manager", manager), ("rep", rep)] {
        let Some(who) = who else { continue };
        for kind in 0..3 {
            let mut s = Vec::new();
            for _ in 0..iterations {
                let (_, _, phone) = &samples[rng.gen_range(0..samples.len())];
                let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
                let q = match kind {
                    0 => digits[digits.len().saturating_sub(11)..].to_string(),
                    1 => digits[digits.len().saturating_sub(4)..].to_string(),
                    _ => ["zhangwei", "wangfang", "lina", "liuyang", "chenjing", "zw", "wf", "ln"][rng.gen_range(0..8)]
                        .into(),
                };
                let t = Instant::now();
                app.search(who, &q, None, 20).await?;
                s.push(time(t));
            }
            let what = ["full mobile", "last 4", "pinyin"][kind];
            stats.push(stat(&format!("search {what} as {role}"), s));
        }
    }

    // Aggregation: contacts by lifecycle stage × month of creation; a board of the lifecycle
    // stages (counts per column and the first 20 cards of the first five columns).
    let agg = crate::records::aggregate::AggregateRequest {
        group_by: vec![
            crate::records::aggregate::GroupBy { field: "lifecycle_stage".into(), bucket: None },
            crate::records::aggregate::GroupBy { field: "created_at".into(), bucket: Some("month".into()) },
        ],
        ..Default::default()
    };
    let mut s = Vec::new();
    for _ in 0..iterations.clamp(1, 20) {
        let t = Instant::now();
        app.aggregate(actor, "contact", &agg, "zh-CN").await?;
        s.push(time(t));
    }
    stats.push(stat("aggregate stage × month", s));
    let by_stage = crate::records::aggregate::AggregateRequest {
        group_by: vec![crate::records::aggregate::GroupBy { field: "lifecycle_stage".into(), bucket: None }],
        ..Default::default()
    };
    for (role, who) in [("admin", Some(actor)), ("rep", rep)] {
        let Some(who) = who else { continue };
        let mut s = Vec::new();
        for _ in 0..iterations.clamp(1, 20) {
            let t = Instant::now();
            let a = app.aggregate(who, "contact", &by_stage, "zh-CN").await?;
            for g in a.groups.iter().filter(|g| !g.keys[0].empty).take(5) {
                let req = ListRequest {
                    filter: g.filter.clone(),
                    sort: Some(json!("-updated_at")),
                    limit: Some(20),
                    ..Default::default()
                };
                app.list(who, "contact", &req).await?;
            }
            s.push(time(t));
        }
        stats.push(stat(&format!("board 5 columns as {role}"), s));
    }

    let mut s = Vec::new();
    for i in 0..iterations.min(2000) {
        let input = json!({"name": format!("基准测试{i}"), "email": format!("bench{i}.{}@bench.kehu", Uuid::now_v7().simple()), "phone": "13800001111", "city": "上海"});
        let input = input.as_object().cloned().unwrap_or_default();
        let t = Instant::now();
        app.create(actor, "contact", &input).await?;
        s.push(time(t));
    }
    stats.push(stat("create", s));
    Ok(stats)
}
