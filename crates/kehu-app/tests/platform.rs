//! The module platform (issue #14): the write core with behaviours (merge and purge included),
//! background jobs (lease, fencing token, backoff), schedules, outbox consumers, reminders,
//! the mail lease, and webhooks against a local receiver.

use crate::support::*;
use kehu_app::jobs::Lease;
use kehu_app::records::behaviour::{Behaviour, ChangeKind, Written};
use kehu_app::webhooks::EndpointInput;
use kehu_app::work::{BoxFut, Every, Schedule};
use kehu_core::Uuid;
use kehu_db::Raw;
use serde_json::{json, Value as Json};
use std::sync::{Arc, Mutex, OnceLock};

/// A behaviour that writes down every change of a contact it sees (kind, id, company).
struct Watch;

type Seen = Mutex<Vec<(ChangeKind, Uuid, Option<String>)>>;

fn seen() -> &'static Seen {
    static S: OnceLock<Seen> = OnceLock::new();
    S.get_or_init(Default::default)
}

impl Behaviour for Watch {
    fn after<'a>(
        &'a self,
        _app: &'a kehu_app::App,
        _tx: &'a mut kehu_db::Tx,
        w: &'a Written<'a>,
    ) -> BoxFut<'a, kehu_app::Result<()>> {
        let company = w.new.iter().find(|(f, _)| f.api_name == "company").and_then(|(_, v)| match v {
            kehu_core::value::Value::Ref(id) => Some(id.to_string()),
            _ => None,
        });
        seen().lock().unwrap().push((w.kind, w.id, company));
        Box::pin(async { Ok(()) })
    }
}

fn watch() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| kehu_app::modules::extend_behaviours("contact", Arc::new(Watch)));
}

fn seen_for(id: Uuid) -> Vec<(ChangeKind, Option<String>)> {
    seen().lock().unwrap().iter().filter(|(_, i, _)| *i == id).map(|(k, _, c)| (*k, c.clone())).collect()
}

async fn rows(t: &TestApp, sql: &str, id: Uuid) -> Vec<Vec<Option<String>>> {
    let rs = t.db.all(&Raw::new(sql, vec![id.into()])).await.unwrap();
    rs.iter().map(|r| (0..r.len()).map(|i| r.string(i).or_else(|| r.i64(i).map(|n| n.to_string()))).collect()).collect()
}

/// Every `record.updated` event of a record: its payload.
async fn updated_events(t: &TestApp, id: Uuid) -> Vec<Json> {
    let evs = kehu_db::journal::pending_events(&t.db, 10_000).await.unwrap();
    evs.into_iter().filter(|e| e.record_id == Some(id) && e.event == "record.updated").map(|e| e.payload).collect()
}

