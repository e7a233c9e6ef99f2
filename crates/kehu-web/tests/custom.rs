//! Customisation from the UI (Settings → Objects & fields): a select field added through the
//! web form shows in the form, the record JSON, OpenAPI, API filters and search; reorder and
//! archive; custom objects created, used and deleted (archived, restorable); a rep can change
//! nothing; bad input gets translated field errors and writes nothing.

use crate::support::*;
use axum::http::{Method, StatusCode};
use kehu_app::auth::TokenScope;
use serde_json::{json, Value};

async fn user_id(t: &TestWeb, email: &str) -> kehu_core::Uuid {
    let q = kehu_db::Raw::new("SELECT id FROM users WHERE email = $1", vec![email.into()]);
    t.app.db.one(&q).await.unwrap().and_then(|r| r.uuid(0)).expect("user")
}

async fn admin_api(t: &TestWeb) -> Api {
    let id = user_id(t, "admin@kehu.test").await;
    let scopes = [TokenScope::Read, TokenScope::Write, TokenScope::Admin];
    let (token, _) = t.app.create_api_token(id, "custom", &scopes, None).await.unwrap();
    t.api(&token)
}

/// The tier field: 客户等级 with options A/B/C in three colours.
const TIER: &[(&str, &str)] = &[
    ("type", "select"),
    ("label_zh", "客户等级"),
    ("label_en", "Customer tier"),
    ("api_name", ""),
    ("in_form", "on"),
    ("filterable", "on"),
    ("choice_key", ""),
    ("choice_pos", "1"),
    ("choice_zh", "A"),
    ("choice_en", "A"),
    ("choice_color", "red"),
    ("choice_state", "active"),
    ("choice_key", ""),
    ("choice_pos", "2"),
    ("choice_zh", "B"),
    ("choice_en", "B"),
    ("choice_color", "green"),
    ("choice_state", "active"),
    ("choice_key", ""),
    ("choice_pos", "3"),
    ("choice_zh", "C"),
    ("choice_en", "C"),
    ("choice_color", "blue"),
    ("choice_state", "active"),
    ("choice_key", ""),
    ("choice_pos", "4"),
    ("choice_zh", ""),
    ("choice_en", ""),
    ("choice_color", "gray"),
    ("choice_state", "active"),
];

async fn add_tier(b: &Browser) {
    b.get("/settings/objects/contact/fields/new?type=select").await;
    let r = b.post_form("/settings/objects/contact/fields", TIER).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/settings/objects/contact"), "{}", r.body);
}

fn tier_field(api_json: &Value) -> Option<Value> {
    api_json["fields"].as_array()?.iter().find(|f| f["api_name"] == "customer_tier").cloned()
}

