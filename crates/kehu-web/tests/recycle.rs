//! The recycle bin page (list, restore many, purge by administrators only, retention), the
//! field history page (changes shown, revert, stale revert refused), and XLSX export over HTTP.

use crate::support::*;
use axum::http::StatusCode;
use kehu_core::perm::Actor;
use serde_json::{json, Map, Value as Json};

fn obj(v: Json) -> Map<String, Json> {
    v.as_object().cloned().unwrap()
}

async fn recycle_bin_page(t: TestWeb) {
    let admin = t.admin().await;
    let sys = Actor::system();
    let a = t.app.create(&sys, "contact", &obj(json!({"name": "回收<b>甲</b>"}))).await.unwrap().id;
    let b = t.app.create(&sys, "company", &obj(json!({"name": "回收公司"}))).await.unwrap().id;
    let keep = t.app.create(&sys, "contact", &obj(json!({"name": "仍在"}))).await.unwrap().id;
    // Deleted from the record page: it lands in the bin with who and when.
    let p = admin.get(&format!("/o/contact/{a}")).await;
    assert!(p.body.contains(&format!("/o/contact/{a}/history")), "history link on the record page");
    let r = admin.post_form(&format!("/o/contact/{a}/delete"), &[("_version", "1")]).await;
    assert!(r.status.is_redirection(), "{}", r.status);
    t.app.delete(&sys, "company", b, None).await.unwrap();
    let bin = admin.get("/recycle-bin").await;
    assert_eq!(bin.status, StatusCode::OK);
    assert!(bin.body.contains("href=\"/recycle-bin\""), "in the navigation");
    assert!(bin.body.contains("回收&#60;b&#62;甲&#60;/b&#62;") && !bin.body.contains("回收<b>甲"), "markup as text");
    assert!(bin.body.contains("回收公司") && !bin.body.contains("仍在"));
    assert!(bin.body.contains(&format!("value=\"contact:{a}\"")) && bin.body.contains("id=\"bin-purge\""));
    assert!(bin.body.contains("30"), "retention shown");
    let only = admin.get("/recycle-bin?object=company").await;
    assert!(only.body.contains("回收公司") && !only.body.contains("回收&#60;b&#62;"));
    // Without the CSRF token: refused, nothing restored.
    let r = admin.post_raw("/recycle-bin/restore", &[("items", &format!("contact:{a}"))]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(t.app.get(&sys, "contact", a).await.is_err());
    // Nothing ticked: a translated message.
    let r = admin.post_form("/recycle-bin/restore", &[]).await;
    assert!(r.body.contains("请先选择至少一条记录"), "{}", r.body);
    // Restore one, purge the other.
    let r = admin.post_form("/recycle-bin/restore", &[("items", &format!("contact:{a}"))]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("已恢复 1 条"), "{}", r.body);
    assert!(t.app.get(&sys, "contact", a).await.is_ok());
    let r = admin.post_form("/recycle-bin/purge", &[("items", &format!("company:{b}"))]).await;
    assert!(r.body.contains("已彻底删除 1 条"), "{}", r.body);
    assert!(t.app.get(&sys, "company", b).await.is_err());
    assert!(!r.body.contains("回收公司"));
    // Retention: saved, and nonsense refused with a message.
    let r = admin.post_form("/recycle-bin/retention", &[("days", "7")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.app.recycle_retention().await.unwrap(), 7);
    let r = admin.post_form("/recycle-bin/retention", &[("days", "abc")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("0 到 3650"), "{}", r.body);
    assert_eq!(t.app.recycle_retention().await.unwrap(), 7);

    // A sales rep: their own deletions, restore yes, purge and retention no.
    let rep_id = t.user("rep@kehu.test", "sales_rep").await;
    let rep = t.login("rep@kehu.test").await;
    let rep_actor = t.app.actor(rep_id).await.unwrap();
    let mine = t.app.create(&rep_actor, "contact", &obj(json!({"name": "我的删除"}))).await.unwrap().id;
    t.app.delete(&rep_actor, "contact", mine, None).await.unwrap();
    t.app.delete(&sys, "contact", keep, None).await.unwrap();
    let page = rep.get("/recycle-bin").await;
    assert!(page.body.contains("我的删除") && !page.body.contains("仍在"), "{}", page.body);
    assert!(!page.body.contains("id=\"bin-purge\"") && !page.body.contains("id=\"bin-retention\""));
    let r = rep.post_form("/recycle-bin/purge", &[("items", &format!("contact:{mine}"))]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = rep.post_form("/recycle-bin/retention", &[("days", "1")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(t.app.recycle_retention().await.unwrap(), 7);
    let r = rep.post_form("/recycle-bin/restore", &[("items", &format!("contact:{keep}"))]).await;
    assert!(r.body.contains("有 1 条无法恢复"), "{}", r.body);
    assert!(t.app.get(&sys, "contact", keep).await.is_err());
}
both!(recycle_bin_page);

async fn history_page_and_revert(t: TestWeb) {
    let admin = t.admin().await;
    let sys = Actor::system();
    let c = t.app.create(&sys, "contact", &obj(json!({"name": "历史", "city": "上海"}))).await.unwrap();
    t.app.update(&sys, "contact", c.id, 1, &obj(json!({"city": "<i>杭州</i>"}))).await.unwrap();
    let page = admin.get(&format!("/o/contact/{}/history", c.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<s>上海</s>") && page.body.contains("&#60;i&#62;杭州&#60;/i&#62;"), "{}", page.body);
    let change = t.app.field_history(&sys, "contact", c.id, Some("city"), None, 5).await.unwrap().changes[0].id;
    let action = format!("/o/contact/{}/history/{change}/revert", c.id);
    assert!(page.body.contains(&action));
    // A stale version: refused with the conflict message; nothing changed.
    let r = admin.post_form(&action, &[("_version", "1")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("已被他人修改"), "{}", r.body);
    assert_eq!(t.app.get(&sys, "contact", c.id).await.unwrap().get("city"), &json!("<i>杭州</i>"));
    let r = admin.post_form(&action, &[("_version", "2")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("字段已恢复为之前的值"));
    assert_eq!(t.app.get(&sys, "contact", c.id).await.unwrap().get("city"), &json!("上海"));
    // Filtered by field; an unknown field is an error, not a crash.
    let f = admin.get(&format!("/o/contact/{}/history?field=city", c.id)).await;
    assert!(f.body.contains("<b>上海</b>"));
    let bad = admin.get(&format!("/o/contact/{}/history?before=zzz", c.id)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Another user's record outside their scope: not found.
    t.user("rep2@kehu.test", "sales_rep").await;
    let rep = t.login("rep2@kehu.test").await;
    assert_eq!(rep.get(&format!("/o/contact/{}/history", c.id)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rep.post_form(&action, &[("_version", "3")]).await.status, StatusCode::NOT_FOUND);
}
both!(history_page_and_revert);

async fn export_xlsx_over_http(t: TestWeb) {
    let admin = t.admin().await;
    t.app.create(&Actor::system(), "contact", &obj(json!({"name": "张伟", "city": "上海"}))).await.unwrap();
    let list = admin.get("/o/contact").await;
    assert!(list.body.contains("id=\"export-xlsx\""));
    let r = admin.get("/o/contact/export?format=xlsx").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(r.headers.get("content-disposition").unwrap().to_str().unwrap().ends_with(".xlsx\""));
    assert!(r.body.starts_with("PK"), "a zip file");
    let csv = admin.get("/o/contact/export?format=csv").await;
    assert!(
        csv.body.contains("张伟") && csv.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/csv")
    );
}
both!(export_xlsx_over_http);

async fn history_and_purge_api(t: TestWeb) {
    use kehu_app::auth::TokenScope;
    t.admin().await;
    let admin = t.user("admin2@kehu.test", "admin").await;
    let rep = t.user("rep@kehu.test", "sales_rep").await;
    let scopes = [TokenScope::Read, TokenScope::Write, TokenScope::Admin];
    let (tok, _) = t.app.create_api_token(admin, "api", &scopes, Some(30)).await.unwrap();
    let (rep_tok, _) = t.app.create_api_token(rep, "api", &scopes[..2], Some(30)).await.unwrap();
    let api = t.api(&tok);
    let c = api.post("/api/v1/contact", json!({"name": "接口", "city": "上海", "phone": "13800138000"})).await.json();
    let id = c["id"].as_str().unwrap().to_string();
    let r = api
        .call(
            axum::http::Method::PATCH,
            &format!("/api/v1/contact/{id}"),
            Some(json!({"city": "杭州"})),
            &[("if-match", "1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let h = api.get(&format!("/api/v1/contact/{id}/history")).await;
    assert_eq!(h.status, StatusCode::OK);
    let changes = h.json()["changes"].clone();
    assert_eq!((changes[0]["field"].clone(), changes[0]["old"].clone()), (json!("city"), json!("上海")));
    let change = changes[0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/contact/{id}/history/{change}/revert");
    // Without If-Match, or stale: refused.
    assert_eq!(api.call(axum::http::Method::POST, &path, None, &[]).await.status, StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(
        api.call(axum::http::Method::POST, &path, None, &[("if-match", "1")]).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    let r = api.call(axum::http::Method::POST, &path, None, &[("if-match", "2")]).await;
    assert_eq!((r.status, r.json()["fields"]["city"].clone()), (StatusCode::OK, json!("上海")));
    // Purge: only after delete, only for administrators.
    let purge = format!("/api/v1/contact/{id}/purge");
    assert_eq!(api.call(axum::http::Method::POST, &purge, None, &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.call(axum::http::Method::DELETE, &format!("/api/v1/contact/{id}"), None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.api(&rep_tok).call(axum::http::Method::POST, &purge, None, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(api.call(axum::http::Method::POST, &purge, None, &[]).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.call(axum::http::Method::POST, &format!("/api/v1/contact/{id}/restore"), None, &[]).await.status,
        StatusCode::NOT_FOUND
    );
}
both!(history_and_purge_api);

async fn large_csv_export_streams(t: TestWeb) {
    let admin = t.admin().await;
    let rows: Vec<Map<String, Json>> = (0..1234)
        .map(|i| obj(json!({"name": format!("导出{i:04}"), "city": if i % 2 == 0 { "上海" } else { "北京" }})))
        .collect();
    for chunk in rows.chunks(500) {
        t.app.create_many(&Actor::system(), "contact", chunk).await.unwrap();
    }
    let r = admin.get("/o/contact/export?format=csv&cols=name,city&sort=name").await;
    assert_eq!(r.status, StatusCode::OK);
    let lines: Vec<&str> = r.body.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 1235, "header + every record");
    assert!(lines[0].starts_with('\u{feff}'));
    assert_eq!((lines[1], lines[1234]), ("导出0000,上海", "导出1233,北京"));
    let mut names: Vec<&str> = lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect();
    names.dedup();
    assert_eq!(names.len(), 1234, "no record twice across pages");
    // Filtered: only matching records; the audit entry has the count and says complete.
    let r = admin.get("/o/contact/export?format=csv&cols=name&cf=city&co=eq&cv=北京").await;
    assert_eq!(r.body.trim_end().split("\r\n").count(), 618);
    let q = kehu_db::Raw::new("SELECT changes FROM audit_log WHERE action = 'records.exported' ORDER BY at", vec![]);
    let rows = t.app.db.all(&q).await.unwrap();
    let last: Json = serde_json::from_str(rows.last().unwrap().str(0).unwrap()).unwrap();
    assert_eq!((last["count"].clone(), last["complete"].clone()), (json!(617), json!(true)));
}
both!(large_csv_export_streams);