async fn merge_and_purge_go_through_the_write_core(t: TestApp) {
    watch();
    let a = &system();
    let keep = t.create(a, "company", &obj(json!({"name": "华夏科技"}))).await.unwrap();
    let dup = t.create(a, "company", &obj(json!({"name": "华夏科技有限公司"}))).await.unwrap();
    let gone = t.create(a, "company", &obj(json!({"name": "远景物流"}))).await.unwrap();
    let c1 = t.create(a, "contact", &obj(json!({"name": "张伟", "company": dup.id.to_string()}))).await.unwrap();
    let c2 = t.create(a, "contact", &obj(json!({"name": "李娜", "company": gone.id.to_string()}))).await.unwrap();
    // A deleted contact of the purged company has its link cleared too.
    let c3 = t.create(a, "contact", &obj(json!({"name": "王芳", "company": gone.id.to_string()}))).await.unwrap();
    t.delete(a, "contact", c3.id, None).await.unwrap();
    assert_eq!(seen_for(c1.id), [(ChangeKind::Create, Some(dup.id.to_string()))]);

    let req = kehu_app::records::MergeRequest {
        survivor: keep.id,
        merge: vec![dup.id],
        versions: [(keep.id, keep.version), (dup.id, dup.version)].into_iter().collect(),
        values: Default::default(),
    };
    t.merge(a, "company", &req).await.unwrap();
    // The moved contact: behaviours ran, its history holds the move, one event of the common shape.
    assert_eq!(
        seen_for(c1.id),
        [(ChangeKind::Create, Some(dup.id.to_string())), (ChangeKind::Update, Some(keep.id.to_string()))]
    );
    let hist = rows(&t, "SELECT old_value, new_value FROM field_history WHERE record_id = $1", c1.id).await;
    assert_eq!(hist, [vec![Some(json!(dup.id).to_string()), Some(json!(keep.id).to_string())]]);
    let evs = updated_events(&t, c1.id).await;
    assert_eq!(
        evs,
        [json!({"object": "contact", "id": c1.id, "version": 2, "changes": {"company": [dup.id, keep.id]}})]
    );

    t.delete(a, "company", gone.id, None).await.unwrap();
    let purged = t.purge_many(a, &[("company".into(), gone.id)]).await.unwrap();
    assert_eq!(purged.len(), 1);
    for (c, version) in [(c2.id, 2), (c3.id, 3)] {
        assert_eq!(seen_for(c).last(), Some(&(ChangeKind::Update, None)), "the behaviour saw the link cleared");
        let hist = rows(&t, "SELECT old_value, new_value FROM field_history WHERE record_id = $1", c).await;
        assert_eq!(hist, [vec![Some(json!(gone.id).to_string()), None]]);
        assert_eq!(
            updated_events(&t, c).await,
            [json!({"object": "contact", "id": c, "version": version, "changes": {"company": [gone.id, null]}})]
        );
    }
    // The deleted contact stays in the recycle bin, out of search.
    let bin = rows(&t, "SELECT deleted_at FROM o_contact WHERE id = $1", c3.id).await;
    assert!(bin[0][0].is_some());
    // Created events carry the same members: object, id, version.
    let evs = kehu_db::journal::pending_events(&t.db, 10_000).await.unwrap();
    let created = evs.iter().find(|e| e.record_id == Some(c1.id) && e.event == "record.created").unwrap();
    assert_eq!((created.payload["object"].clone(), created.payload["version"].clone()), (json!("contact"), json!(1)));
}
both!(merge_and_purge_go_through_the_write_core);

async fn first_and_last_name_compose_the_name(t: TestApp) {
    let c = t.create(&system(), "contact", &obj(json!({"first_name": "Ada", "last_name": "Lovelace"}))).await.unwrap();
    assert_eq!(c.get("name"), &json!("Ada Lovelace"));
    let given = t.create(&system(), "contact", &obj(json!({"name": "A. L.", "first_name": "Ada"}))).await.unwrap();
    assert_eq!(given.get("name"), &json!("A. L."), "a given name is kept");
}
both!(first_and_last_name_compose_the_name);

async fn job_state(t: &TestApp, id: Uuid) -> (String, i64, Option<String>, i64) {
    let r =
        t.db.one(&Raw::new("SELECT state, attempts, error, run_after FROM jobs WHERE id = $1", vec![id.into()]))
            .await
            .unwrap()
            .unwrap();
    (r.string(0).unwrap(), r.i64(1).unwrap(), r.string(2), r.i64(3).unwrap())
}

async fn insert_job(t: &TestApp, kind: &str, actor: Uuid, params: Json) -> Uuid {
    let id = Uuid::now_v7();
    t.db.write(&Raw::new(
        "INSERT INTO jobs (id, kind, actor_id, object, params, state, total, done, failed, skipped, cursor, batches, \
         created_at, updated_at) VALUES ($1, $2, $3, 'contact', $4, 'pending', 0, 0, 0, 0, '', 0, $5, $5)",
        vec![id.into(), kind.into(), actor.into(), params.to_string().into(), kehu_core::now_micros().into()],
    ))
    .await
    .unwrap();
    id
}

