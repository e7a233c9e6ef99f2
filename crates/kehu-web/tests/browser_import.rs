//! Import in headless Chromium: from the contact list's Import button, upload a CSV, adjust
//! the mapping (upsert by e-mail, create missing companies), see the dry run, start, watch the
//! progress bar, read the report, and undo the import; screenshots at desktop and phone width.

use crate::browser::{first_admin, fresh_app, Driver};
use kehu_core::perm::Actor;
use serde_json::json;
use std::time::Duration;

/// Wait (up to a minute) until the page shows `what`.
async fn wait_long(d: &Driver, what: &str) {
    for _ in 0..600 {
        if d.source().await.contains(what) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("page never showed {what:?}: {}", d.url().await);
}

async fn live_contacts(app: &kehu_app::App) -> i64 {
    let q = kehu_db::Raw::new("SELECT COUNT(*) FROM o_contact WHERE deleted_at IS NULL", vec![]);
    app.db.one(&q).await.unwrap().and_then(|r| r.i64(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_map_check_import_and_undo() {
    let Some(d) = Driver::start().await else { return };
    let (app, base, dir) = fresh_app().await;
    // Batches of 2,000 rows: the check and the import both run as jobs with progress.
    app.set_import_batch_rows(2000);
    let _work = kehu_app::work::spawn(app.clone());
    first_admin(&d, &base).await;
    let me = app.user_choices().await.unwrap()[0].0;
    let input = json!({"name": "陈静", "email": "chen.jing@example.com", "city": "温州", "owner": me.to_string()});
    let chen = app.create(&Actor::system(), "contact", input.as_object().unwrap()).await.unwrap();
    // A file big enough to watch the progress bar: one row updates 陈静, the rest are new.
    let n = 6000;
    let mut csv = String::from(
        "\u{feff}Name,Email,Mobile,Company,City\r\n陈静,chen.jing@example.com,13900139001,Acme 中国,杭州\r\n",
    );
    for i in 0..n {
        csv.push_str(&format!(
            "客户{i},c{i}@example.cn,137{i:08},{},上海\r\n",
            ["星辰科技", "云帆贸易", "海纳电子"][i % 3]
        ));
    }
    let file = dir.path().join("contacts-browser.csv");
    std::fs::write(&file, csv).unwrap();

    d.go(&format!("{base}/o/contact")).await;
    d.wait_for("import-link").await;
    d.click("#import-link").await;
    d.wait_for("upload-form").await;
    d.screenshot("import-upload-desktop").await;
    d.keys("#import-file", &file.display().to_string()).await;
    d.click("#upload-submit").await;
    wait_long(&d, "mapping-form").await;
    let src = d.source().await;
    assert!(src.contains("<option value=\"email\" selected"), "English headers matched");
    d.click("input[name=mode][value=upsert]").await;
    d.click("#import-key option[value=email]").await;
    d.click("#import-create-missing").await;
    d.screenshot("import-mapping-desktop").await;
    d.size(390, 844).await;
    let here = d.url().await;
    d.go(&here).await;
    d.wait_for("mapping-form").await;
    d.screenshot("import-mapping-phone").await;
    d.size(1280, 900).await;
    d.go(&here).await;
    d.wait_for("mapping-form").await;
    d.click("input[name=mode][value=upsert]").await;
    d.click("#import-key option[value=email]").await;
    d.click("#import-create-missing").await;
    d.type_in("#import-save-as", "展会名单").await;
    d.click("#mapping-submit").await;
    // The check's progress, then (the page follows by itself) its answer.
    wait_long(&d, "id=\"count-created\"").await;
    let src = d.source().await;
    assert!(src.contains(&format!("id=\"count-created\">{n}<")), "dry run counts");
    assert!(src.contains("id=\"count-updated\">1<") && src.contains("id=\"count-related\">4<"));
    assert_eq!(live_contacts(&app).await, 1, "nothing written by the check");
    d.screenshot("import-check-desktop").await;
    // Back on the mapping page, the check is linked; the link leads back to it.
    let check_page = d.url().await;
    d.go(check_page.trim_end_matches("/check")).await;
    d.wait_for("check-link").await;
    d.screenshot("import-check-link-desktop").await;
    d.click("#check-link a").await;
    wait_long(&d, "id=\"start-import\"").await;
    d.click("#start-import").await;
    wait_long(&d, "import-progress").await;
    d.screenshot("import-progress-desktop").await;
    wait_long(&d, "import-report").await;
    let src = d.source().await;
    assert!(src.contains(&format!("id=\"count-created\">{n}<")) && src.contains("id=\"count-updated\">1<"));
    assert_eq!(live_contacts(&app).await, n as i64 + 1);
    let c = app.get(&Actor::system(), "contact", chen.id).await.unwrap();
    assert_eq!(c.get("city"), "杭州");
    d.screenshot("import-report-desktop").await;
    d.size(390, 844).await;
    let here = d.url().await;
    d.go(&here).await;
    d.wait_for("import-report").await;
    d.screenshot("import-report-phone").await;
    d.size(1280, 900).await;
    d.go(&here).await;
    d.wait_for("import-report").await;
    // Undo (the confirmation answered yes).
    d.cmd(
        reqwest::Method::POST,
        "/execute/sync",
        Some(json!({"script": "window.confirm = function () { return true; }; return 1;", "args": []})),
    )
    .await;
    d.click("#undo-import").await;
    wait_long(&d, "undo-result").await;
    d.screenshot("import-undone-desktop").await;
    assert_eq!(live_contacts(&app).await, 1);
    let c = app.get(&Actor::system(), "contact", chen.id).await.unwrap();
    assert_eq!((c.get("city"), c.get("phone")), (&json!("温州"), &json!(null)), "陈静 as before the import");
    d.go(&format!("{base}/o/contact/imports")).await;
    d.wait_for("contacts-browser.csv").await;
    d.size(390, 844).await;
    d.go(&format!("{base}/o/contact/imports")).await;
    d.wait_for("contacts-browser.csv").await;
    d.screenshot("import-history-phone").await;
    // The same kind of file again, its columns in another order: the saved mapping by name.
    d.size(1280, 900).await;
    let other = dir.path().join("contacts-again.csv");
    std::fs::write(&other, "\u{feff}City,Email,Name\r\n上海,new@example.cn,新客户\r\n").unwrap();
    d.go(&format!("{base}/o/contact/import")).await;
    d.wait_for("upload-form").await;
    d.keys("#import-file", &other.display().to_string()).await;
    d.click("#upload-submit").await;
    wait_long(&d, "saved-mappings").await;
    d.click("#saved-mapping option:nth-child(2)").await;
    d.click("#apply-mapping").await;
    wait_long(&d, "applied-mapping").await;
    let src = d.source().await;
    assert!(src.contains("value=\"upsert\" checked"), "the saved mode came along");
    d.screenshot("import-saved-mapping-desktop").await;
    d.size(390, 844).await;
    let here = d.url().await;
    d.go(&here).await;
    d.wait_for("applied-mapping").await;
    d.screenshot("import-saved-mapping-phone").await;
    d.quit().await;
}
