//! The webhooks pages and API (issue #14): administrators add an endpoint (the secret shown
//! once), bad URLs get translated field errors, the allow-list, test event, rotation, delivery
//! log and replay; others get 403; the API needs the admin scope.

use crate::support::*;
use axum::http::{Method, StatusCode};
use kehu_app::auth::TokenScope;
use serde_json::json;

async fn admin_actor(t: &TestWeb) -> kehu_core::perm::Actor {
    let q = kehu_db::Raw::new("SELECT id FROM users WHERE email = 'admin@kehu.test'", vec![]);
    let id = t.app.db.one(&q).await.unwrap().and_then(|r| r.uuid(0)).unwrap();
    t.app.actor(id).await.unwrap()
}

async fn webhook_pages_and_api(t: TestWeb) {
    let admin = t.admin().await;
    let page = admin.get("/admin/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("还没有 Webhook") && page.body.contains("id=\"webhook-add\""), "{}", page.body);
    // A bad URL: a translated message under the field, nothing stored.
    let bad = admin.post_form("/admin/webhooks", &[("url", "ftp://erp.example.com"), ("objects", "company")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("请填写完整的 http:// 或 https:// 地址"), "{}", bad.body);
    assert_eq!(count(&t, "webhook_endpoints").await, 0);
    // CSRF is required.
    assert_eq!(
        admin.post_raw("/admin/webhooks", &[("url", "https://erp.example.com/h")]).await.status,
        StatusCode::FORBIDDEN
    );
    let ok = admin
        .post_form(
            "/admin/webhooks",
            &[
                ("url", "https://erp.example.com/h"),
                ("description", "金蝶 ERP"),
                ("objects", "company"),
                ("events", "record.created"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(ok.body.contains("请立即复制此签名密钥") && ok.body.contains("whsec_"), "the secret, once");
    let list = admin.get("/admin/webhooks").await;
    assert!(list.body.contains("https://erp.example.com/h") && !list.body.contains("whsec_"), "never again");
    let ep = t.app.webhooks(&admin_actor(&t).await).await.unwrap();
    assert_eq!(
        (ep.len(), ep[0].objects.clone(), ep[0].events.clone()),
        (1, vec!["company".to_string()], vec!["record.created".to_string()])
    );
    let id = ep[0].id;
    // The detail page: test event queued and listed; rotation shows the new secret once.
    let r = admin.post_form(&format!("/admin/webhooks/{id}/test"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let detail = admin.get(&format!("/admin/webhooks/{id}")).await;
    assert!(detail.body.contains("webhook.test") && detail.body.contains("等待发送"), "{}", detail.body);
    let rot = admin.post_form(&format!("/admin/webhooks/{id}/rotate"), &[]).await;
    assert!(rot.body.contains("新的签名密钥") && rot.body.contains("whsec_"));
    // Edit: disable it, change the URL.
    let saved = admin
        .post_form(&format!("/admin/webhooks/{id}"), &[("url", "https://erp.example.com/v2"), ("objects", "contact")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let e = &t.app.webhooks(&admin_actor(&t).await).await.unwrap()[0];
    assert_eq!(
        (e.url.as_str(), e.enabled, e.objects.clone()),
        ("https://erp.example.com/v2", false, vec!["contact".to_string()])
    );
    // The allow-list: a bad host is refused with its message; a good list is saved.
    let bad = admin.post_form("/admin/webhooks/allow", &[("hosts", "erp.intra\nnot a host!")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("请填写主机名或 IP 地址"), "{}", bad.body);
    admin.post_form("/admin/webhooks/allow", &[("hosts", "ERP.intra\n10.0.0.5")]).await;
    assert_eq!(t.app.webhook_allow_hosts().await.unwrap(), ["erp.intra", "10.0.0.5"]);
    // Others: 403, and no menu entry.
    t.user("rep@kehu.test", "manager").await;
    let m = t.login("rep@kehu.test").await;
    assert_eq!(m.get("/admin/webhooks").await.status, StatusCode::FORBIDDEN);
    assert_eq!(m.post_form("/admin/webhooks", &[("url", "https://x.example.com")]).await.status, StatusCode::FORBIDDEN);
    assert!(!m.get("/").await.body.contains("/admin/webhooks"));
    // The API: the admin scope is needed; create answers the secret; deliveries are listed.
    let admin_id = admin_actor(&t).await.user_id.unwrap();
    let (read, _) = t.app.create_api_token(admin_id, "只读", &[TokenScope::Read], Some(30)).await.unwrap();
    assert_eq!(t.api(&read).get("/api/v1/webhooks").await.status, StatusCode::FORBIDDEN);
    let (tok, _) = t.app.create_api_token(admin_id, "集成", &[TokenScope::Admin], Some(30)).await.unwrap();
    let api = t.api(&tok);
    let r = api
        .post("/api/v1/webhooks", json!({"url": "https://crm-sync.example.com/in", "events": ["record.updated"]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let created = r.json();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let new_id = created["endpoint"]["id"].as_str().unwrap().to_string();
    let r = api.post("/api/v1/webhooks", json!({"url": "http://user:pw@x.example.com"})).await;
    assert_eq!(
        (r.status, r.json()["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("webhook.invalid_url"))
    );
    let r = api.post("/api/v1/webhooks", json!({"url": "https://x.example.com", "secret": "mine"})).await;
    assert_eq!(r.code(), "request.unknown_field");
    assert_eq!(api.get("/api/v1/webhooks").await.json().as_array().unwrap().len(), 2);
    let r = api.post(&format!("/api/v1/webhooks/{new_id}/test"), json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let log = api.get(&format!("/api/v1/webhooks/{new_id}/deliveries")).await.json();
    assert_eq!(log[0]["event"], "webhook.test");
    let r = api
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{new_id}/replay?delivery={}", log[0]["id"].as_str().unwrap()),
            None,
            &[],
        )
        .await;
    assert_eq!(r.json()["queued"], 1);
    let r = api.call(Method::POST, &format!("/api/v1/webhooks/{new_id}/rotate?overlap_hours=1"), None, &[]).await;
    assert!(r.json()["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        api.call(Method::DELETE, &format!("/api/v1/webhooks/{new_id}"), None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get(&format!("/api/v1/webhooks/{new_id}")).await.code(), "webhook.not_found");
    assert_eq!(count(&t, "webhook_deliveries").await, 1, "its deliveries went with it");
    // Delete from the page.
    let r = admin.post_form(&format!("/admin/webhooks/{id}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(count(&t, "webhook_endpoints").await, 0);
}
both!(webhook_pages_and_api);