async fn a_failing_job_backs_off_and_never_blocks_others(t: TestApp) {
    let o = org(&t).await;
    let admin = o.admin.user_id.unwrap();
    // First in the queue: a job whose batch fails with an internal error every time.
    let broken = insert_job(&t, "no_such_kind", admin, json!({})).await;
    // Queued after it: a bulk tag of 3 contacts.
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(t.create(&o.admin, "contact", &obj(json!({"name": format!("客户{i}")}))).await.unwrap().id);
    }
    let bulk = json!({"object": "contact", "action": {"action": "add_tag", "field": "tags", "tag": "VIP"}, "selection": {"ids": ids}});
    let good = match serde_json::from_value::<kehu_app::bulk::BulkRequest>(bulk.clone()) {
        Ok(_) => insert_job(&t, "bulk", admin, bulk).await,
        Err(e) => panic!("bulk request shape: {e}"),
    };
    assert_eq!(t.run_jobs().await.unwrap(), 2, "both taken in one round");
    let (state, attempts, error, run_after) = job_state(&t, broken).await;
    assert_eq!((state.as_str(), attempts, error.as_deref()), ("running", 1, Some("internal")));
    assert!(run_after > kehu_core::now_micros(), "waits out its backoff");
    assert_eq!(job_state(&t, good).await.0, "done", "the job behind it ran");
    assert_eq!(t.run_jobs().await.unwrap(), 0, "nothing due while it backs off");
    // Each retry fails again; after the last the job fails with its error for the user to see.
    for n in 2..=kehu_app::jobs::MAX_ATTEMPTS {
        t.db.write(&Raw::new("UPDATE jobs SET run_after = 0 WHERE id = $1", vec![broken.into()])).await.unwrap();
        assert_eq!(t.run_jobs().await.unwrap(), 1);
        assert_eq!(job_state(&t, broken).await.1, n);
    }
    let (state, _, error, _) = job_state(&t, broken).await;
    assert_eq!((state.as_str(), error.as_deref()), ("failed", Some("internal")));
    let seen = t.job(&o.admin, broken).await.unwrap();
    assert!(seen.finished() && seen.error.as_deref() == Some("internal"));
    // Backoff grows: 1 s, 2 s, 4 s … with a quarter of jitter at most.
    for (attempt, base) in [(1, 1_000_000), (3, 4_000_000), (20, 3_600_000_000i64)] {
        let b = kehu_app::jobs::backoff_micros(attempt);
        assert!(b >= base && b <= base + base / 4, "attempt {attempt}: {b}");
    }
}
both!(a_failing_job_backs_off_and_never_blocks_others);

async fn an_expired_lease_cannot_commit(t: TestApp) {
    let o = org(&t).await;
    let mut ids = Vec::new();
    for i in 0..450 {
        ids.push(t.create(&o.admin, "contact", &obj(json!({"name": format!("客户{i}")}))).await.unwrap().id);
    }
    let bulk = json!({"object": "contact", "action": {"action": "add_tag", "field": "tags", "tag": "VIP"}, "selection": {"ids": ids}});
    let job = insert_job(&t, "bulk", o.admin.user_id.unwrap(), bulk).await;
    let first: Lease = t.claim_job(Some(job)).await.unwrap().expect("free");
    assert_eq!(t.claim_job(Some(job)).await.unwrap(), None, "held: nobody else gets it");
    // The first worker stalls past its lease; a second takes the job over.
    t.db.write(&Raw::new("UPDATE jobs SET lease_until = 1 WHERE id = $1", vec![job.into()])).await.unwrap();
    let second = t.claim_job(Some(job)).await.unwrap().expect("expired: taken over");
    assert_ne!(first.token, second.token);
    // The stalled worker wakes up: its batch is fenced out and writes nothing.
    assert!(!t.job_step(&first).await.unwrap());
    assert_eq!(t.job(&o.admin, job).await.unwrap().counts.done, 0);
    assert!(t.job_step(&second).await.unwrap(), "the new holder works");
    assert_eq!(t.job(&o.admin, job).await.unwrap().counts.done, 200);
    // Cancel: the next batch does not run; what was done stays.
    let v = t.cancel_job(&o.admin, job).await.unwrap();
    assert_eq!(v.state, "cancelled");
    assert!(!t.job_step(&second).await.unwrap());
    assert_eq!(t.job(&o.admin, job).await.unwrap().counts.done, 200);
    let tagged =
        t.db.one(&Raw::new("SELECT COUNT(*) FROM o_contact WHERE f_tags LIKE '%VIP%'", vec![]))
            .await
            .unwrap()
            .and_then(|r| r.i64(0));
    assert_eq!(tagged, Some(200));
}
both!(an_expired_lease_cannot_commit);

fn counting(app: &kehu_app::App, _now: i64) -> BoxFut<'_, kehu_app::Result<()>> {
    Box::pin(async move {
        app.db
            .write(&Raw::new(
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, 'x', 0)",
                vec![format!("run-{}", Uuid::now_v7()).into()],
            ))
            .await?;
        Ok(())
    })
}

fn failing(_app: &kehu_app::App, _now: i64) -> BoxFut<'_, kehu_app::Result<()>> {
    Box::pin(async { Err(kehu_core::AppError::internal("boom")) })
}

