//! Tags typed as text split the same way everywhere — the REST API, the in-place editor, the
//! list's bulk "set field" and an import — on `,` `;` `、` `|` (and the full-width `，` `；`),
//! through one function (`kehu_core::value::split_list`).

use crate::support::*;
use axum::http::{Method, StatusCode};
use kehu_app::auth::TokenScope;
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use serde_json::json;

const TYPED: &str = "a、b;c,d|e";

fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap()
}

async fn tags_of(t: &TestWeb, id: Uuid) -> serde_json::Value {
    t.app.get(&Actor::system(), "contact", id).await.unwrap().get("tags").clone()
}

async fn tags_split_alike_everywhere(t: TestWeb) {
    let admin = t.admin().await;
    let admin_id =
        t.app.db.one(&kehu_db::Raw::new("SELECT id FROM users", vec![])).await.unwrap().unwrap().uuid(0).unwrap();
    let want = json!(["a", "b", "c", "d", "e"]);

    // The REST API, tags given as one string.
    let (token, _) =
        t.app.create_api_token(admin_id, "tags", &[TokenScope::Read, TokenScope::Write], None).await.unwrap();
    let api = t.api(&token);
    let r = api.post("/api/v1/contact", json!({"name": "接口", "tags": TYPED})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["fields"]["tags"], want, "API");
    let id: Uuid = r.json()["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(tags_of(&t, id).await, want);
    // A list given as a list is taken as it is: no splitting inside an element.
    let r = api
        .call(Method::PATCH, &format!("/api/v1/contact/{id}"), Some(json!({"tags": ["x;y"]})), &[("if-match", "\"1\"")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(tags_of(&t, id).await, json!(["x;y"]));

    // The in-place editor on the record page.
    let c = t.app.create(&Actor::system(), "contact", &obj(json!({"name": "编辑器"}))).await.unwrap();
    admin.get(&format!("/o/contact/{}", c.id)).await;
    let r = htmx_post(&admin, &format!("/o/contact/{}/field/tags", c.id), &[("_version", "1"), ("tags", TYPED)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(tags_of(&t, c.id).await, want, "editor");
    // The list's bulk "set field" takes tags as typed text too.
    let other = t.app.create(&Actor::system(), "contact", &obj(json!({"name": "批量"}))).await.unwrap();
    admin.get("/o/contact").await;
    let id = other.id.to_string();
    let r = htmx_post(
        &admin,
        "/o/contact/bulk",
        &[("state", "st=1"), ("action", "set_field"), ("field", "tags"), ("value", TYPED), ("ids", &id)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(tags_of(&t, other.id).await, want, "bulk set");

    // An import (a quoted cell, so the separators stay inside it).
    let actor = t.app.actor(admin_id).await.unwrap();
    let csv = format!("name,email,tags\r\n导入,import@example.cn,\"{TYPED}\"\r\n另一位,other@example.cn,f\r\n");
    let imp = t.app.import_upload(&actor, "contact", "tags.csv", csv.as_bytes(), None).await.unwrap();
    let s = t.app.import_settings(&actor, imp).await.unwrap();
    assert_eq!(s.columns, [Some("name".to_string()), Some("email".to_string()), Some("tags".to_string())]);
    t.app.import_configure(&actor, imp, &s, None).await.unwrap();
    t.app.import_start(&actor, imp).await.unwrap();
    while t.app.run_jobs().await.unwrap() > 0 {}
    let v = t.app.import_view(&actor, imp).await.unwrap();
    assert_eq!((v.state.as_str(), v.counts.created, v.counts.failed), ("done", 2, 0));
    let req = kehu_app::ListRequest {
        filter: Some(json!({"field": "email", "op": "eq", "value": "import@example.cn"})),
        ..Default::default()
    };
    let imported = t.app.list(&Actor::system(), "contact", &req).await.unwrap().records;
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].get("tags"), &want, "import");
}
both!(tags_split_alike_everywhere);