async fn select_field_everywhere(t: TestWeb) {
    let b = t.admin().await;
    let api = admin_api(&t).await;
    let page = b.get("/settings/objects").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("/settings/objects/contact") && page.body.contains("对象与字段"));
    add_tier(&b).await;
    b.get("/settings/objects/contact/fields/new?type=text").await;
    let r = b
        .post_form(
            "/settings/objects/contact/fields",
            &[
                ("type", "text"),
                ("label_zh", "微信群"),
                ("label_en", "Chat group"),
                ("api_name", "chat_group"),
                ("searchable", "on"),
                ("in_form", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let object_page = b.get("/settings/objects/contact").await.body;
    assert!(object_page.contains("客户等级") && object_page.contains("chip c-red"));
    // The form shows it with its options; a contact is created with tier A.
    let form = b.get("/o/contact/new").await.body;
    assert!(form.contains("name=\"customer_tier\"") && form.contains(">B</option>"), "{form}");
    let r = b
        .post_form("/o/contact/new", &[("name", "李雷"), ("customer_tier", "a"), ("chat_group", "Zephyrine 华东")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let show = b.get(r.location()).await.body;
    assert!(show.contains("客户等级") && show.contains(">A</span>"), "{show}");
    assert_eq!(api.post("/api/v1/contact", json!({"name": "韩梅梅"})).await.status, StatusCode::CREATED);
    // The record JSON, the metadata API and the filter.
    let filter = url::form_urlencoded::byte_serialize(
        json!({"field": "customer_tier", "op": "eq", "value": "a"}).to_string().as_bytes(),
    )
    .collect::<String>();
    let list = api.get(&format!("/api/v1/contact?filter={filter}")).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let data = list.json()["data"].as_array().cloned().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(
        (data[0]["fields"]["name"].as_str(), data[0]["fields"]["customer_tier"].as_str()),
        (Some("李雷"), Some("a"))
    );
    let meta = api.get("/api/v1/meta/objects/contact").await.json();
    let tf = tier_field(&meta).expect("tier in metadata");
    assert_eq!((tf["in_form"].as_bool(), tf["in_list"].as_bool()), (Some(true), Some(false)));
    assert_eq!(tf["options"]["choices"][0]["color"], "red");
    // OpenAPI: an enum of the choices.
    let doc = api.get("/api/openapi.json").await.json();
    assert_eq!(
        doc["components"]["schemas"]["contact.fields"]["properties"]["customer_tier"]["enum"],
        json!(["a", "b", "c"])
    );
    // Search finds the searchable text field's value.
    let hits = api.post("/api/v1/contact/search", json!({"q": "Zephyrine"})).await;
    assert_eq!(hits.status, StatusCode::OK, "{}", hits.body);
    let hits = hits.json()["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["fields"]["name"], "李雷");
    // The change is audited.
    let audited = t
        .app
        .db
        .one(&kehu_db::Raw::new("SELECT COUNT(*) FROM audit_log WHERE action = 'metadata.field_added'", vec![]))
        .await
        .unwrap()
        .and_then(|r| r.i64(0));
    assert_eq!(audited, Some(2));
}
both!(select_field_everywhere);

fn pos(body: &str, needle: &str) -> usize {
    body.find(needle).unwrap_or_else(|| panic!("{needle} not in page"))
}

async fn reorder_and_archive(t: TestWeb) {
    let b = t.admin().await;
    let api = admin_api(&t).await;
    add_tier(&b).await;
    let form = b.get("/o/contact/new").await.body;
    assert!(pos(&form, "name=\"customer_tier\"") > pos(&form, "name=\"email\""));
    // Drag-and-drop order: the tier first.
    b.get("/settings/objects/contact").await;
    let r = b.post_form("/settings/objects/contact/order", &[("order", "customer_tier"), ("order", "name")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let form = b.get("/o/contact/new").await.body;
    assert!(pos(&form, "name=\"customer_tier\"") < pos(&form, "name=\"name\""));
    // The arrow buttons: one down puts it after the name.
    b.get("/settings/objects/contact").await;
    b.post_form("/settings/objects/contact/fields/customer_tier/move", &[("dir", "down")]).await;
    let form = b.get("/o/contact/new").await.body;
    assert!(pos(&form, "name=\"name\"") < pos(&form, "name=\"customer_tier\""));
    assert!(pos(&form, "name=\"customer_tier\"") < pos(&form, "name=\"email\""));
    // A value, then archive: gone from form, API and OpenAPI; the data stays.
    let rec = api.post("/api/v1/contact", json!({"name": "张伟", "customer_tier": "b"})).await;
    assert_eq!(rec.status, StatusCode::CREATED, "{}", rec.body);
    let id = rec.json()["id"].as_str().unwrap().to_string();
    b.get("/settings/objects/contact").await;
    let r = b.post_form("/settings/objects/contact/fields/customer_tier/archive", &[("archived", "true")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!b.get("/o/contact/new").await.body.contains("customer_tier"));
    let got = api.get(&format!("/api/v1/contact/{id}")).await.json();
    assert!(got["fields"].get("customer_tier").is_none(), "{got}");
    let doc = api.get("/api/openapi.json").await.json();
    assert!(doc["components"]["schemas"]["contact.fields"]["properties"].get("customer_tier").is_none());
    assert!(tier_field(&api.get("/api/v1/meta/objects/contact").await.json()).is_none());
    let w = api.call(Method::PATCH, &format!("/api/v1/contact/{id}"), Some(json!({"customer_tier": "a"})), &[]).await;
    assert_ne!(w.status, StatusCode::OK, "an archived field cannot be written");
    let schema = t.app.schema().await.unwrap();
    let column = schema.object("contact").unwrap().field_any("customer_tier").unwrap().column.clone();
    let stored = stored_value(&t, &column).await;
    assert_eq!(stored.as_deref(), Some("b"));
    assert!(b.get("/settings/objects/contact").await.body.contains("取消归档"));
    // Unarchive: back with its data.
    let r = b.post_form("/settings/objects/contact/fields/customer_tier/archive", &[("archived", "false")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(api.get(&format!("/api/v1/contact/{id}")).await.json()["fields"]["customer_tier"], "b");
    assert!(b.get("/o/contact/new").await.body.contains("name=\"customer_tier\""));
}
both!(reorder_and_archive);

async fn stored_value(t: &TestWeb, column: &str) -> Option<String> {
    let q = kehu_db::Raw::new(format!("SELECT {column} FROM o_contact WHERE {column} IS NOT NULL"), vec![]);
    t.app.db.one(&q).await.unwrap().and_then(|r| r.string(0))
}

async fn custom_object_lifecycle(t: TestWeb) {
    let b = t.admin().await;
    let api = admin_api(&t).await;
    b.get("/settings/objects").await;
    let r = b
        .post_form(
            "/settings/objects",
            &[
                ("label_zh", "项目"),
                ("label_en", "Project"),
                ("plural_zh", ""),
                ("plural_en", "Projects"),
                ("api_name", ""),
                ("icon", "tree"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/settings/objects/project"), "{}", r.body);
    b.get("/settings/objects/project/fields/new?type=text").await;
    let r = b
        .post_form(
            "/settings/objects/project/fields",
            &[
                ("type", "text"),
                ("label_zh", "编号"),
                ("label_en", "Code"),
                ("api_name", ""),
                ("in_form", "on"),
                ("in_list", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let home = b.get("/").await.body;
    assert!(home.contains("href=\"/o/project\""));
    let form = b.get("/o/project/new").await.body;
    assert!(form.contains("name=\"code\""));
    let r = b.post_form("/o/project/new", &[("name", "华东仓储"), ("code", "P-001")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = api.post("/api/v1/project", json!({"name": "西南扩张", "code": "P-002"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(api.get("/api/v1/project").await.json()["data"].as_array().map(Vec::len), Some(2));
    assert!(b.get("/settings/objects").await.body.contains("<td>2</td>"));
    // Deleting needs the name typed.
    b.get("/settings/objects/project").await;
    let r = b.post_form("/settings/objects/project/delete", &[("confirm", "项")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("请准确输入对象名称以确认"));
    assert_eq!(api.get("/api/v1/project").await.status, StatusCode::OK);
    let r = b.post_form("/settings/objects/project/delete", &[("confirm", "项目")]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/settings/objects"));
    assert_eq!(api.get("/api/v1/project").await.status, StatusCode::NOT_FOUND);
    assert!(!b.get("/").await.body.contains("href=\"/o/project\""));
    let doc = api.get("/api/openapi.json").await.json();
    assert!(doc["components"]["schemas"].get("project.fields").is_none());
    let overview = b.get("/settings/objects").await.body;
    assert!(overview.contains("/settings/objects/project/restore"));
    // Its table and records are kept; restoring brings them back.
    let schema = t.app.schema().await.unwrap();
    let table = schema.archived_objects().iter().find(|o| o.api_name == "project").unwrap().table.clone();
    assert_eq!(count(&t, &table).await, 2);
    let r = b.post_form("/settings/objects/project/restore", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(api.get("/api/v1/project").await.json()["data"].as_array().map(Vec::len), Some(2));
    // The API deletes too (with confirmation); standard objects never.
    let r = api.call(Method::DELETE, "/api/v1/meta/objects/project?confirm=project", None, &[]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(api.get("/api/v1/project").await.status, StatusCode::NOT_FOUND);
    b.get("/settings/objects/contact").await;
    let r = b.post_form("/settings/objects/contact/delete", &[("confirm", "联系人")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api.call(Method::DELETE, "/api/v1/meta/objects/contact?confirm=contact", None, &[]).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "meta.system_object".into()));
    assert_eq!(api.get("/api/v1/contact").await.status, StatusCode::OK);
    assert!(!b.get("/settings/objects/contact").await.body.contains("id=\"delete-object\""));
}
both!(custom_object_lifecycle);

async fn meta_state(t: &TestWeb) -> (i64, i64, i64) {
    let epoch = kehu_db::meta_store::epoch(&t.app.db).await.unwrap();
    (epoch, count(t, "meta_fields").await, count(t, "meta_objects").await)
}

async fn rep_changes_nothing(t: TestWeb) {
    let admin = t.admin().await;
    add_tier(&admin).await;
    let rep_id = t.user("rep@kehu.test", "sales_rep").await;
    let rep = t.login("rep@kehu.test").await;
    let before = meta_state(&t).await;
    assert!(!rep.get("/").await.body.contains("/settings/objects"), "no settings entry for a rep");
    for path in [
        "/settings/objects",
        "/settings/objects/contact",
        "/settings/objects/contact/fields/new?type=select",
        "/settings/objects/contact/fields/customer_tier",
    ] {
        assert_eq!(rep.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    rep.get("/").await;
    for (path, form) in [
        ("/settings/objects", vec![("label_zh", "项目"), ("label_en", "Project")]),
        ("/settings/objects/contact", vec![("label_zh", "人"), ("label_en", "People"), ("icon", "box")]),
        (
            "/settings/objects/contact/fields",
            TIER.iter().map(|(k, v)| (*k, if *k == "label_zh" { "等级2" } else { *v })).collect(),
        ),
        (
            "/settings/objects/contact/fields/customer_tier",
            vec![("label_zh", "x"), ("label_en", "x"), ("api_name", "x")],
        ),
        ("/settings/objects/contact/fields/customer_tier/move", vec![("dir", "up")]),
        ("/settings/objects/contact/fields/customer_tier/archive", vec![("archived", "true")]),
        ("/settings/objects/contact/order", vec![("order", "customer_tier")]),
        ("/settings/objects/contact/delete", vec![("confirm", "contact")]),
    ] {
        assert_eq!(rep.post_form(path, &form).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let (token, _) = t.app.create_api_token(rep_id, "rep", &[TokenScope::Read, TokenScope::Write], None).await.unwrap();
    let api = t.api(&token);
    let label = json!({"en": "X", "zh-CN": "X"});
    for (m, path, body) in [
        (Method::POST, "/api/v1/meta/objects", Some(json!({"api_name": "x", "label": label, "plural": label}))),
        (
            Method::POST,
            "/api/v1/meta/objects/contact/fields",
            Some(json!({"api_name": "x", "type": "text", "label": label})),
        ),
        (Method::PATCH, "/api/v1/meta/objects/contact/fields/customer_tier", Some(json!({"archived": true}))),
        (Method::PATCH, "/api/v1/meta/objects/contact", Some(json!({"label": label}))),
        (Method::PUT, "/api/v1/meta/objects/contact/fields/order", Some(json!({"order": ["customer_tier"]}))),
        (Method::DELETE, "/api/v1/meta/objects/contact?confirm=contact", None),
        (Method::POST, "/api/v1/meta/objects/contact/restore", None),
    ] {
        assert_eq!(api.call(m, path, body, &[]).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Even an admin-scoped token needs a role that manages metadata.
    if let Ok((admin_scoped, _)) = t.app.create_api_token(rep_id, "rep2", &[TokenScope::Admin], None).await {
        let r = t
            .api(&admin_scoped)
            .call(
                Method::PUT,
                "/api/v1/meta/objects/contact/fields/order",
                Some(json!({"order": ["customer_tier"]})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(meta_state(&t).await, before, "nothing changed");
    let form = admin.get("/o/contact/new").await.body;
    assert!(pos(&form, "name=\"name\"") < pos(&form, "name=\"customer_tier\""));
}
both!(rep_changes_nothing);

async fn bad_input_and_options(t: TestWeb) {
    let b = t.admin().await;
    let api = admin_api(&t).await;
    add_tier(&b).await;
    let before = meta_state(&t).await;
    // Empty labels, a taken api name, a bad colour: translated field errors, nothing written.
    let mut empty: Vec<(&str, &str)> = TIER.to_vec();
    empty.retain(|(k, _)| !matches!(*k, "label_zh" | "label_en" | "api_name"));
    empty.extend([("label_zh", ""), ("label_en", ""), ("api_name", "tier2")]);
    let r = b.post_form("/settings/objects/contact/fields", &empty).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("请填写名称") && r.body.contains("has-error"), "{}", r.body);
    let r = b
        .post_form(
            "/settings/objects/contact/fields",
            &[("type", "text"), ("label_zh", "邮箱2"), ("label_en", "Mail"), ("api_name", "email")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("该 API 名称已被使用"));
    let bad_colour: Vec<(&str, &str)> = TIER
        .iter()
        .map(|(k, v)| match (*k, *v) {
            ("choice_color", "green") => (*k, "magenta"),
            ("label_zh", _) => (*k, "等级三"),
            ("label_en", _) => (*k, "Tier three"),
            _ => (*k, *v),
        })
        .collect();
    let r = b.post_form("/settings/objects/contact/fields", &bad_colour).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("未知的颜色"), "{}", r.body);
    let r = b.post_form("/settings/objects", &[("label_zh", ""), ("label_en", ""), ("api_name", "contact")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("该 API 名称已被使用") || r.body.contains("请填写名称"));
    let r = b
        .post_form("/settings/objects", &[("label_zh", "联系人2"), ("label_en", "Contact"), ("api_name", "contact")])
        .await;
    assert!(r.body.contains("该 API 名称已被使用"), "{}", r.body);
    // Through the API: the same field error, in the user's language.
    let body = json!({"api_name": "x1", "type": "select", "label": {"en": "X", "zh-CN": "X"},
        "options": {"choices": [{"key": "a", "label": {"en": "A", "zh-CN": "A"}, "color": "neon"}]}});
    let r = api.post("/api/v1/meta/objects/contact/fields", body).await;
    assert_eq!(
        (r.status, r.json()["error"]["fields"][0]["message"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("未知的颜色。"))
    );
    assert_eq!(meta_state(&t).await, before, "nothing written");
    // Options: one in use cannot be removed; unused ones can; relabel, recolour, reorder, add.
    assert_eq!(
        api.post("/api/v1/contact", json!({"name": "用A的人", "customer_tier": "a"})).await.status,
        StatusCode::CREATED
    );
    let edit = b.get("/settings/objects/contact/fields/customer_tier").await;
    assert_eq!(edit.status, StatusCode::OK);
    let base = [
        ("api_name", "customer_tier"),
        ("label_zh", "客户等级"),
        ("label_en", "Customer tier"),
        ("in_form", "on"),
        ("filterable", "on"),
    ];
    let row = |k: &'static str, pos: &'static str, zh: &'static str, color: &'static str, state: &'static str| {
        [
            ("choice_key", k),
            ("choice_pos", pos),
            ("choice_zh", zh),
            ("choice_en", zh),
            ("choice_color", color),
            ("choice_state", state),
        ]
    };
    let mut remove_a: Vec<(&str, &str)> = base.to_vec();
    for r in [
        row("a", "1", "A", "red", "remove"),
        row("b", "2", "B", "green", "active"),
        row("c", "3", "C", "blue", "active"),
    ] {
        remove_a.extend(r);
    }
    let r = b.post_form("/settings/objects/contact/fields/customer_tier", &remove_a).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("仍有记录在使用该选项"), "{}", r.body);
    let meta = api.get("/api/v1/meta/objects/contact").await.json();
    assert_eq!(tier_field(&meta).unwrap()["options"]["choices"].as_array().map(Vec::len), Some(3));
    let mut ok: Vec<(&str, &str)> = base.to_vec();
    for r in [
        row("b", "1", "B级", "purple", "active"),
        row("a", "2", "A", "red", "archived"),
        row("c", "3", "C", "blue", "remove"),
        row("", "4", "D", "teal", "active"),
    ] {
        ok.extend(r);
    }
    let r = b.post_form("/settings/objects/contact/fields/customer_tier", &ok).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let meta = api.get("/api/v1/meta/objects/contact").await.json();
    let choices = tier_field(&meta).unwrap()["options"]["choices"].clone();
    let keys: Vec<&str> = choices.as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["b", "a", "d"]);
    assert_eq!((choices[0]["label"]["zh-CN"].as_str(), choices[0]["color"].as_str()), (Some("B级"), Some("purple")));
    assert_eq!(choices[1]["archived"], true);
    // An archived option is no longer offered, but the record keeps its value.
    let form = b.get("/o/contact/new").await.body;
    assert!(form.contains(">B级</option>") && !form.contains("value=\"a\""));
}
both!(bad_input_and_options);