async fn a_schedule_runs_once_per_period(t: TestApp) {
    let s = Schedule { name: "test.count", every: Every::Minutes(10), run: counting };
    let now = 1_800_000_000_000_000i64;
    let key = s.every.period_key(now, chrono_tz::UTC).unwrap();
    let other = kehu_app::App::with_db(t.db.clone()).await.unwrap(); // a second server
    let (a, b) = tokio::join!(t.run_schedule(&s, &key, now), other.run_schedule(&s, &key, now));
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|r| **r).count(), 1, "one of two servers ran it");
    assert!(!t.run_schedule(&s, &key, now).await.unwrap(), "done: not again");
    let runs = || async { count(&t, "settings WHERE key LIKE 'run-%'").await };
    assert_eq!(runs().await, 1);
    // A run whose server died (still running, lease over) is taken over, once.
    let next = s.every.period_key(now + 600_000_000, chrono_tz::UTC).unwrap();
    assert_ne!(next, key);
    t.db.write(&Raw::new(
        "INSERT INTO schedule_runs (id, name, period_key, token, state, started_at, lease_until, attempts) \
         VALUES ($1, 'test.count', $2, $3, 'running', 0, 1, 1)",
        vec![Uuid::now_v7().into(), next.clone().into(), Uuid::now_v7().into()],
    ))
    .await
    .unwrap();
    assert!(t.run_schedule(&s, &next, now).await.unwrap());
    assert!(!other.run_schedule(&s, &next, now).await.unwrap());
    assert_eq!(runs().await, 2);
    let r = &t.schedule_runs("test.count", 1).await.unwrap()[0];
    assert_eq!((r.period_key.as_str(), r.state.as_str(), r.attempts), (next.as_str(), "done", 2));
    // A failing run is recorded with its error; the next period tries again.
    let f = Schedule { name: "test.fail", every: Every::Minutes(1), run: failing };
    assert!(t.run_schedule(&f, "p1", now).await.unwrap());
    let r = &t.schedule_runs("test.fail", 1).await.unwrap()[0];
    assert_eq!((r.state.as_str(), r.error.as_deref()), ("failed", Some("internal: boom")));
    // Daily at 08:00 in the organisation's zone: no key before, the local date after.
    let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
    let daily = Every::DailyAt(8, 0);
    let at = |h: u32| {
        use chrono::TimeZone;
        tz.with_ymd_and_hms(2026, 12, 7, h, 30, 0).unwrap().timestamp_micros()
    };
    assert_eq!(daily.period_key(at(7), tz), None);
    assert_eq!(daily.period_key(at(9), tz).as_deref(), Some("2026-12-07"));
}
both!(a_schedule_runs_once_per_period);

async fn every_due_reminder_is_sent_once(t: TestApp) {
    let o = org(&t).await;
    let now = kehu_core::now_micros();
    let due = kehu_core::value::format_datetime(now - 60_000_000);
    let inputs: Vec<_> = (0..211)
        .map(|i| obj(json!({"kind": "task", "subject": format!("回访{i}"), "remind_at": due, "done": false})))
        .collect();
    t.create_many(&o.rep_east1, "activity", &inputs).await.unwrap();
    assert_eq!(t.send_reminders(now).await.unwrap(), 211, "all of them, not the first 200");
    assert_eq!(t.send_reminders(now).await.unwrap(), 0, "never twice");
    assert_eq!(count(&t, "notifications WHERE kind = 'reminder'").await, 211);
}
both!(every_due_reminder_is_sent_once);

async fn a_leased_mail_is_not_sent_twice(t: TestApp) {
    t.set_mail_enabled(true);
    let admin = t.create_user("a@kehu.test", "管理员", None, "admin").await.unwrap();
    let actor = t.actor(admin).await.unwrap();
    let rep = t.create_user("rep@kehu.test", "李娜", None, "sales_rep").await.unwrap();
    t.password_link(&actor, rep, "https://crm.example.com").await.unwrap();
    // Another server is sending it right now (attempt taken, lease running).
    let until = kehu_core::now_micros() + 60_000_000;
    t.db.write(&Raw::new("UPDATE mails SET attempts = 1, lease_until = $1", vec![until.into()])).await.unwrap();
    // A mail server nobody listens on: any attempt would fail and show up as an error.
    let m = kehu_app::mail::Mailer::new("smtp://127.0.0.1:9", "crm@example.com").unwrap();
    assert_eq!(t.deliver_mails(&m).await.unwrap(), 0);
    let mails = t.mails(&actor, 10).await.unwrap();
    assert_eq!((mails[0].attempts, mails[0].last_error.as_deref()), (1, None), "not touched while leased");
}
both!(a_leased_mail_is_not_sent_twice);

