//! The import survives `kill -9`: a file of N contacts (`KEHU_CRASH_ROWS`, default 20,000) is
//! queued with `kehu import --queue`, then `kehu serve` (whose worker runs the import) is
//! killed with SIGKILL at random moments at least 20 times and restarted each time. At the
//! end: exactly N contacts, no duplicate e-mail, every row accounted for once in the undo log,
//! and `PRAGMA integrity_check` = ok.

use kehu_db::conn::ConnectOptions;
use kehu_db::{Db, Raw};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KILLS: usize = 20;

fn kehu(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kehu"));
    c.env("KEHU_DATA_DIR", dir.join("data"))
        .env("KEHU_LISTEN", "127.0.0.1:0")
        .env("KEHU_LOG", "warn")
        .env_remove("KEHU_DATABASE_URL")
        .env_remove("KEHU_CONFIG")
        .current_dir(dir);
    c
}

/// A small deterministic generator (no dependency for one test).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

async fn one_i64(db: &Db, sql: &str) -> i64 {
    db.one(&Raw::new(sql, vec![])).await.expect(sql).and_then(|r| r.i64(0)).unwrap_or(-1)
}

async fn state(url: &str) -> (String, i64) {
    let db = Db::connect(url, &ConnectOptions { max_connections: 1, pg_schema: None }).await.expect("open");
    let r = db.one(&Raw::new("SELECT state, created FROM imports", vec![])).await.expect("state");
    db.close().await;
    r.map(|r| (r.string(0).unwrap_or_default(), r.i64(1).unwrap_or(0))).unwrap_or_default()
}

fn serve(dir: &std::path::Path) -> Child {
    kehu(dir).arg("serve").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("kehu serve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_survives_kill_9() {
    let n: usize = std::env::var("KEHU_CRASH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let url = format!("sqlite://{}", dir.join("data/kehu.db").display());
    let mut user = kehu(dir)
        .args(["user", "create", "--admin", "--email", "crash@kehu.test", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kehu user create");
    use std::io::Write;
    user.stdin.take().expect("stdin").write_all(b"Crash-Test-Passphrase-2026!\n").expect("password");
    assert!(user.wait().expect("wait").success());
    let mut csv = String::from("姓名,邮箱,手机,城市,公司\r\n");
    for i in 0..n {
        csv.push_str(&format!("客户{i},c{i}@example.cn,139{i:08},上海,公司{}\r\n", i % 50));
    }
    std::fs::write(dir.join("contacts.csv"), csv).expect("csv");
    let out = kehu(dir)
        .args(["import", "--object", "contact", "--file", "contacts.csv", "--mode", "upsert", "--key", "email"])
        .args(["--create-missing", "--queue"])
        // Ten batches, so that kills land between and inside them.
        .env("KEHU_IMPORT_BATCH_ROWS", (n / 10).max(100).to_string())
        .output()
        .expect("kehu import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut rng = Lcg(std::env::var("KEHU_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6b656875));
    let started = Instant::now();
    let mut kills = 0;
    let mut seen = Vec::new();
    while kills < KILLS {
        let mut child = serve(dir);
        let wait = 150 + rng.next(900);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        child.kill().expect("SIGKILL"); // kill -9
        child.wait().expect("reap");
        kills += 1;
        let (st, created) = state(&url).await;
        seen.push(created);
        eprintln!("kill {kills} after {wait} ms: {st}, {created}/{n} rows");
    }
    // Restart once more and let it finish.
    let mut child = serve(dir);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (st, _) = state(&url).await;
        if st == "done" || st == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "import did not finish");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    eprintln!(
        "{n} rows, {KILLS} kills, {:.1} s in all; progress at the kills: {seen:?}",
        started.elapsed().as_secs_f64()
    );
    let db = Db::connect(&url, &ConnectOptions { max_connections: 1, pg_schema: None }).await.expect("open");
    let (st, created) = state(&url).await;
    assert_eq!((st.as_str(), created), ("done", n as i64));
    assert_eq!(
        one_i64(&db, "SELECT COUNT(*) FROM o_contact WHERE deleted_at IS NULL").await,
        n as i64,
        "exact row count"
    );
    assert_eq!(one_i64(&db, "SELECT COUNT(DISTINCT f_email) FROM o_contact").await, n as i64, "no duplicates");
    assert_eq!(one_i64(&db, "SELECT COUNT(*) FROM o_company WHERE deleted_at IS NULL").await, 50, "each company once");
    assert_eq!(one_i64(&db, "SELECT COUNT(*) FROM import_changes").await, n as i64 + 50, "undo log: every record once");
    assert_eq!(one_i64(&db, "SELECT COUNT(*) FROM audit_log WHERE action = 'create'").await, n as i64 + 50);
    assert_eq!(one_i64(&db, "SELECT COUNT(*) FROM search_docs").await, n as i64 + 50, "indexed once");
    assert_eq!(one_i64(&db, "SELECT COUNT(*) FROM import_chunks").await, 0);
    let ok = db.one(&Raw::new("PRAGMA integrity_check", vec![])).await.expect("pragma").and_then(|r| r.string(0));
    assert_eq!(ok.as_deref(), Some("ok"));
    db.close().await;
    assert!(seen.iter().any(|&c| c > 0 && c < n as i64), "some kills landed mid-import: {seen:?}");
}
