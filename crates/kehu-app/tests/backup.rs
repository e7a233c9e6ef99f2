//! Backups taken while writers keep creating and updating records restore to a consistent
//! database equal to the source at the backup moment; restore keeps the replaced database and
//! refuses damaged files and running servers; migrations that alter tables are preceded by a
//! backup.
//!
//! How "the source at the backup moment" is computed: each writer runs steps of two engine
//! writes (create contact `w<k>-<i>`, then update its city), logging each commit in order.
//! The restored database must show, per writer, exactly a prefix of that log (`cut`). The
//! writes after each cut are then undone on the source, statement by statement, with their
//! journal (a create: the row and its audit, history, outbox and search rows; an update: the
//! city, version and stamps back to the created state and the update's audit, history and
//! outbox rows; the search document does not change because the city is not searchable). The
//! canonical dump of what is left must equal the restored database's dump, every table.

use crate::support::*;
use kehu_app::backup::BackupTarget;
use kehu_core::Uuid;
use kehu_db::archive::dump;
use kehu_db::conn::ConnectOptions;
use kehu_db::{Backend, Db, Raw};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const WRITERS: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Create(Uuid),
    Update(Uuid),
}

type Log = Arc<Mutex<Vec<Op>>>;

/// Start writers; returns their logs, the stop flag, the number of committed writes, the tasks.
fn start_writers(t: &TestApp) -> (Vec<Log>, Arc<AtomicBool>, Arc<AtomicUsize>, Vec<tokio::task::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut logs = Vec::new();
    let mut handles = Vec::new();
    for k in 0..WRITERS {
        let log = Arc::new(Mutex::new(Vec::new()));
        logs.push(log.clone());
        let (app, stop, done) = (t.app.clone(), stop.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            let a = system();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let input = obj(json!({"name": format!("w{k}-{i}"), "phone": format!("139{k}{i:07}")}));
                let r = app.create(&a, "contact", &input).await.expect("create");
                log.lock().unwrap().push(Op::Create(r.id));
                done.fetch_add(1, Ordering::Relaxed);
                let patch = obj(json!({"city": format!("城市{i}")}));
                app.update(&a, "contact", r.id, r.version, &patch).await.expect("update");
                log.lock().unwrap().push(Op::Update(r.id));
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    (logs, stop, done, handles)
}

async fn wait_for(done: &AtomicUsize, n: usize) {
    for _ in 0..6000 {
        if done.load(Ordering::Relaxed) >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("writers stalled at {}", done.load(Ordering::Relaxed));
}

/// Versions of the writers' contacts in `db` (absent: not there).
async fn versions(db: &Db) -> std::collections::HashMap<Uuid, i64> {
    let rows = db.all(&Raw::new("SELECT id, version FROM o_contact WHERE f_name LIKE 'w%-%'", vec![])).await.unwrap();
    rows.iter().map(|r| (r.uuid(0).unwrap(), r.i64(1).unwrap())).collect()
}

/// Check the prefix property; undo on the source every write after each writer's cut.
async fn undo_after_cut(src: &Db, restored: &Db, logs: &[Log]) -> (usize, usize) {
    let seen = versions(restored).await;
    let (mut kept, mut undone) = (0, 0);
    for log in logs {
        let log = log.lock().unwrap().clone();
        let visible = |op: &Op| match op {
            Op::Create(id) => seen.contains_key(id),
            Op::Update(id) => seen.get(id) == Some(&2),
        };
        let cut = log.iter().take_while(|op| visible(op)).count();
        assert!(log[cut..].iter().all(|op| !visible(op)), "restored writes are not a prefix of the writer's log");
        kept += cut;
        undone += log.len() - cut;
        let mut tx = src.begin().await.unwrap();
        for op in log[cut..].iter().rev() {
            let stmts: Vec<&str> = match op {
                Op::Create(_) => vec![
                    "DELETE FROM o_contact WHERE id = $1",
                    "DELETE FROM audit_log WHERE record_id = $1",
                    "DELETE FROM field_history WHERE record_id = $1",
                    "DELETE FROM outbox WHERE record_id = $1",
                    "DELETE FROM search_docs WHERE record_id = $1",
                ],
                Op::Update(_) => vec![
                    "UPDATE o_contact SET f_city = NULL, version = 1, updated_at = created_at, updated_by = created_by WHERE id = $1",
                    "DELETE FROM audit_log WHERE record_id = $1 AND action = 'update'",
                    "DELETE FROM field_history WHERE record_id = $1",
                    "DELETE FROM outbox WHERE record_id = $1 AND event = 'record.updated'",
                ],
            };
            let (Op::Create(id) | Op::Update(id)) = op;
            for s in stmts {
                tx.exec(&Raw::new(s, vec![(*id).into()])).await.unwrap();
            }
        }
        tx.commit().await.unwrap();
    }
    (kept, undone)
}

/// Every restored writer record has its audit, outbox and search rows (and its history when
/// updated): a backup never holds half a write.
async fn journal_complete(db: &Db) {
    let q = "SELECT c.id, c.version, \
        (SELECT COUNT(*) FROM audit_log a WHERE a.record_id = c.id), \
        (SELECT COUNT(*) FROM outbox o WHERE o.record_id = c.id), \
        (SELECT COUNT(*) FROM search_docs s WHERE s.record_id = c.id), \
        (SELECT COUNT(*) FROM field_history h WHERE h.record_id = c.id) \
        FROM o_contact c WHERE c.f_name LIKE 'w%-%'";
    let rows = db.all(&Raw::new(q, vec![])).await.unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        let v = r.i64(1).unwrap();
        assert_eq!((r.i64(2), r.i64(3), r.i64(4), r.i64(5)), (Some(v), Some(v), Some(1), Some(v - 1)), "{r:?}");
    }
}

#[derive(Clone, Copy)]
enum Method {
    /// SQLite `VACUUM INTO`.
    Vacuum,
    /// The archive, loaded into a fresh SQLite instance.
    Archive,
    /// `pg_dump`, restored with `pg_restore` into a new database.
    PgDump,
}

async fn backup_under_writes(t: TestApp, method: Method) {
    org(&t).await;
    let dir = tempfile::tempdir().unwrap();
    let (logs, stop, done, handles) = start_writers(&t);
    wait_for(&done, 60).await;
    let path = dir.path().join("backup");
    // The restored database (and what keeps it alive).
    let mut keep_alive: Option<TestApp> = None;
    let mut pg_db: Option<String> = None;
    let mut drop_db: Option<String> = None;
    match method {
        Method::Vacuum => {
            kehu_db::backup::vacuum_into(&t.db, &path).await.unwrap();
        }
        Method::Archive => {
            kehu_db::archive::write::export(&t.db, &path, "test").await.unwrap();
        }
        Method::PgDump => {
            let url = std::env::var("KEHU_TEST_POSTGRES_URL").unwrap();
            let schema = t.db.one(&Raw::new("SELECT current_schema()::text", vec![])).await.unwrap();
            let schema = schema.and_then(|r| r.string(0)).unwrap();
            let (u, s, p) = (url.clone(), schema.clone(), path.clone());
            tokio::task::spawn_blocking(move || kehu_db::backup::pg_dump(&u, Some(&s), &p)).await.unwrap().unwrap();
            pg_db = Some(schema);
        }
    }
    let at_backup = done.load(Ordering::Relaxed);
    wait_for(&done, at_backup + 60).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.unwrap();
    }
    let restored: Db = match method {
        Method::Vacuum => {
            let v = kehu_db::backup::check_sqlite_file(&path).await.unwrap();
            assert!(v.contains(&10) && v.contains(&1001));
            let url = format!("sqlite://{}", path.display());
            Db::connect(&url, &ConnectOptions::default()).await.unwrap()
        }
        Method::Archive => {
            let fresh = sqlite().await;
            kehu_db::archive::load::import(&fresh.db, &path).await.unwrap();
            let db = fresh.db.clone();
            keep_alive = Some(fresh);
            db
        }
        Method::PgDump => {
            let base = std::env::var("KEHU_TEST_POSTGRES_URL").unwrap();
            let name = format!("kehu_restore_{}", Uuid::now_v7().simple());
            let admin = Db::connect(&base, &ConnectOptions::default()).await.unwrap();
            admin.exec_raw(&format!("CREATE DATABASE {name}")).await.unwrap();
            drop_db = Some(name.clone());
            admin.close().await;
            let (prefix, _) = base.rsplit_once('/').unwrap();
            let url = format!("{prefix}/{name}");
            // A dump of one schema leaves out extensions; a whole-database dump carries them.
            let db = Db::connect(&url, &ConnectOptions::default()).await.unwrap();
            db.exec_raw("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public").await.unwrap();
            db.close().await;
            let (u, p) = (url.clone(), path.clone());
            tokio::task::spawn_blocking(move || kehu_db::backup::pg_restore(&u, &p)).await.unwrap().unwrap();
            let opts = ConnectOptions { max_connections: 2, pg_schema: pg_db.clone() };
            Db::connect(&url, &opts).await.unwrap()
        }
    };
    if restored.backend() == Backend::Sqlite {
        let ok = restored.one(&Raw::new("PRAGMA integrity_check", vec![])).await.unwrap().and_then(|r| r.string(0));
        assert_eq!(ok.as_deref(), Some("ok"));
    }
    journal_complete(&restored).await;
    let (kept, undone) = undo_after_cut(&t.db, &restored, &logs).await;
    assert!(kept >= 60 && undone >= 60, "kept {kept}, undone {undone}");
    let want = dump::dump_string(&t.db).await.unwrap();
    let got = dump::dump_string(&restored).await.unwrap();
    if let Some(d) = dump::first_difference(&want, &got) {
        panic!("restored backup differs from the source at the backup moment: {d}");
    }
    restored.close().await;
    drop(keep_alive);
    if let Some(name) = drop_db {
        let admin = Db::connect(&std::env::var("KEHU_TEST_POSTGRES_URL").unwrap(), &ConnectOptions::default()).await;
        admin.unwrap().exec_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_vacuum_into_under_writes() {
    backup_under_writes(sqlite().await, Method::Vacuum).await
}

async fn archive_under_writes(t: TestApp) {
    backup_under_writes(t, Method::Archive).await
}
both!(archive_under_writes);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_dump_under_writes() {
    let Some(t) = postgres().await else { return };
    if !kehu_db::backup::pg_dump_available() {
        eprintln!("pg_dump not installed: skipped");
        return;
    }
    backup_under_writes(t, Method::PgDump).await
}

/// Restore: the backup replaces the database, the old one is kept; a damaged file or a
/// running server is refused and the database is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_restore_keeps_the_old_database() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("kehu.db");
    let url = format!("sqlite://{}", db_path.display());
    let app = kehu_app::App::open(&url, &ConnectOptions::default()).await.unwrap();
    let a = system();
    app.create(&a, "company", &obj(json!({"name": "备份前"}))).await.unwrap();
    let backup = dir.path().join("b.db");
    kehu_db::backup::vacuum_into(&app.db, &backup).await.unwrap();
    let at_backup = dump::dump_string(&app.db).await.unwrap();
    app.create(&a, "company", &obj(json!({"name": "备份后"}))).await.unwrap();
    let later = dump::dump_string(&app.db).await.unwrap();
    // While a server holds the database, restore is refused.
    let lock = kehu_db::backup::ServerLock::acquire(&db_path).unwrap();
    let e = kehu_db::backup::restore_sqlite(&db_path, &backup).await.unwrap_err();
    assert_eq!(e.code, "backup.server_running");
    drop(lock);
    app.db.close().await;
    // Damaged and foreign files are refused; nothing changes.
    let bytes = std::fs::read(&backup).unwrap();
    let cut = dir.path().join("cut.db");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database").unwrap();
    for (f, codes) in
        [(&cut, ["backup.damaged", "backup.not_sqlite"]), (&text, ["backup.not_sqlite", "backup.not_sqlite"])]
    {
        let e = kehu_db::backup::restore_sqlite(&db_path, f).await.unwrap_err();
        assert!(codes.contains(&e.code.as_str()), "{}: {e:?}", f.display());
    }
    let db = Db::connect(&url, &ConnectOptions::default()).await.unwrap();
    assert_eq!(dump::dump_string(&db).await.unwrap(), later, "a refused restore changed the database");
    db.close().await;
    // A good backup restores; the replaced database is kept beside it.
    let kept = kehu_db::backup::restore_sqlite(&db_path, &backup).await.unwrap().unwrap();
    assert!(kept.to_string_lossy().ends_with(".before-restore"));
    let db = Db::connect(&url, &ConnectOptions::default()).await.unwrap();
    assert_eq!(dump::dump_string(&db).await.unwrap(), at_backup);
    db.close().await;
    let old = Db::connect(&format!("sqlite://{}", kept.display()), &ConnectOptions::default()).await.unwrap();
    assert_eq!(dump::dump_string(&old).await.unwrap(), later);
    old.close().await;
}

/// A database that already holds a schema is backed up before a pending migration that alters
/// existing tables; a fresh database, or one whose pending migrations only add tables, is not.
async fn backup_before_altering_migrations(t: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let target = BackupTarget {
        dir: dir.path().join("backups"),
        url: std::env::var("KEHU_TEST_POSTGRES_URL").unwrap_or_default(),
        pg_schema: t
            .db
            .one(&Raw::new("SELECT current_schema()::text", vec![]))
            .await
            .ok()
            .flatten()
            .and_then(|r| r.string(0)),
    };
    assert!(kehu_db::migrate::needs_backup(&t.db).await.unwrap().is_empty(), "all applied");
    assert!(kehu_app::backup::before_migrations(&t.db, &target).await.unwrap().is_none());
    // Pretend migration 10 (new table only) is pending: no backup.
    t.db.write(&Raw::new("DELETE FROM schema_migrations WHERE version = 10", vec![])).await.unwrap();
    assert!(kehu_db::migrate::needs_backup(&t.db).await.unwrap().is_empty());
    // Pretend migration 6 (alters meta_fields and meta_objects) is pending: a backup first.
    t.db.write(&Raw::new("DELETE FROM schema_migrations WHERE version = 6", vec![])).await.unwrap();
    assert_eq!(kehu_db::migrate::needs_backup(&t.db).await.unwrap(), vec![6]);
    let file = kehu_app::backup::before_migrations(&t.db, &target).await.unwrap().expect("a backup");
    assert!(file.exists() && file.starts_with(&target.dir), "{}", file.display());
    assert!(file.file_name().unwrap().to_string_lossy().starts_with("kehu-before-migration-6-"));
    if t.db.backend() == Backend::Sqlite {
        kehu_db::backup::check_sqlite_file(&file).await.unwrap();
    }
    // A fresh database needs none.
    let fresh_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", fresh_dir.path().join("new.db").display());
    let fresh = Db::connect(&url, &ConnectOptions::default()).await.unwrap();
    assert!(kehu_db::migrate::needs_backup(&fresh).await.unwrap().is_empty());
}
both!(backup_before_altering_migrations);