async fn consumers_take_every_event_once_and_prune(t: TestApp) {
    let a = &system();
    for i in 0..7 {
        t.create(a, "company", &obj(json!({"name": format!("公司{i}")}))).await.unwrap();
    }
    let events = count(&t, "outbox").await;
    assert!(events >= 7);
    let stats = t.consumer_stats().await.unwrap();
    let hooks = stats.iter().find(|s| s.name == "webhooks").unwrap();
    assert_eq!(hooks.depth, events);
    assert_eq!(t.drain_consumers().await.unwrap() as i64, events * stats.len() as i64);
    assert_eq!(t.drain_consumers().await.unwrap(), 0, "each event once");
    assert_eq!(count(&t, "outbox WHERE processed_at IS NULL").await, 0);
    assert_eq!(count(&t, "outbox_consumed").await, 0, "delivery state goes once every consumer took it");
    assert!(t.consumer_stats().await.unwrap().iter().all(|s| s.depth == 0 && s.age_seconds == 0));
    // Housekeeping prunes processed events after the retention, not before.
    t.housekeeping().await.unwrap();
    assert_eq!(count(&t, "outbox").await, events);
    t.db.write(&Raw::new("UPDATE outbox SET processed_at = 1", vec![])).await.unwrap();
    t.housekeeping().await.unwrap();
    assert_eq!(count(&t, "outbox").await, 0);
}
both!(consumers_take_every_event_once_and_prune);

/// A local receiver: `/ok` 200, `/fail` 500 with `Retry-After: 120`, `/gone` 410,
/// `/redirect` 302 to `/ok`, `/big` 200 with 100 kB. It keeps every request it got.
type Got = Arc<Mutex<Vec<(String, axum::http::HeaderMap, String)>>>;

async fn receiver() -> (String, Got) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let got: Got = Default::default();
    let keep = |path: &'static str, got: Got| {
        move |h: HeaderMap, body: String| {
            let got = got.clone();
            async move {
                got.lock().unwrap().push((path.to_string(), h, body));
                match path {
                    "/fail" => {
                        (StatusCode::INTERNAL_SERVER_ERROR, [("retry-after", "120")], "下游出错了").into_response()
                    }
                    "/gone" => StatusCode::GONE.into_response(),
                    "/redirect" => (StatusCode::FOUND, [("location", "/ok")]).into_response(),
                    "/big" => "x".repeat(100_000).into_response(),
                    "/hang" => {
                        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                        "too late".into_response()
                    }
                    _ => "ok".into_response(),
                }
            }
        }
    };
    let mut router = axum::Router::new();
    for p in ["/ok", "/fail", "/gone", "/redirect", "/big", "/hang"] {
        router = router.route(p, axum::routing::post(keep(p, got.clone())));
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    (base, got)
}

fn verify(secret: &str, h: &axum::http::HeaderMap, body: &str) -> usize {
    let id = h["webhook-id"].to_str().unwrap();
    let ts: i64 = h["webhook-timestamp"].to_str().unwrap().parse().unwrap();
    assert!((ts - kehu_core::now_micros() / 1_000_000).abs() < 60, "timestamp in seconds");
    let want = kehu_app::webhooks::sign(secret, id, ts, body.as_bytes()).unwrap();
    h["webhook-signature"].to_str().unwrap().split(' ').filter(|s| *s == want).count()
}

fn input(url: String, objects: &[&str]) -> EndpointInput {
    EndpointInput {
        url,
        description: "ERP".into(),
        objects: objects.iter().map(|s| s.to_string()).collect(),
        events: vec![],
        enabled: true,
    }
}

async fn due_now(t: &TestApp) {
    t.db.write(&Raw::new("UPDATE webhook_deliveries SET next_at = 0 WHERE state = 'pending'", vec![])).await.unwrap();
}

