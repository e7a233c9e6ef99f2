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
pub async fn run(app: &App, actor: &Actor, rep: Option<&Actor>, iterations: usize) -> Result<Vec<Stat>> {
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
