//! The REST API: token authentication and scopes, every route for a custom object, `If-Match`,
//! errors in the caller's language, no mass assignment, masking in JSON, HTML and search.

use crate::support::*;
use axum::http::{Method, StatusCode};
use kehu_app::auth::TokenScope;
use serde_json::json;

async fn token_auth_and_scopes(t: TestWeb) {
    let _admin = t.admin().await;
    t.user("admin2@kehu.test", "admin").await;
    let rep = t.user("rep@kehu.test", "sales_rep").await;
    let (token, _) = t.app.create_api_token(rep, "整合", &[TokenScope::Read], Some(30)).await.unwrap();
    let api = t.api(&token);
    let me = api.get("/api/v1/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!((me.json()["email"].as_str(), me.json()["role"].as_str()), (Some("rep@kehu.test"), Some("sales_rep")));
    // A read-only token cannot write.
    let w = api.post("/api/v1/contact", json!({"name": "张伟"})).await;
    assert_eq!((w.status, w.code()), (StatusCode::FORBIDDEN, "token.scope_missing".into()));
    assert_eq!(count(&t, "o_contact").await, 0);
    // Wrong, revoked or expired tokens: 401 with a JSON error in the caller's language.
    let mut bad = t.api("kehu_not-a-token");
    bad.lang = Some("en");
    let r = bad.get("/api/v1/me").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "auth.invalid_token".into()));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("API token"));
    let id = t.app.api_tokens(rep).await.unwrap()[0].id;
    t.app.revoke_api_token(rep, id).await.unwrap();
    assert_eq!(api.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
    // No credentials at all.
    let anon = t.browser();
    let r = anon.get("/api/v1/contact").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "auth.required".into()));
    // A disabled user's token stops working.
    let (tok2, _) = t.app.create_api_token(rep, "second", &[TokenScope::Read, TokenScope::Write], None).await.unwrap();
    let api2 = t.api(&tok2);
    assert_eq!(api2.get("/api/v1/contact").await.status, StatusCode::OK);
    let sys = kehu_core::perm::Actor::system();
    t.app
        .update_user(&sys, rep, &kehu_app::admin::UserPatch { is_active: Some(false), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(api2.get("/api/v1/contact").await.status, StatusCode::UNAUTHORIZED);
    // Tokens made in the UI: shown once, then usable.
    let admin = t.login("admin2@kehu.test").await;
    admin.get("/account/tokens").await;
    let page = admin
        .post_form(
            "/account/tokens",
            &[("name", "ERP 同步"), ("scope", "read"), ("scope", "write"), ("expires_in_days", "90")],
        )
        .await;
    let i = page.body.find("id=\"new-token\">").expect("token shown") + 15;
    let ui_token = page.body[i..i + page.body[i..].find('<').unwrap()].to_string();
    assert_eq!(t.api(&ui_token).get("/api/v1/me").await.json()["scopes"], json!(["read", "write"]));
    let listed = admin.get("/account/tokens").await.body;
    assert!(listed.contains("ERP 同步") && !listed.contains(&ui_token), "listed by name, never shown again");
    // Tokens are stored hashed.
    let rows = t.app.db.all(&kehu_db::Raw::new("SELECT token_hash FROM api_tokens", vec![])).await.unwrap();
    assert!(rows.iter().all(|r| r.str(0) != Some(tok2.as_str())));
}
both!(token_auth_and_scopes);

async fn custom_object_every_route(t: TestWeb) {
    let _admin = t.admin().await;
    let admin_id =
        t.app.db.one(&kehu_db::Raw::new("SELECT id FROM users", vec![])).await.unwrap().unwrap().uuid(0).unwrap();
    let (token, _) = t.app.create_api_token(admin_id, "ci", &TokenScope::ALL, None).await.unwrap();
    let mut api = t.api(&token);
    api.lang = Some("en");
    // Metadata: a custom object and its fields.
    let o = api
        .post("/api/v1/meta/objects", json!({"api_name": "project", "label": {"en": "Project", "zh-CN": "项目"}, "plural": {"en": "Projects", "zh-CN": "项目"}}))
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.body);
    let f = api
        .post(
            "/api/v1/meta/objects/project/fields",
            json!({"api_name": "budget", "type": "integer", "label": {"en": "Budget", "zh-CN": "预算"}, "filterable": true}),
        )
        .await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let f = api
        .post(
            "/api/v1/meta/objects/project/fields",
            json!({"api_name": "stage", "type": "select", "label": {"en": "Stage", "zh-CN": "阶段"},
                   "options": {"choices": [{"key": "plan", "label": {"en": "Plan", "zh-CN": "计划"}}, {"key": "done", "label": {"en": "Done", "zh-CN": "完成"}}]}}),
        )
        .await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let patched = api
        .call(
            Method::PATCH,
            "/api/v1/meta/objects/project/fields/budget",
            Some(json!({"label": {"en": "Budget (CNY)", "zh-CN": "预算（元）"}})),
            &[],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let meta = api.get("/api/v1/meta/objects/project").await.json();
    assert!(meta["fields"].as_array().unwrap().iter().any(|f| f["api_name"] == "stage" && f["type"] == "select"));
    assert!(api
        .get("/api/v1/meta/objects")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["api_name"] == "project"));
    // Create.
    let c = api.post("/api/v1/project", json!({"name": "华东扩张", "budget": 500000, "stage": "plan"})).await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    assert_eq!(c.headers.get("etag").unwrap(), "\"1\"");
    let id = c.json()["id"].as_str().unwrap().to_string();
    // Unknown members are refused: no mass assignment.
    let mass = api.post("/api/v1/project", json!({"name": "x", "owner_id": admin_id.to_string(), "version": 9})).await;
    assert_eq!(mass.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(mass.json()["error"]["fields"][0]["code"], "field.unknown");
    // The profile language (zh-CN) wins over Accept-Language.
    assert_eq!(mass.json()["error"]["fields"][0]["message"], "未知字段。");
    let bad = api.post("/api/v1/project", json!({"name": "y", "stage": "nope"})).await;
    assert_eq!(bad.json()["error"]["fields"][0]["field"], "stage");
    let bad_search = api.post("/api/v1/project/search", json!({"filter": null, "order_by": "x"})).await;
    assert_eq!(
        (bad_search.status, bad_search.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "request.unknown_field".into())
    );
    // List, search, get.
    let list = api.get("/api/v1/project?count=exact").await;
    assert_eq!((list.status, list.json()["total"].as_u64()), (StatusCode::OK, Some(1)));
    let s = api
        .post(
            "/api/v1/project/search",
            json!({"filter": {"field": "budget", "op": "gte", "value": 100000}, "sort": "-budget"}),
        )
        .await;
    assert_eq!(s.json()["data"][0]["id"], id.as_str());
    let s = api.post("/api/v1/project/search", json!({"q": "华东"})).await;
    assert_eq!(s.json()["data"][0]["id"], id.as_str(), "{}", s.body);
    let g = api.get(&format!("/api/v1/project/{id}")).await;
    assert_eq!((g.status, g.json()["fields"]["stage"].as_str()), (StatusCode::OK, Some("plan")));
    // PATCH needs If-Match; a stale version is 412 and changes nothing.
    let path = format!("/api/v1/project/{id}");
    let no = api.call(Method::PATCH, &path, Some(json!({"stage": "done"})), &[]).await;
    assert_eq!((no.status, no.code()), (StatusCode::PRECONDITION_REQUIRED, "request.precondition_required".into()));
    let ok = api.call(Method::PATCH, &path, Some(json!({"budget": 600000})), &[("if-match", "\"1\"")]).await;
    assert_eq!((ok.status, ok.json()["version"].as_i64()), (StatusCode::OK, Some(2)), "{}", ok.body);
    let stale = api.call(Method::PATCH, &path, Some(json!({"stage": "done"})), &[("if-match", "\"1\"")]).await;
    assert_eq!((stale.status, stale.code()), (StatusCode::PRECONDITION_FAILED, "record.precondition_failed".into()));
    let g = api.get(&path).await.json();
    assert_eq!(
        (g["version"].as_i64(), g["fields"]["stage"].as_str(), g["fields"]["budget"].as_i64()),
        (Some(2), Some("plan"), Some(600000))
    );
    // Delete, the recycle bin, restore.
    let d = api.call(Method::DELETE, &path, None, &[("if-match", "W/\"2\"")]).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.body);
    assert_eq!(api.get(&path).await.status, StatusCode::NOT_FOUND);
    let bin = api.get("/api/v1/project?deleted=true").await.json();
    assert_eq!(bin["data"][0]["id"], id.as_str());
    let r = api.post(&format!("{path}/restore"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(api.get(&path).await.status, StatusCode::OK);
    // Errors in the user's language when no Accept-Language is sent (admin: zh-CN).
    api.lang = None;
    let e = api.get("/api/v1/nothing_here").await;
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    assert_eq!(e.json()["error"]["message"], "对象不存在。");
    // The custom object is in the OpenAPI document with its field types.
    let doc = api.get("/api/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/project/{id}"]["patch"].is_object());
    let props = &doc["components"]["schemas"]["project.fields"]["properties"];
    assert_eq!(props["budget"]["type"], "integer");
    assert_eq!(props["stage"]["enum"], json!(["plan", "done"]));
    // A read-only caller of the same data cannot create objects.
    let (ro, _) = t.app.create_api_token(admin_id, "ro", &[TokenScope::Read, TokenScope::Write], None).await.unwrap();
    let r = t
        .api(&ro)
        .post(
            "/api/v1/meta/objects",
            json!({"api_name": "x2", "label": {"en": "X", "zh-CN": "X"}, "plural": {"en": "X", "zh-CN": "X"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "token.scope_missing".into()));
}
both!(custom_object_every_route);

async fn masking_everywhere(t: TestWeb) {
    let admin = t.admin().await;
    let admin_id =
        t.app.db.one(&kehu_db::Raw::new("SELECT id FROM users", vec![])).await.unwrap().unwrap().uuid(0).unwrap();
    let viewer_id = t.user("viewer@kehu.test", "read_only").await;
    let sys = kehu_core::perm::Actor::system();
    let c = t
        .app
        .create(
            &sys,
            "contact",
            &serde_json::from_value(json!({"name": "张伟", "phone": "13800138000", "email": "zhang.wei@example.com"}))
                .unwrap(),
        )
        .await
        .unwrap();
    let (vt, _) = t.app.create_api_token(viewer_id, "v", &[TokenScope::Read], None).await.unwrap();
    let viewer = t.api(&vt);
    let path = format!("/api/v1/contact/{}", c.id);
    let g = viewer.get(&path).await.json();
    assert_eq!(
        (g["fields"]["phone"].as_str(), g["fields"]["email"].as_str()),
        (Some("138****8000"), Some("z***@example.com"))
    );
    let l = viewer.get("/api/v1/contact").await.json();
    assert_eq!(l["data"][0]["fields"]["phone"], "138****8000");
    let r = viewer.get(&format!("{path}?reveal=true")).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "permission.reveal_denied".into()));
    // HTML: the record page, the list and the search suggestions.
    let vb = t.login("viewer@kehu.test").await;
    for page in [
        format!("/o/contact/{}", c.id),
        "/o/contact".into(),
        "/search/suggest?q=8000".into(),
        "/search?q=%E5%BC%A0%E4%BC%9F".into(),
    ] {
        let body = vb.get(&page).await.body;
        assert!(body.contains("138****8000") || body.contains("z***@example.com"), "{page} shows masked values");
        assert!(!body.contains("13800138000") && !body.contains("zhang.wei@example.com"), "{page} leaks");
    }
    assert!(
        !vb.get(&format!("/o/contact/{}", c.id)).await.body.contains("id=\"reveal\""),
        "no reveal button without the permission"
    );
    let vtoken = vb.csrf.lock().unwrap().clone();
    let refused = vb
        .send(
            Method::POST,
            &format!("/o/contact/{}/reveal", c.id),
            &[("hx-request", "true"), ("x-csrf-token", &vtoken)],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // An admin sees masked values too, until revealing, which is audited.
    let page = admin.get(&format!("/o/contact/{}", c.id)).await.body;
    assert!(page.contains("138****8000") && page.contains("id=\"reveal\""));

    let token = admin.csrf.lock().unwrap().clone();
    let shown = admin
        .send(
            Method::POST,
            &format!("/o/contact/{}/reveal", c.id),
            &[("hx-request", "true"), ("x-csrf-token", &token)],
            axum::body::Body::empty(),
        )
        .await;
    assert!(shown.body.contains("13800138000") && shown.body.contains("zhang.wei@example.com"), "{}", shown.body);
    let (at, _) = t.app.create_api_token(admin_id, "a", &[TokenScope::Read], None).await.unwrap();
    let g = t.api(&at).get(&format!("{path}?reveal=true")).await.json();
    assert_eq!(g["fields"]["email"], "zhang.wei@example.com");
    let audited = t
        .app
        .db
        .one(&kehu_db::Raw::new(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'record.revealed' AND actor_id = $1",
            vec![admin_id.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .i64(0);
    assert_eq!(audited, Some(2), "each reveal audited");
}
both!(masking_everywhere);

/// Token scopes are enforced where the caller is built (issue #14): every documented operation
/// refuses a token without its scope before the handler runs. The table is the specification;
/// an operation added to the API without a line here fails the test.
async fn every_operation_checks_its_scope(t: TestWeb) {
    use std::collections::BTreeSet;
    let spec: &[(&str, &str, &str)] = &[
        ("delete", "/api/v1/meta/objects/{object}", "admin"),
        ("delete", "/api/v1/webhooks/{id}", "admin"),
        ("delete", "/api/v1/{object}/{id}", "write"),
        ("get", "/api/v1/me", ""),
        ("get", "/api/v1/meta/objects", "read"),
        ("get", "/api/v1/meta/objects/{object}", "read"),
        ("get", "/api/v1/webhooks", "admin"),
        ("get", "/api/v1/webhooks/{id}", "admin"),
        ("get", "/api/v1/webhooks/{id}/deliveries", "admin"),
        ("get", "/api/v1/{object}", "read"),
        ("get", "/api/v1/{object}/{id}", "read"),
        ("get", "/api/v1/{object}/{id}/history", "read"),
        ("patch", "/api/v1/meta/objects/{object}", "admin"),
        ("patch", "/api/v1/meta/objects/{object}/fields/{field}", "admin"),
        ("patch", "/api/v1/{object}/{id}", "write"),
        ("post", "/api/v1/meta/objects", "admin"),
        ("post", "/api/v1/meta/objects/{object}/fields", "admin"),
        ("post", "/api/v1/meta/objects/{object}/restore", "admin"),
        ("post", "/api/v1/webhooks", "admin"),
        ("post", "/api/v1/webhooks/{id}/replay", "admin"),
        ("post", "/api/v1/webhooks/{id}/rotate", "admin"),
        ("post", "/api/v1/webhooks/{id}/test", "admin"),
        ("post", "/api/v1/{object}", "write"),
        ("post", "/api/v1/{object}/merge", "write"),
        ("post", "/api/v1/{object}/search", "read"),
        ("post", "/api/v1/{object}/aggregate", "read"),
        ("post", "/api/v1/{object}/{id}/history/{change}/revert", "write"),
        ("post", "/api/v1/{object}/{id}/purge", "admin"),
        ("post", "/api/v1/{object}/{id}/restore", "write"),
        ("put", "/api/v1/meta/objects/{object}/fields/order", "admin"),
        ("put", "/api/v1/webhooks/{id}", "admin"),
    ];
    t.admin().await;
    let q = kehu_db::Raw::new("SELECT id FROM users WHERE email = 'admin@kehu.test'", vec![]);
    let me = t.app.db.one(&q).await.unwrap().and_then(|r| r.uuid(0)).unwrap();
    let (all, _) = t.app.create_api_token(me, "全部", &TokenScope::ALL, Some(1)).await.unwrap();
    let doc = t.api(&all).get("/api/openapi.json").await.json();
    // The document's operations under /api/v1 (the generic ones, not each object's copies).
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Typed copies per object (`/api/v1/contact/…`, `/api/v1/meta/objects/contact`) share
        // their generic operation's handler and are left out.
        let segs: Vec<&str> = path.split('/').collect();
        let typed_meta = path.starts_with("/api/v1/meta/objects/") && segs.get(5).is_some_and(|s| *s != "{object}");
        let generic = path == "/api/v1/me"
            || path.starts_with("/api/v1/meta")
            || path.starts_with("/api/v1/webhooks")
            || path.contains("{object}");
        if !generic || typed_meta {
            continue;
        }
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_string(), path.clone()));
            }
        }
    }
    let specified: BTreeSet<_> = spec.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, specified, "every operation has its scope in this table");
    let id = kehu_core::Uuid::now_v7().to_string();
    for (method, path, scope) in spec {
        let url = path
            .replace("{object}", "contact")
            .replace("{id}", &id)
            .replace("{field}", "name")
            .replace("{change}", &id);
        let m: Method = method.to_uppercase().parse().unwrap();
        let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
        for missing in TokenScope::ALL {
            let others: Vec<TokenScope> = TokenScope::ALL.into_iter().filter(|s| *s != missing).collect();
            let (tok, _) = t.app.create_api_token(me, "缺一个", &others, Some(1)).await.unwrap();
            let r = t.api(&tok).call(m.clone(), &url, body.clone(), &[]).await;
            let refused = r.status == StatusCode::FORBIDDEN && r.code() == "token.scope_missing";
            let needed = *scope == missing.key();
            assert_eq!(refused, needed, "{method} {path} without {missing:?}: {} {}", r.status, r.body);
        }
    }
}
both!(every_operation_checks_its_scope);