async fn webhooks_are_signed_retried_and_guarded(t: TestApp) {
    t.set_mail_enabled(true);
    let o = org(&t).await;
    let admin = &o.admin;
    let (base, got) = receiver().await;
    // Bad input: clear errors, nothing stored.
    for (url, code) in [
        ("ftp://example.com/x", "webhook.invalid_url"),
        ("not a url", "webhook.invalid_url"),
        ("http://user:pw@example.com/", "webhook.invalid_url"),
    ] {
        let e = t.create_webhook(admin, &input(url.into(), &[])).await.unwrap_err();
        assert_eq!(e.fields[0].code, code, "{url}");
    }
    let mut bad = input(format!("{base}/ok"), &[]);
    bad.events = vec!["record.exploded".into()];
    assert_eq!(t.create_webhook(admin, &bad).await.unwrap_err().fields[0].code, "webhook.unknown_event");
    assert_eq!(
        t.create_webhook(admin, &input(format!("{base}/ok"), &["nope"])).await.unwrap_err().fields[0].code,
        "webhook.unknown_object"
    );
    assert_eq!(
        t.create_webhook(&o.manager_sales, &input(format!("{base}/ok"), &[])).await.unwrap_err().code,
        "permission.denied"
    );
    assert_eq!(count(&t, "webhook_endpoints").await, 0);

    let (ep, secret) = t.create_webhook(admin, &input(format!("{base}/ok"), &["company"])).await.unwrap();
    assert!(secret.starts_with("whsec_"));
    let mut companies = Vec::new();
    for i in 0..3 {
        companies.push(t.create(admin, "company", &obj(json!({"name": format!("华夏{i}")}))).await.unwrap().id);
    }
    t.create(admin, "contact", &obj(json!({"name": "不要发"}))).await.unwrap();
    t.drain_consumers().await.unwrap();
    let ds = t.webhook_deliveries(admin, ep.id, None, 50).await.unwrap();
    assert_eq!(ds.len(), 3, "companies only");

    // Loopback is refused until an administrator allows the host.
    assert_eq!(t.send_webhooks().await.unwrap(), 3);
    assert!(got.lock().unwrap().is_empty());
    for d in t.webhook_deliveries(admin, ep.id, None, 50).await.unwrap() {
        assert_eq!(
            (d.state.as_str(), d.attempts, d.last_error.as_deref()),
            ("pending", 1, Some("webhook.address_not_allowed"))
        );
        assert!(d.next_at >= kehu_core::now_micros() + 4_000_000, "retried after about 5 s");
    }
    assert_eq!(t.send_webhooks().await.unwrap(), 0, "not before the retry is due");
    t.set_webhook_allow_hosts(admin, &["127.0.0.1".into()]).await.unwrap();
    due_now(&t).await;
    assert_eq!(t.send_webhooks().await.unwrap(), 3);
    {
        let g = got.lock().unwrap();
        assert_eq!(g.len(), 3);
        let mut ids: Vec<String> = g.iter().map(|(_, h, _)| h["webhook-id"].to_str().unwrap().to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3, "each delivery once, under its own id");
        for (_, h, body) in g.iter() {
            assert_eq!(verify(&secret, h, body), 1, "signed with the endpoint's secret");
            let b: Json = serde_json::from_str(body).unwrap();
            assert_eq!((b["type"].as_str(), b["data"]["object"].as_str()), (Some("record.created"), Some("company")));
            assert!(companies.iter().any(|c| b["data"]["id"] == json!(c)));
            assert_eq!(b["data"]["version"], json!(1));
        }
    }
    for d in t.webhook_deliveries(admin, ep.id, None, 50).await.unwrap() {
        assert_eq!((d.state.as_str(), d.last_status), ("delivered", Some(200)));
        let a = t.webhook_attempts(admin, d.id).await.unwrap();
        assert_eq!(a.iter().map(|a| a.status).collect::<Vec<_>>(), [None, Some(200)]);
        assert_eq!(a[1].excerpt.as_deref(), Some("ok"));
    }
    assert_eq!(t.send_webhooks().await.unwrap(), 0, "delivered: never again");

    // Rotation: while it overlaps, both secrets sign.
    let new_secret = t.rotate_webhook_secret(admin, ep.id, 24).await.unwrap();
    t.test_webhook(admin, ep.id).await.unwrap();
    t.send_webhooks().await.unwrap();
    {
        let g = got.lock().unwrap();
        let (_, h, body) = g.last().unwrap();
        assert_eq!((verify(&secret, h, body), verify(&new_secret, h, body)), (1, 1));
        assert_eq!(serde_json::from_str::<Json>(body).unwrap()["type"], json!("webhook.test"));
    }

    // A failing receiver: 500 with Retry-After is honoured; the log keeps status and excerpt.
    let (fail, _) = t.create_webhook(admin, &input(format!("{base}/fail"), &["company"])).await.unwrap();
    let d = t.test_webhook(admin, fail.id).await.unwrap();
    t.send_webhooks().await.unwrap();
    let d = t.webhook_delivery(admin, d.id).await.unwrap();
    assert_eq!((d.state.as_str(), d.attempts, d.last_status), ("pending", 1, Some(500)));
    assert!(d.next_at >= kehu_core::now_micros() + 110_000_000, "Retry-After: 120 s");
    let a = t.webhook_attempts(admin, d.id).await.unwrap();
    assert_eq!(a[0].excerpt.as_deref(), Some("下游出错了"));
    // After the last retry it fails, the endpoint is marked failing; replay sends it again.
    t.db.write(&Raw::new("UPDATE webhook_deliveries SET attempts = 7, next_at = 0 WHERE id = $1", vec![d.id.into()]))
        .await
        .unwrap();
    t.send_webhooks().await.unwrap();
    assert_eq!(t.webhook_delivery(admin, d.id).await.unwrap().state, "failed");
    assert_eq!(t.webhook(admin, fail.id).await.unwrap().state, "failing");
    // Administrators are told, once, by e-mail with the link to the log.
    let told =
        t.db.all(&Raw::new("SELECT to_addr, body FROM mails WHERE kind = 'webhook_failing'", vec![])).await.unwrap();
    assert_eq!(told.len(), 1, "the one administrator");
    assert_eq!(told[0].string(0).as_deref(), Some("admin@kehu.test"));
    assert!(told[0].string(1).unwrap().contains(&format!("/admin/webhooks/{}", fail.id)));
    assert_eq!(t.replay_webhook(admin, fail.id, None).await.unwrap(), 1);
    assert_eq!(t.webhook_delivery(admin, d.id).await.unwrap().state, "pending");

    // Redirects are failures, not followed; a huge body is cut; 410 disables the endpoint.
    let before = got.lock().unwrap().iter().filter(|(p, _, _)| p == "/ok").count();
    let (redir, _) = t.create_webhook(admin, &input(format!("{base}/redirect"), &["company"])).await.unwrap();
    let (big, _) = t.create_webhook(admin, &input(format!("{base}/big"), &["company"])).await.unwrap();
    let (gone, _) = t.create_webhook(admin, &input(format!("{base}/gone"), &["company"])).await.unwrap();
    let dr = t.test_webhook(admin, redir.id).await.unwrap();
    let db = t.test_webhook(admin, big.id).await.unwrap();
    let dg = t.test_webhook(admin, gone.id).await.unwrap();
    t.send_webhooks().await.unwrap();
    assert_eq!(got.lock().unwrap().iter().filter(|(p, _, _)| p == "/ok").count(), before, "302 not followed");
    let r = t.webhook_delivery(admin, dr.id).await.unwrap();
    assert_eq!((r.state.as_str(), r.last_status), ("pending", Some(302)));
    let b = t.webhook_delivery(admin, db.id).await.unwrap();
    assert_eq!(b.state, "delivered");
    assert_eq!(t.webhook_attempts(admin, db.id).await.unwrap()[0].excerpt.as_ref().map(String::len), Some(1024));
    assert_eq!(t.webhook_delivery(admin, dg.id).await.unwrap().state, "failed");
    let g = t.webhook(admin, gone.id).await.unwrap();
    assert_eq!((g.enabled, g.state.as_str()), (false, "gone"));
    // A receiver that never answers: the attempt ends after 15 s with a clear error, and the
    // delivery waits for its retry; a working endpoint's delivery in the same round arrives.
    let (hang, _) = t.create_webhook(admin, &input(format!("{base}/hang"), &["company"])).await.unwrap();
    let dh = t.test_webhook(admin, hang.id).await.unwrap();
    let dk = t.test_webhook(admin, ep.id).await.unwrap();
    let started = std::time::Instant::now();
    t.send_webhooks().await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "bounded by the timeout");
    let h = t.webhook_delivery(admin, dh.id).await.unwrap();
    assert_eq!((h.state.as_str(), h.last_status, h.last_error.as_deref()), ("pending", None, Some("webhook.timeout")));
    assert!(h.last_latency_ms.unwrap() >= 14_000, "{h:?}");
    assert_eq!(t.webhook_delivery(admin, dk.id).await.unwrap().state, "delivered");
    t.update_webhook(admin, hang.id, &EndpointInput { enabled: false, ..input(format!("{base}/hang"), &["company"]) })
        .await
        .unwrap();
    // A disabled endpoint gets no new deliveries.
    t.create(admin, "company", &obj(json!({"name": "之后"}))).await.unwrap();
    t.drain_consumers().await.unwrap();
    assert_eq!(t.webhook_deliveries(admin, gone.id, None, 50).await.unwrap().len(), 1);
    assert_eq!(t.webhook_deliveries(admin, ep.id, None, 50).await.unwrap().len(), 6);
    assert_eq!(t.webhook_deliveries(admin, hang.id, None, 50).await.unwrap().len(), 1);
    assert_eq!(count(&t, "mails WHERE kind = 'webhook_failing'").await, 1, "told once, not per delivery");
}
both!(webhooks_are_signed_retried_and_guarded);

