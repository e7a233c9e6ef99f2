//! `kehu bench-webhooks`: how fast events reach a webhook receiver. It creates N contacts on
//! the configured database (the same multi-row statements an import batch writes: row, audit
//! entry, outbox event and search document per record), points a webhook at a receiver in this
//! process, starts S real `kehu serve` processes on the same database, and times until the
//! receiver has every `webhook-id`. Use PostgreSQL for several servers.

use anyhow::{Context, Result};
use kehu_app::App;
use kehu_core::perm::Actor;
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Received {
    ids: HashSet<String>,
    requests: u64,
    first: Option<Instant>,
}

pub async fn run(app: Arc<App>, url: &str, events: usize, servers: usize) -> Result<()> {
    anyhow::ensure!(servers >= 1, "--servers must be at least 1");
    anyhow::ensure!(
        servers == 1 || url.starts_with("postgres"),
        "several servers need PostgreSQL (KEHU_DATABASE_URL=postgres://…)"
    );
    let got = Arc::new(Mutex::new(Received { ids: HashSet::new(), requests: 0, first: None }));
    let g = got.clone();
    let route = axum::routing::post(move |h: axum::http::HeaderMap| {
        let g = g.clone();
        async move {
            let id = h.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            if let Ok(mut r) = g.lock() {
                r.requests += 1;
                r.first.get_or_insert_with(Instant::now);
                r.ids.insert(id);
            }
            "ok"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://127.0.0.1:{}/hook", l.local_addr()?.port());
    tokio::spawn(async move { axum::serve(l, axum::Router::new().route("/hook", route)).await });

    let admin_email = "bench-webhooks@kehu.local";
    let admin = match app.create_user(admin_email, "Webhook benchmark", None, "admin").await {
        Ok(id) => id,
        Err(_) => {
            let q = kehu_db::Raw::new("SELECT id FROM users WHERE email = $1", vec![admin_email.into()]);
            app.db.one(&q).await?.and_then(|r| r.uuid(0)).context("benchmark user")?
        }
    };
    let admin = app.actor(admin).await?;
    let mut hosts = app.webhook_allow_hosts().await?;
    if !hosts.iter().any(|h| h == "127.0.0.1") {
        hosts.push("127.0.0.1".into());
        app.set_webhook_allow_hosts(&admin, &hosts).await?;
    }
    // Only the events of this run: earlier ones are taken by the consumer first.
    app.drain_consumers().await?;
    let input = kehu_app::webhooks::EndpointInput {
        url: hook,
        description: "kehu bench-webhooks".into(),
        objects: vec!["contact".into()],
        events: vec!["record.created".into()],
        enabled: true,
    };
    let (ep, _) = app.create_webhook(&admin, &input).await?;

    let t = Instant::now();
    let system = Actor::system();
    for start in (0..events).step_by(1000) {
        let rows: Vec<_> = (start..(start + 1000).min(events))
            .filter_map(|i| {
                serde_json::json!({"name": format!("推送客户{i}"), "city": "杭州", "email": format!("wh{i}.{}@bench.kehu", ep.id.simple())})
                    .as_object()
                    .cloned()
            })
            .collect();
        app.create_many(&system, "contact", &rows).await?;
    }
    let created = t.elapsed();
    println!("{events} contacts created in {:.1} s ({events} events)", created.as_secs_f64());

    let exe = std::env::current_exe().context("the kehu binary")?;
    let dirs: Vec<tempfile::TempDir> = (0..servers).map(|_| tempfile::tempdir()).collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut children = Vec::new();
    for d in &dirs {
        children.push(
            Command::new(&exe)
                .arg("serve")
                .env("KEHU_DATA_DIR", d.path())
                .env("KEHU_LISTEN", "127.0.0.1:0")
                .env("KEHU_DATABASE_URL", url)
                .env("KEHU_LOG", "warn")
                .env_remove("KEHU_CONFIG")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting kehu serve")?,
        );
    }
    let deadline = started + Duration::from_secs(1800);
    let outcome = loop {
        let (n, requests, first) =
            got.lock().map(|r| (r.ids.len(), r.requests, r.first)).map_err(|_| anyhow::anyhow!("receiver lock"))?;
        if n >= events {
            break Ok((requests, first));
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!("only {n} of {events} delivered in 30 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let total = started.elapsed();
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let (requests, first) = outcome?;
    let sending = first.map(|f| f.elapsed()).unwrap_or(total);
    println!(
        "{events} webhooks delivered by {servers} server(s): {:.1} s from start ({:.0}/s), {:.1} s from the first delivery ({:.0}/s); {requests} requests for {events} ids",
        total.as_secs_f64(),
        events as f64 / total.as_secs_f64(),
        sending.as_secs_f64(),
        events as f64 / sending.as_secs_f64().max(0.001),
    );
    app.delete_webhook(&admin, ep.id).await?;
    Ok(())
}
