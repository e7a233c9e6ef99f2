//! Several app servers for real (issue #14): two `kehu serve` processes (their own data
//! directories and ports) on one PostgreSQL database, as a team running Kehu behind a load
//! balancer would. The test process only writes data and watches (it never runs background
//! work itself). PostgreSQL only: SQLite has one server by design. Required in CI.
//!
//! 1. 1,000 mails through a slow SMTP server that refuses some messages once → each message
//!    accepted exactly once; 500 task reminders due in the same minute → each once; one
//!    scheduled backup for the period; 2,000 record events → every webhook delivered, a
//!    `webhook-id` seen twice only after the receiver failed it; a field added through one
//!    server is used through the other at once.
//! 2. `kill -9` of one server 20 times while both work through ten bulk jobs → every job
//!    completes and each record change exists exactly once.

use kehu_app::App;
use kehu_core::perm::Actor;
use kehu_db::conn::ConnectOptions;
use kehu_db::Raw;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `kehu serve` on `url` with its own data directory; wait for its address.
fn serve(dir: &std::path::Path, url: &str, smtp: u16) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .arg("serve")
        .env("KEHU_DATA_DIR", dir)
        .env("KEHU_LISTEN", "127.0.0.1:0")
        .env("KEHU_DATABASE_URL", url)
        .env("KEHU_SMTP_URL", format!("smtp://127.0.0.1:{smtp}"))
        .env("KEHU_LEASE_SECONDS", "3")
        .env("KEHU_LOG", "warn")
        .env_remove("KEHU_CONFIG")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kehu serve");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let base = loop {
        let line = lines.next().expect("kehu serve printed its address").expect("line");
        if let Some(rest) = line.strip_prefix("Kehu is running on ") {
            break rest.split_whitespace().next().expect("address").to_string();
        }
    };
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

/// A fresh database on the server of `KEHU_TEST_POSTGRES_URL`.
async fn fresh_database() -> Option<String> {
    let Ok(base) = std::env::var("KEHU_TEST_POSTGRES_URL") else {
        assert!(std::env::var("CI").is_err(), "CI must set KEHU_TEST_POSTGRES_URL");
        eprintln!("KEHU_TEST_POSTGRES_URL not set: multi-server test skipped");
        return None;
    };
    let name = format!("kehu_multi_{}", uuid::Uuid::now_v7().simple());
    let admin = kehu_db::Db::connect(&base, &ConnectOptions { max_connections: 1, pg_schema: None }).await.unwrap();
    admin.exec_raw(&format!("CREATE DATABASE {name}")).await.unwrap();
    admin.close().await;
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// An SMTP server that takes 20 ms per message (4 s for every 50th, longer than the
/// servers' 3 s lease) and answers 451 the first time it sees every 10th subject.
/// It counts accepted messages by subject.
async fn smtp() -> (u16, Arc<Mutex<HashMap<String, u32>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let got: Arc<Mutex<HashMap<String, u32>>> = Default::default();
    let refused: Arc<Mutex<std::collections::HashSet<String>>> = Default::default();
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let (g, refused) = (g.clone(), refused.clone());
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = tokio::io::BufReader::new(r).lines();
                w.write_all(b"220 slow ESMTP\r\n").await.ok();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line != "." {
                            d.push_str(&line);
                            d.push('\n');
                            continue;
                        }
                        let text = data.take().unwrap_or_default();
                        let subject =
                            text.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("").trim().to_string();
                        let n: u32 = subject.trim_start_matches('m').parse().unwrap_or(1);
                        let slow = if n.is_multiple_of(50) { 4000 } else { 20 };
                        tokio::time::sleep(Duration::from_millis(slow)).await;
                        let refuse = n.is_multiple_of(10) && refused.lock().unwrap().insert(subject.clone());
                        if refuse {
                            w.write_all(b"451 try again later\r\n").await.ok();
                        } else {
                            *g.lock().unwrap().entry(subject).or_default() += 1;
                            w.write_all(b"250 queued\r\n").await.ok();
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250-slow\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    } else if cmd.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.ok();
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.ok();
                }
            });
        }
    });
    (port, got)
}

/// A webhook receiver: answers 500 the first time it sees every 20th id (by order of
/// arrival), 200 otherwise; keeps (id, status) of every request.
type Hits = Arc<Mutex<Vec<(String, u16)>>>;

