//! The recycle bin and field history in headless Chromium: a contact's city is changed in
//! place and set back from the history page; two contacts are deleted from their pages, both
//! ticked at once with the header box in the recycle bin and restored. Screenshots at desktop
//! and phone width go to `target/screenshots/`.

use crate::browser::{first_admin, fresh_app, Driver};
use kehu_core::perm::Actor;
use serde_json::json;
use std::time::Duration;

async fn js(d: &Driver, script: &str) -> serde_json::Value {
    d.cmd(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_revert_and_recycle_bin() {
    let Some(d) = Driver::start().await else { return };
    let (app, base, _dir) = fresh_app().await;
    first_admin(&d, &base).await;
    let sys = Actor::system();
    let mk = |name: &str, city: &str| serde_json::from_value(json!({"name": name, "city": city})).unwrap();
    let a = app.create(&sys, "contact", &mk("赵敏", "上海")).await.unwrap();
    let b = app.create(&sys, "contact", &mk("周芷若", "峨眉")).await.unwrap();
    app.update(&sys, "contact", a.id, 1, &serde_json::from_value(json!({"city": "杭州"})).unwrap()).await.unwrap();

    // History: the change is listed; "restore this value" (confirmed) sets 上海 back.
    d.go(&format!("{base}/o/contact/{}", a.id)).await;
    d.click("#record-history").await;
    d.wait_for("history-table").await;
    d.screenshot("history-desktop").await;
    js(&d, "window.confirm = function () { return true; }; return 1;").await;
    d.click("#history .actions button").await;
    d.wait_for("history-notice").await;
    assert_eq!(app.get(&sys, "contact", a.id).await.unwrap().get("city"), &json!("上海"));

    // Delete both from their record pages.
    for id in [a.id, b.id] {
        d.go(&format!("{base}/o/contact/{id}")).await;
        js(&d, "window.confirm = function () { return true; }; return 1;").await;
        d.click("#delete-record").await;
        for _ in 0..50 {
            if !d.url().await.contains(&id.to_string()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(app.get(&sys, "contact", a.id).await.is_err());

    // The recycle bin from the navigation: tick all, restore.
    d.go(&format!("{base}/")).await;
    d.click("a[href='/recycle-bin']").await;
    d.wait_for("bin-list").await;
    let page = d.source().await;
    assert!(page.contains("赵敏") && page.contains("周芷若"));
    d.screenshot("recycle-bin-desktop").await;
    d.click("#bin-select-page").await;
    d.click("#bin-restore").await;
    d.wait_for("bin-notice").await;
    assert!(d.source().await.contains("已恢复 2 条"));
    assert!(app.get(&sys, "contact", a.id).await.is_ok() && app.get(&sys, "contact", b.id).await.is_ok());

    // Phone width: nothing wider than the screen.
    app.delete(&sys, "contact", b.id, None).await.unwrap();
    d.size(375, 812).await;
    d.go(&format!("{base}/recycle-bin")).await;
    d.wait_for("bin-list").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    d.screenshot("recycle-bin-phone").await;
    let wide = js(&d, "var w = document.documentElement.clientWidth, out = []; document.querySelectorAll('main *').forEach(function (e) { var r = e.getBoundingClientRect(); if (r.right > w + 1) out.push(e.tagName + '.' + e.className + ':' + Math.round(r.right)); }); return out.slice(0, 8).join(' | ');").await;
    assert_eq!(wide.as_str(), Some(""), "nothing wider than the phone");
    d.go(&format!("{base}/o/contact/{}/history", a.id)).await;
    d.wait_for("history-table").await;
    d.screenshot("history-phone").await;
    let wide = js(&d, "var w = document.documentElement.clientWidth, out = []; document.querySelectorAll('main *').forEach(function (e) { var r = e.getBoundingClientRect(); if (r.right > w + 1) out.push(e.tagName + '.' + e.className + ':' + Math.round(r.right)); }); return out.slice(0, 8).join(' | ');").await;
    assert_eq!(wide.as_str(), Some(""), "nothing wider than the phone");
    d.quit().await;
}