/// Seeds evolve declaratively: a field or a select option added to a standard object's seed
/// file is added to an existing database once; what an administrator removed stays removed.
async fn seeds_evolve_declaratively(t: TestApp) {
    let mut seed: Json = serde_json::from_str(kehu_app::customers::SEED_CUSTOMERS).unwrap();
    let contact = seed["objects"].as_array_mut().unwrap().iter_mut().find(|o| o["api_name"] == "contact").unwrap();
    let fields = contact["fields"].as_array_mut().unwrap();
    fields.push(json!({"api_name": "douyin", "column": "f_douyin", "type": "text", "label": {"en": "Douyin", "zh-CN": "抖音号"}, "filterable": true}));
    let stage = fields.iter_mut().find(|f| f["api_name"] == "lifecycle_stage").unwrap();
    stage["options"]["choices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "partner", "label": {"en": "Partner", "zh-CN": "合作伙伴"}}));
    // An existing field the seed now makes filterable.
    assert!(!t.reload_schema().await.unwrap().object("contact").unwrap().field("job_title").unwrap().filterable);
    fields.iter_mut().find(|f| f["api_name"] == "job_title").unwrap()["filterable"] = json!(true);
    let text = seed.to_string();
    kehu_app::customers::apply_seed(&t.db, 1001, "seed_customers", &text).await.unwrap();
    // Applying again changes nothing (no second field, no second option).
    kehu_app::customers::apply_seed(&t.db, 1001, "seed_customers", &text).await.unwrap();
    let schema = t.reload_schema().await.unwrap();
    let c = schema.object("contact").unwrap();
    let douyin = c.field("douyin").expect("the new field");
    let positions: Vec<_> = c.fields.iter().map(|f| (f.api_name.clone(), f.position)).collect();
    assert_eq!(douyin.position, c.data_fields().map(|f| f.position).max().unwrap(), "added at the end: {positions:?}");
    let stage = c.field("lifecycle_stage").unwrap();
    assert_eq!(stage.options.choices.iter().filter(|x| x.key == "partner").count(), 1);
    assert!(c.field("job_title").unwrap().filterable, "the seed made it filterable");
    let rec = t
        .create(
            &system(),
            "contact",
            &obj(json!({"name": "陈静", "douyin": "chenjing88", "lifecycle_stage": "partner"})),
        )
        .await
        .unwrap();
    assert_eq!((rec.get("douyin"), rec.get("lifecycle_stage")), (&json!("chenjing88"), &json!("partner")));
    // An administrator removes the option (no record holds it any more) and archives the field.
    t.update(&system(), "contact", rec.id, rec.version, &obj(json!({"lifecycle_stage": "lead"}))).await.unwrap();
    let keep: Vec<_> = stage.options.choices.iter().filter(|x| x.key != "partner").cloned().collect();
    let patch = kehu_app::metadata::FieldPatch { choices: Some(keep), ..Default::default() };
    t.update_field(&system(), "contact", "lifecycle_stage", patch).await.unwrap();
    let patch = kehu_app::metadata::FieldPatch { filterable: Some(false), ..Default::default() };
    t.update_field(&system(), "contact", "job_title", patch).await.unwrap();
    kehu_app::customers::apply_seed(&t.db, 1001, "seed_customers", &text).await.unwrap();
    let schema = t.reload_schema().await.unwrap();
    let stage = schema.object("contact").unwrap().field("lifecycle_stage").unwrap().clone();
    assert!(!stage.options.choices.iter().any(|x| x.key == "partner"), "what an admin removed is not added back");
    let job = schema.object("contact").unwrap().field("job_title").unwrap().clone();
    assert!(!job.filterable, "an administrator's choice is kept");
    assert_eq!(schema.object("contact").unwrap().fields.iter().filter(|f| f.api_name == "douyin").count(), 1);
}
both!(seeds_evolve_declaratively);
