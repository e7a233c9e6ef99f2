//! The backups page and `/readyz`: "Back up now" writes a file and a run, the last successful
//! backup is shown (and reported by `/readyz`), the schedule is validated and saved, a
//! scheduled period runs once and retention keeps the last K files; administrators only, CSRF.

use crate::support::*;
use axum::http::StatusCode;
use kehu_app::backup::{BackupSettings, BackupTarget};
use kehu_db::Raw;

async fn target(t: &TestWeb, dir: &std::path::Path) -> BackupTarget {
    let schema = match t.app.db.backend() {
        kehu_db::Backend::Sqlite => None,
        kehu_db::Backend::Postgres => {
            t.app.db.one(&Raw::new("SELECT current_schema()::text", vec![])).await.unwrap().and_then(|r| r.string(0))
        }
    };
    let url = std::env::var("KEHU_TEST_POSTGRES_URL").unwrap_or_default();
    BackupTarget { dir: dir.join("backups"), url, pg_schema: schema }
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

async fn backup_page_run_schedule_readyz(t: TestWeb) {
    let dir = tempfile::tempdir().unwrap();
    t.app.set_backup_target(target(&t, dir.path()).await);
    let admin = t.admin().await;
    assert_eq!(admin.get("/readyz").await.json()["backup"], "never");
    let page = admin.get("/admin/backup").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("还没有任何备份") && page.body.contains("id=\"backup-schedule\""), "{}", page.body);
    // CSRF is required; then "Back up now" writes a file and records the run.
    assert_eq!(admin.post_raw("/admin/backup/run", &[]).await.status, StatusCode::FORBIDDEN);
    assert!(files(dir.path()).is_empty());
    let r = admin.post_form("/admin/backup/run", &[]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/admin/backup"), "{}", r.body);
    let written = files(dir.path());
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].starts_with("kehu-manual-"));
    let page = admin.get("/admin/backup").await;
    assert!(page.body.contains(&written[0]) && !page.body.contains("还没有任何备份"));
    let ready = admin.get("/readyz").await.json();
    assert_eq!(ready["status"], "ready");
    assert!(ready["backup"]["last_success"].is_string() && ready["backup"]["age_seconds"].as_i64() < Some(60));
    // The schedule: bad values are refused with translated messages and nothing saved.
    let bad = admin.post_form("/admin/backup", &[("enabled", "on"), ("every_hours", "0"), ("keep", "x")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("1 到 720") && bad.body.contains("1 到 1000"), "{}", bad.body);
    assert_eq!(t.app.backup_settings().await.unwrap(), BackupSettings::default());
    let ok = admin.post_form("/admin/backup", &[("enabled", "on"), ("every_hours", "6"), ("keep", "2")]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(t.app.backup_settings().await.unwrap(), BackupSettings { enabled: true, every_hours: 6, keep: 2 });
    // Scheduled: one run per period (a second call in the same period does nothing), and
    // only the last two scheduled files stay; the manual one is not pruned.
    let hour = 3_600_000_000i64;
    // Periods are fixed 6-hour slots of the clock: start at a slot's beginning so that
    // `now + hour` stays in the same slot whatever time the test runs at.
    let base = kehu_core::now_micros() / (6 * hour) * (6 * hour);
    for p in 0..4 {
        let now = base + p * 6 * hour;
        assert!(t.app.run_due_backup(now).await.unwrap().is_some(), "period {p}");
        assert!(t.app.run_due_backup(now + hour).await.unwrap().is_none(), "period {p} ran twice");
    }
    let after = files(dir.path());
    assert_eq!(after.iter().filter(|f| f.starts_with("kehu-scheduled-")).count(), 2, "{after:?}");
    assert!(after.contains(&written[0]));
    let pruned = t.app.db.one(&Raw::new("SELECT COUNT(*) FROM backups WHERE pruned_at IS NOT NULL", vec![])).await;
    assert_eq!(pruned.unwrap().and_then(|r| r.i64(0)), Some(2));
    // Not for other users.
    t.user("rep@kehu.test", "sales_rep").await;
    let rep = t.login("rep@kehu.test").await;
    assert_eq!(rep.get("/admin/backup").await.status, StatusCode::FORBIDDEN);
    assert_eq!(rep.post_form("/admin/backup/run", &[]).await.status, StatusCode::FORBIDDEN);
    assert!(!rep.get("/").await.body.contains("/admin/backup"));
    assert_eq!(files(dir.path()).len(), after.len());
}
both!(backup_page_run_schedule_readyz);
