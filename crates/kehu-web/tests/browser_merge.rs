//! Duplicates and merging in headless Chromium: two contacts with the same phone typed
//! differently (one named 张伟), the warning while typing the second, the duplicates page, the
//! merge taking one value from each, landing on the survivor. Screenshots of the warning and
//! the merge page at desktop and phone width go to `target/screenshots/`.

use crate::browser::{first_admin, fresh_app, Driver};
use std::time::Duration;

/// Wait until the browser has left a page whose URL contains `path`.
async fn left(d: &Driver, path: &str) {
    for _ in 0..50 {
        if !d.url().await.contains(path) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("still on {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_warning_and_merge() {
    let Some(d) = Driver::start().await else { return };
    let (_app, base, _dir) = fresh_app().await;
    first_admin(&d, &base).await;

    // The first contact.
    d.go(&format!("{base}/o/contact/new")).await;
    d.type_in("#f-name", "张伟").await;
    d.type_in("#f-email", "zhangwei@huaxia.cn").await;
    d.type_in("#f-phone", "+86 138-0013-8000").await;
    d.click("#record-form button[type=submit]").await;
    left(&d, "/o/contact/new").await;
    let first = d.url().await.rsplit('/').next().unwrap().to_string();

    // The second: the warning appears while typing the phone number.
    d.go(&format!("{base}/o/contact/new")).await;
    d.type_in("#f-name", "Zhang Wei").await;
    d.type_in("#f-email", "zw@gmail.com").await;
    d.type_in("#f-job_title", "CTO").await;
    d.type_in("#f-phone", "138 0013 8000").await;
    d.wait_for("打开已有记录").await;
    assert!(d.source().await.contains(&format!("/o/contact/{first}")));
    d.screenshot("merge-warning-desktop").await;
    d.click("#record-form button[type=submit]").await;
    left(&d, "/o/contact/new").await;
    let second = d.url().await.rsplit('/').next().unwrap().to_string();
    assert_ne!(first, second);

    // The duplicates page, from the list.
    d.go(&format!("{base}/o/contact")).await;
    d.click("#duplicates-link").await;
    d.wait_for("疑似重复").await;
    d.go(&format!("{base}/o/contact/duplicates?by=phone")).await;
    d.wait_for("138****8000").await;
    d.click(".merge-btn").await;
    d.wait_for("merge-form").await;
    // Keep the first record; its e-mail stays (the default), the name comes from the second.
    d.click(&format!("input[name='f.name'][value='{second}']")).await;
    d.screenshot("merge-page-desktop").await;
    d.size(375, 812).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.screenshot("merge-page-phone").await;
    d.click("#merge-submit").await;
    left(&d, "/o/contact/merge").await;
    assert!(d.url().await.ends_with(&format!("/o/contact/{first}")));
    let page = d.source().await;
    assert!(page.contains("Zhang Wei") && page.contains("CTO") && page.contains("@huaxia.cn"), "merged values");
    d.screenshot("merge-survivor-phone").await;

    // The warning at phone width.
    d.go(&format!("{base}/o/contact/new")).await;
    d.type_in("#f-phone", "13800138000").await;
    d.wait_for("打开已有记录").await;
    d.screenshot("merge-warning-phone").await;
    d.quit().await;
}
