//! `kehu import` (a file into an object, through the same engine and job as the web page) and
//! `kehu bench-import` (rows per second of the real import path next to `sqlite3 .import`).

use anyhow::{Context, Result};
use kehu_app::import::{ImportMode, ImportView, RowIssue};
use kehu_app::App;
use kehu_core::perm::Actor;
use kehu_web::i18n::{I18n, Lang};
use std::io::Write;
use std::sync::Arc;

/// What `kehu import` was asked.
pub struct ImportArgs {
    pub object: String,
    pub file: std::path::PathBuf,
    pub mode: Option<String>,
    pub key: Option<String>,
    pub dry_run: bool,
    pub as_user: Option<String>,
    pub create_missing: bool,
    pub sheet: Option<String>,
    /// Queue the job and return (a running `kehu serve` finishes it).
    pub queue: bool,
}

fn lang() -> Lang {
    if std::env::var("LANG").unwrap_or_default().starts_with("zh") {
        Lang::ZhCn
    } else {
        Lang::En
    }
}

fn err(e: kehu_core::AppError) -> anyhow::Error {
    anyhow::anyhow!("{}", super::describe(&e))
}

/// A row problem in the terminal's language.
pub fn issue_text(i18n: &I18n, lang: Lang, i: &RowIssue) -> String {
    kehu_web::http::import::issue_text(i18n, lang, i)
}

/// The user an import runs as: `--as` (e-mail), else the first administrator.
pub async fn actor_for(app: &App, email: Option<&str>) -> Result<Actor> {
    let q = match email {
        Some(e) => kehu_db::Raw::new(
            "SELECT id FROM users WHERE email = $1 AND is_active = $2",
            vec![e.trim().to_lowercase().into(), true.into()],
        ),
        None => kehu_db::Raw::new(
            "SELECT u.id FROM users u JOIN roles r ON r.id = u.role_id WHERE r.key = 'admin' AND u.is_active = $1 \
             ORDER BY u.created_at LIMIT 1",
            vec![true.into()],
        ),
    };
    let id = app
        .db
        .one(&q)
        .await?
        .and_then(|r| r.uuid(0))
        .context("no such active user (create one with `kehu user create`, or pass --as)")?;
    app.actor(id).await.map_err(err)
}

fn print_counts(v: &kehu_app::import::ImportCounts) {
    println!(
        "created {}   updated {}   unchanged {}   skipped {}   failed {}   related records created {}",
        v.created, v.updated, v.unchanged, v.skipped, v.failed, v.related_created
    );
}

pub async fn import(app: Arc<App>, a: ImportArgs) -> Result<()> {
    let i18n = I18n::new();
    let lang = lang();
    let actor = actor_for(&app, a.as_user.as_deref()).await?;
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let name = a.file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let id = app.import_upload(&actor, &a.object, &name, &bytes, a.sheet.as_deref()).await.map_err(err)?;
    let mut s = app.import_settings(&actor, id).await.map_err(err)?;
    if let Some(m) = &a.mode {
        s.mode = ImportMode::parse(m).context("--mode must be create, update or upsert")?;
    }
    if a.key.is_some() {
        s.key = a.key.clone();
    }
    s.create_missing |= a.create_missing;
    let v = app.import_view(&actor, id).await.map_err(err)?;
    println!("{}: {} rows ({}, {})", name, v.total_rows, v.format, v.encoding);
    for (h, c) in v.headers.iter().zip(&s.columns) {
        println!("  {h:<24} → {}", c.as_deref().unwrap_or("-"));
    }
    println!("mode: {}   key: {}", s.mode.as_str(), s.key.as_deref().unwrap_or("-"));
    app.import_configure(&actor, id, &s, None).await.map_err(err)?;
    if a.dry_run {
        let dry = app.import_dry_run(&actor, id).await.map_err(err)?;
        print!("dry run: ");
        print_counts(&dry.counts);
        for e in &dry.errors {
            println!("  row {}: {}", e.row, issue_text(&i18n, lang, e));
        }
        return Ok(());
    }
    let job = app.import_start(&actor, id).await.map_err(err)?;
    println!("import {id} queued as job {job}");
    if a.queue {
        return Ok(());
    }
    let v = run_to_end(&app, &actor, job, id).await?;
    report(&app, &actor, &i18n, lang, &v).await
}