/// `POST /api/v1/{object}/aggregate`: counts and sums by a select and a month, within the
/// token's user's scope, each group's filter listing its records through the list endpoint;
/// bad requests get translated 422s; the document describes it.
async fn aggregate_endpoint(t: TestWeb) {
    let _admin = t.admin().await;
    let rep = t.user("rep@kehu.test", "sales_rep").await;
    let sys = kehu_core::perm::Actor::system();
    for (i, stage) in ["lead", "lead", "customer", "lead"].iter().enumerate() {
        let owner = if i < 3 { Some(rep.to_string()) } else { None };
        let input =
            json!({"name": format!("联系人{i}"), "lifecycle_stage": stage, "score": 10 * (i + 1), "owner": owner});
        t.app.create(&sys, "contact", input.as_object().unwrap()).await.unwrap();
    }
    let (token, _) = t.app.create_api_token(rep, "报表", &[TokenScope::Read], None).await.unwrap();
    // Labels and errors come in the user's language (Chinese here).
    let api = t.api(&token);
    let body = json!({
        "group_by": [{"field": "lifecycle_stage"}, {"field": "created_at", "bucket": "month"}],
        "measures": [{"op": "count"}, {"op": "sum", "field": "score"}],
        "time_zone": "Asia/Shanghai"
    });
    let r = api.post("/api/v1/contact/aggregate", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    // The rep owns three of the four: two leads (10 + 20) and one customer (30).
    assert_eq!(j["total"]["values"], json!([3, 60]));
    let groups = j["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[0]["keys"][0]["value"].as_str(), groups[0]["keys"][0]["label"].as_str()),
        (Some("lead"), Some("线索"))
    );
    assert_eq!(groups[0]["values"], json!([2, 30]));
    assert_eq!(groups[1]["values"], json!([1, 30]));
    // A group's filter lists exactly its records.
    let f = serde_json::to_string(&groups[0]["filter"]).unwrap();
    let list = api.get(&format!("/api/v1/contact?count=exact&filter={}", urlencoding(&f))).await;
    assert_eq!(list.json()["total"], json!(2), "{}", list.body);
    // Bad input: translated errors, nothing else.
    let bad = api.post("/api/v1/contact/aggregate", json!({"measures": [{"op": "sum", "field": "name"}]})).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::UNPROCESSABLE_ENTITY, "aggregate.measure_not_supported".into()));
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("数字或金额"), "{}", bad.body);
    let keys = json!({"group_by": [{"field": "city"}, {"field": "owner"}, {"field": "lifecycle_stage"}]});
    let bad = api.post("/api/v1/contact/aggregate", keys).await;
    assert_eq!(bad.code(), "aggregate.too_many_keys");
    let bad = api.post("/api/v1/contact/aggregate", json!({"group_by": [{"field": "city", "bucket": "month"}]})).await;
    assert_eq!(bad.code(), "aggregate.bucket_not_date");
    let bad = api.post("/api/v1/contact/aggregate", json!({"colour": "red"})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    // In the OpenAPI document.
    let doc = api.get("/api/openapi.json").await.json();
    assert!(doc["paths"]["/api/v1/{object}/aggregate"]["post"].is_object());
    assert!(doc["components"]["schemas"]["AggregateBody"].is_object());
}
both!(aggregate_endpoint);

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
