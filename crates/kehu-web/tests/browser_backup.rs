//! The backups page in headless Chromium: "Back up now" shows the last successful backup, the
//! schedule is saved, and at phone width (390 px) nothing is wider than the screen. Screenshots
//! go to `target/screenshots/`.

use crate::browser::{first_admin, fresh_app, Driver};
use kehu_app::backup::BackupTarget;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_up_now_and_schedule() {
    let Some(d) = Driver::start().await else { return };
    let (app, base, dir) = fresh_app().await;
    app.set_backup_target(BackupTarget { dir: dir.path().join("backups"), url: String::new(), pg_schema: None });
    first_admin(&d, &base).await;
    d.go(&format!("{base}/admin/backup")).await;
    d.wait_for("还没有任何备份").await;
    d.click("#backup-run button[type=submit]").await;
    d.wait_for("备份已写入").await;
    d.wait_for("kehu-manual-").await;
    assert!(!d.source().await.contains("还没有任何备份"));
    d.click("#b-enabled").await;
    d.type_in("#b-every", "12").await;
    d.type_in("#b-keep", "5").await;
    d.click("#backup-schedule button[type=submit]").await;
    d.wait_for("已保存").await;
    let s = app.backup_settings().await.unwrap();
    assert_eq!((s.enabled, s.every_hours, s.keep), (true, 12, 5));
    d.screenshot("backup-desktop").await;
    d.size(390, 844).await;
    d.go(&format!("{base}/admin/backup")).await;
    d.wait_for("backup-runs").await;
    d.screenshot("backup-phone").await;
    let script = "var w = document.documentElement.clientWidth, out = []; document.querySelectorAll('body *').forEach(function (e) { var r = e.getBoundingClientRect(); if (r.right > w + 1) out.push(e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 20) + ':' + Math.round(r.right)); }); return out.slice(0, 8).join(' | ');";
    let wide =
        d.cmd(reqwest::Method::POST, "/execute/sync", Some(serde_json::json!({"script": script, "args": []}))).await;
    assert_eq!(wide.as_str(), Some(""), "nothing wider than the phone");
    d.quit().await;
}