/// Run the job's batches here, printing progress.
pub async fn run_to_end(app: &App, actor: &Actor, job: uuid::Uuid, id: uuid::Uuid) -> Result<ImportView> {
    let start = std::time::Instant::now();
    // One lease for the whole run: no write between batches, so each batch can be built while
    // the previous one commits (import::run::Ahead needs to be the very next write).
    let lease = app.claim_job(Some(job)).await.map_err(err)?.context("another Kehu process is running this import")?;
    let outcome = async {
        while app.job_step(&lease).await.map_err(err)? {
            let v = app.import_view(actor, id).await.map_err(err)?;
            let rate = v.counts.rows() as f64 / start.elapsed().as_secs_f64().max(1e-6);
            eprint!("\r{:>3}%  {}/{} rows  ({rate:.0}/s)   ", v.percent(), v.counts.rows(), v.total_rows);
            let _ = std::io::stderr().flush();
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.release_job(&lease).await.map_err(err)?;
    outcome?;
    eprintln!();
    app.import_view(actor, id).await.map_err(err)
}

async fn report(app: &App, actor: &Actor, i18n: &I18n, lang: Lang, v: &ImportView) -> Result<()> {
    println!(
        "state: {}{}",
        v.state,
        v.error.as_deref().map(|e| format!(" ({})", i18n.error(lang, e))).unwrap_or_default()
    );
    print_counts(&v.counts);
    if v.counts.failed > 0 {
        let csv =
            app.failed_rows_csv(actor, v.id, lang == Lang::ZhCn, &|i| issue_text(i18n, lang, i)).await.map_err(err)?;
        let path = format!("kehu-import-{}-failed.csv", v.id);
        std::fs::write(&path, csv).with_context(|| format!("writing {path}"))?;
        println!("failed rows (fix and import again): {path}");
    }
    Ok(())
}

/// Columns of the generated file and the `o_contact` columns they fill.
const BENCH_COLUMNS: [(&str, &str); 7] = [
    ("姓名", "f_name"),
    ("邮箱", "f_email"),
    ("手机", "f_phone"),
    ("城市", "f_city"),
    ("职位", "f_job_title"),
    ("生命周期阶段", "f_lifecycle"),
    ("标签", "f_tags"),
];

/// A CSV of `n` contacts whose values Kehu stores as they are (normalised phone numbers,
/// option keys), so `sqlite3 .import` stores the same text (tags: one tag, which Kehu keeps as
/// a one-element JSON array).
fn bench_csv(n: usize) -> String {
    const SURNAMES: [&str; 10] = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
    const GIVEN: [&str; 8] = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "婷"];
    const CITIES: [&str; 6] = ["北京", "上海", "广州", "深圳", "杭州", "成都"];
    const TITLES: [&str; 4] = ["销售经理", "采购", "总经理", "工程师"];
    const STAGES: [&str; 4] = ["lead", "prospect", "customer", "subscriber"];
    let mut s = String::with_capacity(n * 90);
    s.push_str(&BENCH_COLUMNS.map(|c| c.0).join(","));
    s.push('\n');
    for i in 0..n {
        s.push_str(&format!(
            "{}{}{},c{i}@example.cn,139{:08},{},{},{},t{}\n",
            SURNAMES[i % 10],
            GIVEN[(i / 10) % 8],
            i % 97,
            i,
            CITIES[i % 6],
            TITLES[i % 4],
            STAGES[i % 4],
            i % 5
        ));
    }
    s
}

/// `bench-import --check-export`: the check of the same file as an upsert by e-mail over the
/// imported rows (every row found, none changed), and the streamed CSV export of them all.
async fn check_and_export(
    app: &Arc<App>,
    actor: &Actor,
    csv: &std::path::Path,
    rows: usize,
    check_new: f64,
) -> Result<()> {
    let bytes = std::fs::read(csv)?;
    let id = app.import_upload(actor, "contact", "again.csv", &bytes, None).await.map_err(err)?;
    drop(bytes);
    let mut s = app.import_settings(actor, id).await.map_err(err)?;
    s.mode = ImportMode::Upsert;
    s.key = Some("email".into());
    app.import_configure(actor, id, &s, None).await.map_err(err)?;
    let t = std::time::Instant::now();
    let dry = app.import_dry_run(actor, id).await.map_err(err)?;
    let check_existing = t.elapsed().as_secs_f64();
    anyhow::ensure!(dry.counts.unchanged == rows as u64, "check again: {:?}", dry.counts);
    println!(
        "check (dry run): {rows} new rows in {check_new:.1} s = {:.0} rows/s; {rows} existing rows (upsert by e-mail) in {check_existing:.1} s = {:.0} rows/s",
        rows as f64 / check_new,
        rows as f64 / check_existing
    );
    let req = kehu_app::export::ExportRequest {
        object: "contact".into(),
        columns: ["name", "email", "phone", "city", "job_title", "lifecycle_stage", "tags", "owner", "created_at"]
            .map(String::from)
            .to_vec(),
        filter: None,
        sort: None,
        ids: None,
        reveal: true,
        lang: "zh-CN".into(),
        tz: None,
    };
    let t = std::time::Instant::now();
    let mut rx = app.export_csv_stream(actor, req).await.map_err(err)?;
    let mut bytes = 0usize;
    let mut lines = 0usize;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk.map_err(err)?;
        bytes += chunk.len();
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    let export_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(lines == rows + 1, "exported {} lines for {rows} rows", lines);
    println!(
        "CSV export (streamed, 9 columns): {rows} rows, {:.1} MB in {export_s:.1} s = {:.0} rows/s",
        bytes as f64 / 1e6,
        rows as f64 / export_s
    );
    Ok(())
}

pub async fn bench(rows: usize, batch_rows: usize, keep: bool, check_export: bool) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("kehu-bench-import-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let csv_path = dir.join("contacts.csv");
    std::fs::write(&csv_path, bench_csv(rows))?;
    let size = std::fs::metadata(&csv_path)?.len();
    println!("{rows} contacts, {:.1} MB CSV, batches of {batch_rows} rows, in {}", size as f64 / 1e6, dir.display());
    // 1. Kehu: a fresh SQLite database, the real import path (upload, plan, engine, job).
    let db_path = dir.join("kehu.db");
    let opts = kehu_db::conn::ConnectOptions { max_connections: 4, pg_schema: None };
    let app = Arc::new(App::open(&format!("sqlite://{}", db_path.display()), &opts).await.map_err(err)?);
    app.set_import_batch_rows(batch_rows);
    let admin = app.create_user("bench@kehu.local", "Bench", None, "admin").await.map_err(err)?;
    let actor = app.actor(admin).await.map_err(err)?;
    let start = std::time::Instant::now();
    let bytes = std::fs::read(&csv_path)?;
    let id = app.import_upload(&actor, "contact", "contacts.csv", &bytes, None).await.map_err(err)?;
    drop(bytes);
    let s = app.import_settings(&actor, id).await.map_err(err)?;
    app.import_configure(&actor, id, &s, None).await.map_err(err)?;
    let uploaded = start.elapsed().as_secs_f64();
    // The check before the import (every row new), outside the import's time.
    let check_new = if check_export {
        let t = std::time::Instant::now();
        let dry = app.import_dry_run(&actor, id).await.map_err(err)?;
        anyhow::ensure!(dry.counts.created == rows as u64, "check: {:?}", dry.counts);
        Some(t.elapsed().as_secs_f64())
    } else {
        None
    };
    let started = std::time::Instant::now();
    let job = app.import_start(&actor, id).await.map_err(err)?;
    let v = run_to_end(&app, &actor, job, id).await?;
    let kehu_s = uploaded + started.elapsed().as_secs_f64();
    anyhow::ensure!(v.counts.created == rows as u64, "imported {} of {rows}: {:?}", v.counts.created, v.error);
    if check_export {
        check_and_export(&app, &actor, &csv_path, rows, check_new.unwrap_or_default()).await?;
    }
    // 2. sqlite3 .import into a table with o_contact's columns and indexes.
    let ddl = app
        .db
        .all(&kehu_db::Raw::new(
            "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'o_contact' AND sql IS NOT NULL",
            vec![],
        ))
        .await?;
    let cols = app.db.all(&kehu_db::Raw::new("SELECT name FROM pragma_table_info('o_contact')", vec![])).await?;
    app.db.close().await;
    let mut table: Vec<String> = BENCH_COLUMNS.iter().map(|c| format!("{} TEXT", c.1)).collect();
    for c in cols.iter().filter_map(|r| r.string(0)) {
        if !BENCH_COLUMNS.iter().any(|b| b.1 == c) {
            table.push(if c == "id" { "id BLOB PRIMARY KEY".into() } else { c });
        }
    }
    let mut script = String::from("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\n");
    script.push_str(&format!("CREATE TABLE o_mirror ({});\n", table.join(", ")));
    for r in &ddl {
        if r.str(0) == Some("index") {
            let sql = r
                .str(1)
                .unwrap_or_default()
                .replace("\"o_contact\"", "\"o_mirror\"")
                .replace("o_contact__", "o_mirror__");
            script.push_str(&sql);
            script.push_str(";\n");
        }
    }
    let mirror_db = dir.join("mirror.db");
    let setup = std::process::Command::new("sqlite3")
        .arg(&mirror_db)
        .arg(&script)
        .output()
        .context("running sqlite3 (install it to compare)")?;
    anyhow::ensure!(setup.status.success(), "sqlite3: {}", String::from_utf8_lossy(&setup.stderr));
    let t = std::time::Instant::now();
    let status = std::process::Command::new("sqlite3")
        .arg(&mirror_db)
        .arg("PRAGMA synchronous=FULL;")
        .arg(format!(".import --csv --skip 1 {} o_mirror", csv_path.display()))
        .stderr(std::process::Stdio::null())
        .status()?;
    let sqlite_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "sqlite3 .import failed");
    let n = std::process::Command::new("sqlite3").arg(&mirror_db).arg("SELECT COUNT(*) FROM o_mirror").output()?;
    let n = String::from_utf8_lossy(&n.stdout).trim().to_string();
    println!("indexes on the table: {}", ddl.iter().filter(|r| r.str(0) == Some("index")).count());
    println!(
        "kehu import:     {rows} rows in {kehu_s:.1} s = {:.0} rows/s (upload and decode {uploaded:.1} s)",
        rows as f64 / kehu_s
    );
    println!("sqlite3 .import: {n} rows in {sqlite_s:.1} s = {:.0} rows/s", rows as f64 / sqlite_s);
    println!("ratio: {:.2}", sqlite_s / kehu_s);
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
