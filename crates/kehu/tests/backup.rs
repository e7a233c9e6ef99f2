//! `kehu backup --out FILE` on PostgreSQL: `pg_dump` when it works, and the Kehu archive when
//! `pg_dump` is missing or refuses (an older `pg_dump` than the server) — the same fallback as
//! the admin page. The archive written must load into an empty database with the same data.
//!
//! Runs against a fresh database on the server named by `KEHU_TEST_POSTGRES_URL` (skipped
//! locally without it, required in CI).

use kehu_core::perm::Actor;
use kehu_db::conn::ConnectOptions;
use kehu_db::Db;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A database of its own on the test server, dropped at the end.
struct TempDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TempDb {
    async fn create(server: &str) -> TempDb {
        let name = format!("kehu_cli_{}", kehu_core::Uuid::now_v7().simple());
        let admin = Db::connect(server, &ConnectOptions { max_connections: 1, pg_schema: None }).await.expect("server");
        admin.exec_raw(&format!("CREATE DATABASE {name}")).await.expect("create database");
        admin.close().await;
        let mut url = url::Url::parse(server).expect("url");
        url.set_path(&format!("/{name}"));
        TempDb { admin_url: server.to_string(), name, url: url.to_string() }
    }
}

/// Dropped even when an assertion fails (on a thread of its own: no async in `Drop`).
impl Drop for TempDb {
    fn drop(&mut self) {
        let (server, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let opts = ConnectOptions { max_connections: 1, pg_schema: None };
                if let Ok(admin) = Db::connect(&server, &opts).await {
                    let _ = admin.exec_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// `kehu backup --out <out>` with only `path_dirs` on the PATH.
fn backup(dir: &Path, url: &str, out: &Path, path_dirs: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kehu"))
        .args(["backup", "--out"])
        .arg(out)
        .env("KEHU_DATA_DIR", dir.join("data"))
        .env("KEHU_DATABASE_URL", url)
        .env("KEHU_LOG", "warn")
        .env("PATH", path_dirs)
        .env_remove("KEHU_CONFIG")
        .current_dir(dir)
        .output()
        .expect("kehu backup")
}

/// A `pg_dump` that answers `--version` like an old release and refuses to dump this server.
fn old_pg_dump(dir: &Path) -> PathBuf {
    let bin = dir.join("old-bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let script = bin.join("pg_dump");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         if [ \"$1\" = \"--version\" ]; then echo 'pg_dump (PostgreSQL) 9.6.24'; exit 0; fi\n\
         echo 'pg_dump: error: aborting because of server version mismatch' >&2\n\
         exit 1\n",
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

/// Load an archive into a fresh SQLite database and return its canonical dump.
async fn loaded_dump(dir: &Path, archive: &Path) -> String {
    let url = format!("sqlite://{}", dir.join(format!("restored-{}.db", kehu_core::Uuid::now_v7().simple())).display());
    let db = Db::connect(&url, &ConnectOptions::default()).await.expect("sqlite");
    kehu_db::archive::load::import(&db, archive).await.expect("the archive loads");
    let dump = kehu_db::archive::dump::dump_string(&db).await.expect("dump");
    db.close().await;
    dump
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_out_falls_back_to_the_archive_on_postgres() {
    let Ok(server) = std::env::var("KEHU_TEST_POSTGRES_URL") else {
        assert!(std::env::var("CI").is_err(), "CI must set KEHU_TEST_POSTGRES_URL");
        eprintln!("KEHU_TEST_POSTGRES_URL not set: skipped");
        return;
    };
    let pg = TempDb::create(&server).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // Some data: the seeded instance and a contact.
    let app =
        kehu_app::App::open(&pg.url, &ConnectOptions { max_connections: 2, pg_schema: None }).await.expect("open");
    let input = serde_json::json!({"name": "张伟", "phone": "13800138000", "tags": ["重点"]});
    app.create(&Actor::system(), "contact", input.as_object().expect("object")).await.expect("contact");
    let source = kehu_db::archive::dump::dump_string(&app.db).await.expect("dump");
    app.db.close().await;

    let old_bin = old_pg_dump(dir);
    let no_bin = dir.join("empty-bin");
    std::fs::create_dir_all(&no_bin).expect("empty bin");
    for (case, path_dirs) in
        [("pg_dump too old", old_bin.display().to_string()), ("no pg_dump", no_bin.display().to_string())]
    {
        let out = dir.join(format!("{}.backup", case.replace(' ', "-")));
        let o = backup(dir, &pg.url, &out, &path_dirs);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{case}: {stdout} {}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains("(Kehu archive, "), "{case}: says what it wrote: {stdout}");
        assert!(!kehu_db::backup::is_pg_dump(&out), "{case}");
        let (header, _) = kehu_db::archive::read::verify(&out).expect("a complete archive");
        assert_eq!(header.source_backend, "postgres", "{case}");
        assert_eq!(loaded_dump(dir, &out).await, source, "{case}: the archive holds the database");
        let partial = std::fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
        assert!(!partial, "{case}: no partial file left");
    }
    // With this machine's own pg_dump (if any): a pg_dump file when it is as new as the server
    // (pg_dump refuses newer servers), else the archive again.
    let system_path = std::env::var("PATH").unwrap_or_default();
    let version = Command::new("pg_dump").arg("--version").output().ok().filter(|o| o.status.success());
    if let Some(v) = version {
        // "pg_dump (PostgreSQL) 15.20 (Debian …)"
        let text = String::from_utf8_lossy(&v.stdout).to_string();
        let tool: i64 =
            text.split_whitespace().nth(2).and_then(|n| n.split('.').next()?.parse().ok()).expect("version");
        let db = Db::connect(&pg.url, &ConnectOptions { max_connections: 1, pg_schema: None }).await.expect("db");
        let q = kehu_db::Raw::new("SELECT CAST(current_setting('server_version_num') AS INTEGER) / 10000", vec![]);
        let server = db.one(&q).await.expect("server version").and_then(|r| r.i64(0)).expect("server version");
        db.close().await;
        let out = dir.join("system-pg_dump.backup");
        let o = backup(dir, &pg.url, &out, &system_path);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        if tool >= server {
            assert!(kehu_db::backup::is_pg_dump(&out), "pg_dump {tool} on server {server}: its own format");
            assert!(stdout.contains("(pg_dump, "), "{stdout}");
        } else {
            assert_eq!(loaded_dump(dir, &out).await, source, "pg_dump {tool} on server {server}: the archive");
            assert!(stdout.contains("(Kehu archive, "), "{stdout}");
        }
    }
    drop(pg);
}
