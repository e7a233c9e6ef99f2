//! Duplicates and merging through the web: the create form's warning (with links, and without
//! details for another team's record), the duplicates page, the merge form end to end (stale
//! versions refused), and the merge API.

use crate::support::*;
use axum::http::StatusCode;
use kehu_app::auth::TokenScope;
use kehu_core::Uuid;
use serde_json::json;

fn id_of(location: &str) -> Uuid {
    location.rsplit('/').next().unwrap().parse().expect("record id in location")
}

async fn create(b: &Browser, fields: &[(&str, &str)]) -> Uuid {
    b.get("/o/contact/new").await;
    let r = b.post_form("/o/contact/new", fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    id_of(r.location())
}

async fn warning_page_and_merge_form(t: TestWeb) {
    let admin = t.admin().await;
    let zw = create(&admin, &[("name", "张伟"), ("phone", "+86 138-0013-8000"), ("email", "zw@huaxia.cn")]).await;
    // The form asks while typing; every watched input carries the htmx call.
    let form = admin.get("/o/contact/new").await.body;
    assert!(form.contains("id=\"dup-warning\""));
    for f in ["name", "email", "phone", "company"] {
        // The company is a picker: its hidden input (the chosen id) asks.
        let key = if f == "company" { format!("name=\"{f}\"") } else { format!("id=\"f-{f}\"") };
        let at = form.find(&key).unwrap_or_else(|| panic!("input {f}"));
        let tag = &form[at..at + form[at..].find('>').unwrap()];
        assert!(tag.contains("hx-get=\"/o/contact/duplicates/check\"") && tag.contains("data-dup"), "{f}: {tag}");
    }
    let w = admin.get("/o/contact/duplicates/check?phone=138%200013%208000&name=").await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(w.body.contains(&format!("href=\"/o/contact/{zw}\"")), "{}", w.body);
    assert!(w.body.contains("张伟") && w.body.contains("打开已有记录"), "{}", w.body);
    let w = admin.get("/o/contact/duplicates/check?email=ZW%40HUAXIA.CN").await;
    assert!(w.body.contains(&format!("/o/contact/{zw}")));
    assert!(admin.get("/o/contact/duplicates/check?phone=13900000000").await.body.trim().is_empty());
    // A rep sees that a match exists, owned by another team, and nothing else.
    t.user("rep@kehu.test", "sales_rep").await;
    let rep = t.login("rep@kehu.test").await;
    let w = rep.get("/o/contact/duplicates/check?phone=13800138000").await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(w.body.contains("归属其他团队"), "{}", w.body);
    assert!(!w.body.contains("张伟") && !w.body.contains(&zw.to_string()), "{}", w.body);

    // A second one, typed differently; the list links to the duplicates page, which groups them.
    let zw2 = create(&admin, &[("name", "Zhang Wei"), ("phone", "138 0013 8000"), ("job_title", "CTO")]).await;
    assert!(admin.get("/o/contact").await.body.contains("href=\"/o/contact/duplicates\""));
    let page = admin.get("/o/contact/duplicates?by=phone").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("138****8000"), "{}", page.body);
    assert!(page.body.contains(&format!("/o/contact/{zw}")) && page.body.contains(&format!("/o/contact/{zw2}")));
    let i = page.body.find("/o/contact/merge?ids=").expect("merge button");
    let href = page.body[i..i + page.body[i..].find('"').unwrap()].to_string();
    // The merge form: both records side by side, a choice where values differ.
    let m = admin.get(&href).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    assert!(m.body.contains("name=\"f.name\"") && m.body.contains("name=\"f.job_title\""));
    assert!(!m.body.contains("name=\"f.phone\""), "same phone: nothing to choose");
    let v1 = t.app.get(&kehu_core::perm::Actor::system(), "contact", zw).await.unwrap().version;
    let v2 = t.app.get(&kehu_core::perm::Actor::system(), "contact", zw2).await.unwrap().version;
    let ids = format!("{zw},{zw2}");
    let (s1, s2) = (zw.to_string(), zw2.to_string());
    let (k1, k2) = (format!("v.{zw}"), format!("v.{zw2}"));
    // A stale version: refused, shown again with a message, nothing changed.
    let stale = (v2 - 1).to_string();
    let r = admin
        .post_form(
            "/o/contact/merge",
            &[("ids", &ids), ("survivor", &s1), (&k1, &v1.to_string()), (&k2, &stale), ("f.name", &s2)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("merge-form") && r.body.contains("alert error"));
    assert!(t.app.get(&kehu_core::perm::Actor::system(), "contact", zw2).await.is_ok());
    // Keep the first, take the second's name; land on the survivor's page.
    let r = admin
        .post_form(
            "/o/contact/merge",
            &[("ids", &ids), ("survivor", &s1), (&k1, &v1.to_string()), (&k2, &v2.to_string()), ("f.name", &s2)],
        )
        .await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, format!("/o/contact/{zw}").as_str()), "{}", r.body);
    let show = admin.get(r.location()).await;
    assert!(show.body.contains("Zhang Wei") && show.body.contains("CTO") && show.body.contains("记录已合并"));
    let gone = t.app.get(&kehu_core::perm::Actor::system(), "contact", zw2).await.unwrap_err();
    assert_eq!(gone.code, "record.not_found");
    assert!(!admin.get("/o/contact/duplicates?by=phone").await.body.contains("/o/contact/merge?ids="));
}
both!(warning_page_and_merge_form);

async fn merge_api(t: TestWeb) {
    let _admin = t.admin().await;
    let admin_id =
        t.app.db.one(&kehu_db::Raw::new("SELECT id FROM users", vec![])).await.unwrap().unwrap().uuid(0).unwrap();
    let (token, _) = t.app.create_api_token(admin_id, "ci", &TokenScope::ALL, None).await.unwrap();
    let api = t.api(&token);
    let c1 = api.post("/api/v1/company", json!({"name": "华夏科技"})).await.json();
    let c2 = api.post("/api/v1/company", json!({"name": "华夏科技有限公司", "tags": ["key"]})).await.json();
    let p = api.post("/api/v1/contact", json!({"name": "李娜", "company": c2["id"]})).await.json();
    let body = json!({"survivor": c1["id"], "merge": [c2["id"]],
        "versions": {c1["id"].as_str().unwrap(): c1["version"], c2["id"].as_str().unwrap(): c2["version"]},
        "values": {"name": c2["id"]}});
    // Unknown members are refused.
    let mut bad = body.clone();
    bad["extra"] = json!(1);
    assert_eq!(api.post("/api/v1/company/merge", bad).await.code(), "request.unknown_field");
    // Stale: 409, nothing changed.
    let mut stale = body.clone();
    stale["versions"][c2["id"].as_str().unwrap()] = json!(99);
    let r = api.post("/api/v1/company/merge", stale).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "record.version_conflict".into()));
    let r = api.post("/api/v1/company/merge", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["fields"]["name"], json!("华夏科技有限公司"));
    assert_eq!(j["fields"]["tags"], json!(["key"]));
    assert_eq!(r.headers.get("etag").unwrap().to_str().unwrap(), format!("\"{}\"", j["version"]));
    let moved = api.get(&format!("/api/v1/contact/{}", p["id"].as_str().unwrap())).await.json();
    assert_eq!(moved["fields"]["company"], c1["id"]);
    let r = api.get(&format!("/api/v1/company/{}", c2["id"].as_str().unwrap())).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
both!(merge_api);
