//! The `kehu` binary: one command runs the whole CRM.

// archive and backup (issue #5)
mod archive_cmd;
mod bench_webhooks;
// end archive and backup
mod config;
mod import_cmd;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use config::Config;
use kehu_app::App;
use kehu_db::conn::ConnectOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// mimalloc instead of the system allocator: bulk writes (imports, archives) allocate and free
/// millions of small values, where glibc's malloc took a tenth of the CPU (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kehu (客户) — an open-source CRM in one binary.
///
/// Runs on an embedded SQLite file by default (no other service needed); set
/// KEHU_DATABASE_URL=postgres://… to use PostgreSQL. Configuration: kehu.toml and KEHU_*
/// environment variables (KEHU_LISTEN, KEHU_DATA_DIR, KEHU_DATABASE_URL, KEHU_LOG_FORMAT).
#[derive(Parser)]
#[command(name = "kehu", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (the default command).
    Serve,
    /// Apply pending database migrations and exit (serve does this too).
    Migrate {
        /// Only list pending migrations.
        #[arg(long)]
        status: bool,
    },
    /// Generate a realistic demo data set: teams, users, companies and contacts.
    Demo {
        /// Number of contacts (companies: one per eight contacts).
        #[arg(long, default_value_t = 1000)]
        contacts: usize,
        /// Random seed, for a reproducible data set.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Measure get / list / search / create latency on the current database (run `demo` first).
    Bench {
        /// Runs of each operation.
        #[arg(long, default_value_t = 300)]
        iterations: usize,
    },
    // archive and backup (issue #5)
    /// Write everything (metadata, records, activities, users, roles, teams, audit log, field
    /// history, settings) to one portable archive file, from a consistent snapshot (online).
    ExportArchive {
        /// The archive file to write (refused if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Load an archive into a fresh, empty instance on either database (how you move from
    /// SQLite to PostgreSQL). Refused when the target has any user or record.
    ImportArchive {
        /// The archive file written by `export-archive`.
        #[arg(long = "in")]
        input: PathBuf,
    },
    /// Print the canonical dump of the database: byte-identical for the same data on SQLite
    /// and PostgreSQL, to compare two instances.
    Dump {
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Take a consistent online backup (SQLite: VACUUM INTO; PostgreSQL: pg_dump when it is
    /// installed and works, else a Kehu archive, e.g. when pg_dump is older than the server).
    /// Default: a timestamped file in <data dir>/backups/.
    Backup {
        /// Write exactly this file instead (its content, not its name, says what it is).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Restore a backup: a SQLite file replaces the database (stop the server first; the old
    /// file is kept as *.before-restore); a pg_dump file or an archive loads into an empty database.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    // end archive and backup
    // --- import (issue #5) ---
    /// Import a CSV or XLSX file into an object (the same engine and job as the web page):
    /// maps columns by their headers, prints the dry run or runs the import with progress.
    Import {
        /// The object's api name, e.g. contact, company.
        #[arg(long)]
        object: String,
        #[arg(long)]
        file: std::path::PathBuf,
        /// create (default), update or upsert.
        #[arg(long)]
        mode: Option<String>,
        /// The field that finds existing records (email, phone, external_id).
        #[arg(long)]
        key: Option<String>,
        /// Only count and list row errors; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run as this user (e-mail); default: the first administrator.
        #[arg(long = "as")]
        as_user: Option<String>,
        /// Create related records (e.g. companies) that rows name but that do not exist.
        #[arg(long)]
        create_missing: bool,
        /// The sheet of a workbook (default: the first).
        #[arg(long)]
        sheet: Option<String>,
        /// Queue the import and return; a running `kehu serve` works on it.
        #[arg(long)]
        queue: bool,
    },
    /// Benchmark: N contacts' events delivered to a local webhook receiver by S `kehu serve`
    /// processes on the configured database (PostgreSQL for more than one).
    BenchWebhooks {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 2)]
        servers: usize,
    },
    /// Benchmark: import N generated contacts into a fresh SQLite database through the real
    /// import path, and `sqlite3 .import` the same file into an equivalent table.
    BenchImport {
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Rows per batch (default: the configured `import_batch_rows`).
        #[arg(long)]
        batch_rows: Option<usize>,
        /// Keep the data directory (CSV, Kehu's database, the mirror) to look into afterwards.
        #[arg(long)]
        keep: bool,
        /// Also time the check (dry run) of the file before the import and again as an upsert
        /// after it, and the streamed CSV export of every imported contact.
        #[arg(long)]
        check_export: bool,
    },
    // --- end import ---
    /// Manage users from the command line.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens from the command line.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with a password read from standard input (e.g. the first administrator:
    /// `echo "$PW" | kehu user create --admin --email a@example.com --password-stdin`).
    Create {
        #[arg(long)]
        email: String,
        /// Display name (default: the part of the e-mail before `@`).
        #[arg(long)]
        name: Option<String>,
        /// Make the user an administrator (otherwise: `--role`).
        #[arg(long)]
        admin: bool,
        /// Role key: admin, manager, sales_rep, read_only or a custom role's key.
        #[arg(long, default_value = "sales_rep")]
        role: String,
        /// Read the password from standard input (never from an argument, which `ps` shows).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a user and print it (shown once; stored hashed).
    Create {
        /// The user's e-mail.
        #[arg(long)]
        user: String,
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// Scopes: read, write, admin (comma-separated).
        #[arg(long, default_value = "read,write")]
        scopes: String,
        /// Expire after this many days (default: never).
        #[arg(long)]
        expires_days: Option<u32>,
    },
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEHU_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Logs go to standard error (standard output is the command's answer), coloured only on a
    // terminal: a log file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if cfg.log_format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

async fn open(cfg: &Config) -> Result<Arc<App>> {
    let url = cfg.database_url().context("creating the data directory")?;
    let opts = ConnectOptions { max_connections: cfg.max_connections, pg_schema: None };
    let db = kehu_db::Db::connect(&url, &opts).await.map_err(|e| anyhow::anyhow!("opening the database: {e}"))?;
    // archive and backup (issue #5): a backup before migrations that alter existing tables.
    let target = archive_cmd::target(cfg, &url);
    kehu_app::backup::before_migrations(&db, &target)
        .await
        .map_err(|e| anyhow::anyhow!("backup before migrating: {}", describe(&e)))?;
    let app = App::with_db(db).await.map_err(|e| anyhow::anyhow!("opening the database: {e}"))?;
    app.set_backup_target(target);
    app.set_import_batch_rows(cfg.import_batch_rows);
    Ok(app)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let cfg = Config::load().map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    init_logging(&cfg);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cfg).await,
        Command::Migrate { status } => {
            let url = cfg.database_url()?;
            let db = kehu_db::Db::connect(&url, &ConnectOptions::default()).await?;
            if !status {
                // archive and backup (issue #5)
                let target = archive_cmd::target(&cfg, &url);
                if let Some(f) = kehu_app::backup::before_migrations(&db, &target)
                    .await
                    .map_err(|e| anyhow::anyhow!("backup before migrating: {}", describe(&e)))?
                {
                    println!("backup before migrating: {}", f.display());
                }
            }
            if status {
                let p = kehu_db::migrate::pending(&db).await?;
                println!("pending migrations: {p:?}");
            } else {
                let applied = kehu_db::migrate::run(&db).await?;
                kehu_app::modules::seed_all(&db).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("applied migrations: {applied:?}");
            }
            Ok(())
        }
        Command::Demo { contacts, seed } => {
            let app = open(&cfg).await?;
            let start = std::time::Instant::now();
            let s = kehu_app::demo::demo(&app, contacts, seed, |done, total| {
                if done % 20_000 == 0 || done == total {
                    let rate = done as f64 / start.elapsed().as_secs_f64();
                    eprint!("\rcontacts {done}/{total} ({rate:.0}/s)   ");
                    let _ = std::io::stderr().flush();
                }
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!();
            println!(
                "demo data: {} users, {} companies, {} contacts in {:.1}s",
                s.users,
                s.companies,
                s.contacts,
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Bench { iterations } => bench(&cfg, iterations).await,
        // archive and backup (issue #5)
        Command::ExportArchive { out } => archive_cmd::export_archive(&cfg, &out).await,
        Command::ImportArchive { input } => archive_cmd::import_archive(&cfg, &input).await,
        Command::Dump { out } => archive_cmd::dump(&cfg, out.as_deref()).await,
        Command::Backup { out } => archive_cmd::backup(&cfg, out).await,
        Command::Restore { file } => archive_cmd::restore(&cfg, &file).await,
        // end archive and backup
        // --- import (issue #5) ---
        Command::Import { object, file, mode, key, dry_run, as_user, create_missing, sheet, queue } => {
            let app = open(&cfg).await?;
            let args =
                import_cmd::ImportArgs { object, file, mode, key, dry_run, as_user, create_missing, sheet, queue };
            import_cmd::import(app, args).await
        }
        Command::BenchWebhooks { events, servers } => {
            let url = cfg.database_url().context("creating the data directory")?;
            let app = open(&cfg).await?;
            bench_webhooks::run(app, &url, events, servers).await
        }
        Command::BenchImport { rows, batch_rows, keep, check_export } => {
            import_cmd::bench(rows, batch_rows.unwrap_or(cfg.import_batch_rows), keep, check_export).await
        }
        // --- end import ---
        Command::User { command: UserCommand::Create { email, name, admin, role, password_stdin: _ } } => {
            let mut pw = String::new();
            std::io::stdin().read_line(&mut pw).context("reading the password from standard input")?;
            let pw = pw.trim_end_matches(['\n', '\r']);
            let app = open(&cfg).await?;
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_string());
            let role = if admin { "admin".to_string() } else { role };
            let id = app
                .create_user_with_password(&email, &name, pw, &role)
                .await
                .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
            println!("created user {email} ({role}), id {id}");
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { user, name, scopes, expires_days } } => {
            let app = open(&cfg).await?;
            let q = kehu_db::Raw::new("SELECT id FROM users WHERE email = $1", vec![user.trim().to_lowercase().into()]);
            let id = app.db.one(&q).await?.and_then(|r| r.uuid(0)).with_context(|| format!("no user {user}"))?;
            let scopes = scopes
                .split(',')
                .map(|s| kehu_app::auth::TokenScope::parse(s.trim()).with_context(|| format!("unknown scope {s}")))
                .collect::<Result<Vec<_>>>()?;
            let (token, _) = app
                .create_api_token(id, &name, &scopes, expires_days)
                .await
                .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
            println!("{token}");
            eprintln!("This token is shown only once; Kehu keeps only its hash.");
            Ok(())
        }
    }
}

/// An error for the terminal, in the language of `LANG` (zh… or English), with its code.
fn describe(e: &kehu_core::AppError) -> String {
    use kehu_web::i18n::{I18n, Lang};
    let lang = if std::env::var("LANG").unwrap_or_default().starts_with("zh") { Lang::ZhCn } else { Lang::En };
    let i18n = I18n::new();
    let mut s = format!("{} ({})", i18n.error(lang, &e.code), e.code);
    for f in &e.fields {
        s.push_str(&format!("\n  {}: {} ({})", f.field, i18n.error(lang, &f.code), f.code));
    }
    s
}

async fn bench(cfg: &Config, iterations: usize) -> Result<()> {
    let app = open(cfg).await?;
    let admin = match app.create_user("bench-admin@kehu.local", "Bench admin", None, "admin").await {
        Ok(id) => id,
        Err(_) => {
            let q = kehu_db::Raw::new("SELECT id FROM users WHERE email = 'bench-admin@kehu.local'", vec![]);
            app.db.one(&q).await?.and_then(|r| r.uuid(0)).context("bench admin")?
        }
    };
    let admin = app.actor(admin).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let rep_q = kehu_db::Raw::new(
        "SELECT u.id FROM users u JOIN roles r ON r.id = u.role_id WHERE r.key = 'sales_rep' ORDER BY u.email LIMIT 1",
        vec![],
    );
    let rep = match app.db.one(&rep_q).await?.and_then(|r| r.uuid(0)) {
        Some(id) => Some(app.actor(id).await.map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let mgr_q = kehu_db::Raw::new(
        "SELECT u.id FROM users u JOIN roles r ON r.id = u.role_id WHERE r.key = 'manager' AND u.team_id IS NOT NULL \
         ORDER BY u.email LIMIT 1",
        vec![],
    );
    let manager = match app.db.one(&mgr_q).await?.and_then(|r| r.uuid(0)) {
        Some(id) => Some(app.actor(id).await.map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let n = app.count(&admin, "contact", None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("backend: {}   contacts: {n}   iterations: {iterations}", app.db.backend().name());
    let mut stats = kehu_app::bench::run(&app, &admin, rep.as_ref(), manager.as_ref(), iterations)
        .await
        .map_err(|e| anyhow::anyhow!("{e} {:?}", e.detail))?;
    stats.extend(web_bench(&app, &admin, iterations).await?);
    println!("{:<28} {:>6} {:>9} {:>9} {:>9} {:>9}", "operation", "runs", "p50 ms", "p95 ms", "p99 ms", "max ms");
    for s in stats {
        println!(
            "{:<28} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            s.name, s.runs, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
        );
    }
    Ok(())
}

/// The same reads through the whole HTTP stack, in process: token authentication, the request
/// middleware (CSRF, headers, metrics, logging), the handler and JSON encoding.
async fn web_bench(
    app: &Arc<App>,
    admin: &kehu_core::perm::Actor,
    iterations: usize,
) -> Result<Vec<kehu_app::bench::Stat>> {
    use axum::body::Body;
    use tower::ServiceExt;
    let user = admin.user_id.context("bench admin")?;
    let (token, _) = app
        .create_api_token(user, "bench", &kehu_app::auth::TokenScope::ALL, Some(1))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let req = kehu_app::ListRequest { limit: Some(200), ..Default::default() };
    let ids: Vec<_> = app
        .list(admin, "contact", &req)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .records
        .iter()
        .map(|r| r.id)
        .collect();
    anyhow::ensure!(!ids.is_empty(), "no contacts: run `kehu demo` first");
    let router = kehu_web::router(app.clone(), kehu_web::WebConfig::default());
    let filter = r#"{"and":[{"field":"city","op":"eq","value":"上海"},{"field":"lifecycle_stage","op":"in","value":["lead","prospect"]}]}"#;
    let list_path = format!(
        "/api/v1/contact?limit=50&sort=-updated_at&filter={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    );
    let mut out = Vec::new();
    for (name, kind) in [("api: get by id", 0), ("api: list 50 filtered", 1)] {
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let path = if kind == 0 { format!("/api/v1/contact/{}", ids[i % ids.len()]) } else { list_path.clone() };
            let req = axum::http::Request::get(&path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .context("request")?;
            let t = std::time::Instant::now();
            let res = router.clone().oneshot(req).await.context("router")?;
            let status = res.status();
            axum::body::to_bytes(res.into_body(), 64 << 20).await.context("body")?;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status.is_success(), "{path}: {status}");
        }
        out.push(kehu_app::bench::stat(name, samples));
    }
    // The HTML pages a salesperson opens all day, with a signed-in session: the contact list
    // filtered and sorted (50 rows, names resolved, total counted) and a contact's record
    // page (details, related lists, composer, timeline).
    const PW: &str = "Bench-Pages-Kehu-2026!";
    let email = "bench-pages@kehu.local";
    let _ = app.create_user_with_password(email, "Bench pages", PW, "admin").await;
    let client = kehu_app::auth::Client { ip: Some("127.0.0.1"), user_agent: Some("kehu bench") };
    let login = app.login(email, PW, &client).await.map_err(|e| anyhow::anyhow!("bench login: {e}"))?;
    let cookie = format!("kehu_session={}", login.session.token);
    let list_page = format!(
        "/o/contact?st=1&cf=city&co=eq&cv={}&lc=lead&sort=-updated_at",
        url::form_urlencoded::byte_serialize("上海".as_bytes()).collect::<String>()
    );
    let count_path = list_page.replacen("/o/contact?", "/o/contact/count?", 1);
    for (name, kind) in [("page: contact list 50", 0), ("page: contact record", 1), ("page: list total (after)", 2)] {
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let path = match kind {
                0 => list_page.clone(),
                1 => format!("/o/contact/{}", ids[i % ids.len()]),
                _ => count_path.clone(),
            };
            let req = axum::http::Request::get(&path)
                .header("cookie", &cookie)
                .header("connection", "keep-alive")
                .body(Body::empty())
                .context("request")?;
            let t = std::time::Instant::now();
            let res = router.clone().oneshot(req).await.context("router")?;
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), 64 << 20).await.context("body")?;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status.is_success(), "{path}: {status}");
            anyhow::ensure!(kind != 0 || body.len() > 10_000, "{path}: list page without rows");
        }
        out.push(kehu_app::bench::stat(name, samples));
    }
    let _ = app.logout(&login.session.token).await;
    Ok(out)
}

async fn serve(cfg: Config) -> Result<()> {
    // archive and backup (issue #5): hold the SQLite database so `kehu restore` cannot replace
    // it under a running server.
    let url = cfg.database_url().context("creating the data directory")?;
    let _lock = match kehu_db::backup::sqlite_path(&url) {
        Some(p) => Some(kehu_db::backup::ServerLock::acquire(&p).map_err(|e| {
            // The lock is taken: another `kehu serve` works on this data directory.
            let e = if e.code == "backup.server_running" {
                kehu_core::AppError::conflict("serve.already_running")
            } else {
                e
            };
            anyhow::anyhow!("{} {}", describe(&e), p.display())
        })?),
        None => None,
    };
    let app = open(&cfg).await?;
    // end archive and backup
    let listener =
        tokio::net::TcpListener::bind(&cfg.listen).await.with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = app.db.backend().name(), "Kehu is running");
    println!("Kehu is running on http://{addr} ({})", app.db.backend().name());
    let web = kehu_web::WebConfig {
        public_url: cfg.public_url.clone(),
        trust_proxy: cfg.trust_proxy,
        metrics_token: cfg.metrics_token.clone(),
        smtp_configured: cfg.smtp_url.is_some(),
    };
    if let Some(url) = &cfg.smtp_url {
        let mailer =
            kehu_app::mail::Mailer::new(url, &cfg.mail_from).map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        app.set_mailer(mailer);
    }
    // Background work: jobs, schedules (reminders, backups, housekeeping), outbox consumers
    // (webhooks) and pumps (webhook deliveries, mail) — see kehu_app::work.
    if let Some(s) = cfg.lease_seconds {
        app.set_lease_seconds(s);
    }
    app.release_stale_leases().await.map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    let _work = kehu_app::work::spawn(app.clone());
    let router = kehu_web::router(app.clone(), web);
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown())
        .await?;
    app.db.close().await;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