async fn receiver() -> (u16, Hits) {
    let hits: Hits = Default::default();
    let h = hits.clone();
    let route = axum::routing::post(move |headers: axum::http::HeaderMap| {
        let h = h.clone();
        async move {
            let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let mut g = h.lock().unwrap();
            let first = !g.iter().any(|(i, _)| *i == id);
            let status = if first && g.len().is_multiple_of(20) { 500 } else { 200 };
            g.push((id, status));
            axum::http::StatusCode::from_u16(status).unwrap()
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, axum::Router::new().route("/hook", route)).await.unwrap() });
    (port, hits)
}

async fn one(app: &App, sql: &str) -> i64 {
    app.db.one(&Raw::new(sql, vec![])).await.expect(sql).and_then(|r| r.i64(0)).unwrap_or(-1)
}

async fn wait_for(what: &str, secs: u64, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not done within {secs} s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_do_background_work_once() {
    let Some(url) = fresh_database().await else { return };
    let app = App::open(&url, &ConnectOptions { max_connections: 4, pg_schema: None }).await.unwrap();
    let admin_id = app.create_user("admin@multi.test", "管理员", None, "admin").await.unwrap();
    let admin = app.actor(admin_id).await.unwrap();
    let rep_id = app.create_user("rep@multi.test", "李娜", None, "sales_rep").await.unwrap();
    let rep = app.actor(rep_id).await.unwrap();
    let (smtp_port, mails) = smtp().await;
    let (hook_port, hits) = receiver().await;

    // 1,000 queued mails (as a reset or an invitation queues them).
    let now = kehu_core::now_micros();
    for chunk in (0..1000).collect::<Vec<u32>>().chunks(250) {
        let mut tx = app.db.begin().await.unwrap();
        for i in chunk {
            tx.exec(&Raw::new(
                "INSERT INTO mails (id, to_addr, subject, body, kind, created_at, attempts) \
                 VALUES ($1, $2, $3, 'hello', 'test', $4, 0)",
                vec![
                    uuid::Uuid::now_v7().into(),
                    format!("u{i}@multi.test").into(),
                    format!("m{i}").into(),
                    now.into(),
                ],
            ))
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    // 500 reminders due in the same minute.
    let due = kehu_core::value::format_datetime(now - 20_000_000);
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            json!({"kind": "task", "subject": format!("回访{i}"), "remind_at": due, "done": false})
                .as_object()
                .cloned()
                .unwrap()
        })
        .collect();
    app.create_many(&rep, "activity", &tasks).await.unwrap();
    // Backups every hour, and a webhook for companies.
    let backups = kehu_app::backup::BackupSettings { enabled: true, every_hours: 1, keep: 3 };
    app.set_backup_settings(&admin, backups).await.unwrap();
    app.set_webhook_allow_hosts(&admin, &["127.0.0.1".into()]).await.unwrap();
    let hook = kehu_app::webhooks::EndpointInput {
        url: format!("http://127.0.0.1:{hook_port}/hook"),
        objects: vec!["company".into()],
        enabled: true,
        ..Default::default()
    };
    let (ep, _) = app.create_webhook(&admin, &hook).await.unwrap();

    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = serve(dirs[0].path(), &url, smtp_port);
    let b = serve(dirs[1].path(), &url, smtp_port);
    // 2,000 events while both servers run.
    for chunk in 0..4 {
        let rows: Vec<_> =
            (0..500).map(|i| json!({"name": format!("公司{chunk}-{i}")}).as_object().cloned().unwrap()).collect();
        app.create_many(&Actor::system(), "company", &rows).await.unwrap();
    }

    // Metadata changed on one server is used by the other at once.
    let (token, _) = app
        .create_api_token(
            admin_id,
            "multi",
            &[kehu_app::auth::TokenScope::Read, kehu_app::auth::TokenScope::Write, kehu_app::auth::TokenScope::Admin],
            Some(1),
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let field = json!({"api_name": "erp_code", "type": "text", "label": {"en": "ERP code", "zh": "ERP 编码"}});
    let r = http
        .post(format!("{}/api/v1/meta/objects/company/fields", a.base))
        .bearer_auth(&token)
        .json(&field)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = http
        .post(format!("{}/api/v1/company", b.base))
        .bearer_auth(&token)
        .json(&json!({"name": "用新字段", "erp_code": "K-001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let body: Json = r.json().await.unwrap();
    assert_eq!(body["fields"]["erp_code"], "K-001");

    wait_for("mails", 240, async || one(&app, "SELECT COUNT(*) FROM mails WHERE sent_at IS NOT NULL").await == 1000)
        .await;
    wait_for("reminders", 60, async || {
        one(&app, "SELECT COUNT(*) FROM notifications WHERE kind = 'reminder'").await == 500
    })
    .await;
    wait_for("webhooks", 120, async || {
        one(&app, "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'delivered'").await == 2001
    })
    .await;
    wait_for("backup", 60, async || one(&app, "SELECT COUNT(*) FROM backups WHERE state <> 'running'").await >= 1)
        .await;

    // Each mail accepted once (the refused ones once, after their retry).
    let m = mails.lock().unwrap().clone();
    assert_eq!(m.len(), 1000);
    assert!(
        m.values().all(|n| *n == 1),
        "a mail delivered twice: {:?}",
        m.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    // One scheduled backup per period, whichever server took it (the test may cross an hour,
    // then there are two periods, each with one backup).
    let backups = one(&app, "SELECT COUNT(*) FROM backups WHERE trigger = 'scheduled'").await;
    let periods = one(&app, "SELECT COUNT(DISTINCT period_key) FROM backups WHERE trigger = 'scheduled'").await;
    assert!(backups >= 1 && backups == periods, "{backups} scheduled backups for {periods} periods");
    // Every webhook id arrived; an id came twice only when the receiver had failed it.
    let h = hits.lock().unwrap().clone();
    let mut by_id: HashMap<&str, Vec<u16>> = HashMap::new();
    for (id, status) in &h {
        by_id.entry(id).or_default().push(*status);
    }
    assert_eq!(by_id.len(), 2001);
    for (id, statuses) in &by_id {
        assert_eq!(statuses.last(), Some(&200), "{id}");
        assert!(statuses[..statuses.len() - 1].iter().all(|s| *s != 200), "{id} delivered twice: {statuses:?}");
    }
    assert!(by_id.values().any(|s| s.len() == 2), "some ids were failed and retried");
    let deliveries = app.webhook_deliveries(&admin, ep.id, Some("delivered"), 500).await.unwrap();
    assert!(deliveries.iter().all(|d| d.last_status == Some(200)));

    // 2. kill -9 of one server, 20 times, while both work through ten bulk jobs.
    let contacts: Vec<_> =
        (0..1200).map(|i| json!({"name": format!("客户{i}")}).as_object().cloned().unwrap()).collect();
    for c in contacts.chunks(400) {
        app.create_many(&admin, "contact", c).await.unwrap();
    }
    let before = one(&app, "SELECT COUNT(*) FROM audit_log WHERE action = 'update'").await;
    let mut jobs = Vec::new();
    for i in 0..10 {
        let req: kehu_app::bulk::BulkRequest = serde_json::from_value(json!({
            "object": "contact",
            "action": {"action": "add_tag", "field": "tags", "tag": format!("T{i}")},
            "selection": {"filter": null},
        }))
        .unwrap();
        match app.bulk(&admin, &req).await.unwrap() {
            kehu_app::bulk::BulkOutcome::Queued(id) => jobs.push(id),
            other => panic!("expected a job: {other:?}"),
        }
    }
    let mut a = a;
    let mut seed = 0x6b65_6875u64;
    for kill in 0..20 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(200 + (seed >> 33) % 900)).await;
        drop(a); // SIGKILL and reap
        let done = one(&app, "SELECT CAST(COALESCE(SUM(done), 0) AS BIGINT) FROM jobs WHERE kind = 'bulk'").await;
        eprintln!("kill {}: {done} of 12000 records done", kill + 1);
        a = serve(dirs[0].path(), &url, smtp_port);
    }
    wait_for("jobs", 300, async || {
        one(&app, "SELECT COUNT(*) FROM jobs WHERE kind = 'bulk' AND state = 'done'").await == 10
    })
    .await;
    for id in &jobs {
        let j = app.job(&admin, *id).await.unwrap();
        assert_eq!((j.state.as_str(), j.counts.done, j.counts.failed), ("done", 1200, 0), "{id}");
    }
    assert_eq!(
        one(&app, "SELECT COUNT(*) FROM audit_log WHERE action = 'update'").await - before,
        12_000,
        "each record change once"
    );
    let all_tags = one(
        &app,
        "SELECT COUNT(*) FROM o_contact WHERE f_tags LIKE '%\"T0\"%' AND f_tags LIKE '%\"T9\"%' AND deleted_at IS NULL",
    )
    .await;
    assert_eq!(all_tags, 1200);
    drop((a, b));
    app.db.close().await;
}
