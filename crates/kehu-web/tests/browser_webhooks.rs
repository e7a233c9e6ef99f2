//! The webhooks pages in headless Chromium: add an endpoint (the secret shown once), allow the
//! local receiver's host, send a test event and see it delivered in the log with its attempt;
//! at phone width nothing is wider than the screen. Screenshots go to `target/screenshots/`.

use crate::browser::{first_admin, fresh_app, Driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_test_and_read_the_log() {
    let Some(d) = Driver::start().await else { return };
    let (app, base, _dir) = fresh_app().await;
    // A receiver on this machine: allowed only once its host is on the intranet list.
    let got = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let g = got.clone();
    let route = axum::routing::post(move || {
        let g = g.clone();
        async move {
            *g.lock().unwrap() += 1;
            "收到"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://127.0.0.1:{}/kehu", l.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(l, axum::Router::new().route("/kehu", route)).await.unwrap() });

    first_admin(&d, &base).await;
    d.go(&format!("{base}/admin/webhooks")).await;
    d.wait_for("还没有 Webhook").await;
    d.type_in("#w-url", &hook).await;
    d.type_in("#w-desc", "金蝶云星空").await;
    d.click("#webhook-add input[value=company]").await;
    d.click("#webhook-add button[type=submit]").await;
    d.wait_for("请立即复制此签名密钥").await;
    assert!(d.source().await.contains("whsec_"));
    d.screenshot("webhooks-added-desktop").await;
    d.type_in("#w-hosts", "127.0.0.1").await;
    d.click("#webhook-allow button[type=submit]").await;
    d.wait_for("已保存").await;
    assert!(!d.source().await.contains("whsec_"), "the secret is shown once");
    d.click("#webhooks a[href^='/admin/webhooks/']").await;
    d.wait_for("webhook-edit").await;
    d.click("#webhook-test").await;
    d.wait_for("测试事件已排队").await;
    d.wait_for("等待发送").await;
    // The pump (kehu serve runs it in the background) sends it.
    assert_eq!(app.send_webhooks().await.unwrap(), 1);
    assert_eq!(*got.lock().unwrap(), 1);
    d.go(&d.url().await).await;
    d.wait_for("已送达").await;
    d.click("#webhook-log a").await;
    d.wait_for("webhook-delivery").await;
    d.wait_for("收到").await;
    d.screenshot("webhook-log-desktop").await;
    d.size(390, 844).await;
    d.go(&d.url().await).await;
    d.wait_for("webhook-log").await;
    d.screenshot("webhook-log-phone").await;
    let script = "var w = document.documentElement.clientWidth, out = []; document.querySelectorAll('body *').forEach(function (e) { var r = e.getBoundingClientRect(); if (r.right > w + 1) out.push(e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 20) + ':' + Math.round(r.right)); }); return out.slice(0, 8).join(' | ');";
    let wide =
        d.cmd(reqwest::Method::POST, "/execute/sync", Some(serde_json::json!({"script": script, "args": []}))).await;
    assert_eq!(wide.as_str(), Some(""), "nothing wider than the phone");
    d.quit().await;
}
