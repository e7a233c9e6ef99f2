//! The record page over HTTP: fields edited in place (saved, refused when stale, refused when
//! invalid — nothing written), activities logged from the composer with a mention that
//! notifies, tasks ticked off, the home dashboard, related lists and timeline within a rep's
//! scope, and markup shown as text everywhere.

use crate::support::*;
use axum::http::{Method, StatusCode};
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use serde_json::{json, Map, Value as Json};

fn obj(v: Json) -> Map<String, Json> {
    v.as_object().cloned().unwrap()
}

async fn version(t: &TestWeb, object: &str, id: Uuid) -> i64 {
    t.app.get(&Actor::system(), object, id).await.unwrap().version
}

async fn edit_in_place(t: TestWeb) {
    let admin = t.admin().await;
    let c = t.app.create(&Actor::system(), "contact", &obj(json!({"name": "张伟", "city": "上海"}))).await.unwrap();
    let page = admin.get(&format!("/o/contact/{}", c.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"f-city\"") && page.body.contains("hx-get=\"/o/contact/"));
    // The editor of one field carries the record's version.
    let ed = admin.get(&format!("/o/contact/{}/field/city", c.id)).await;
    assert!(ed.body.contains("name=\"_version\" value=\"1\"") && ed.body.contains("value=\"上海\""), "{}", ed.body);
    // Saved: the details card comes back with the new value and version.
    let r = htmx_post(&admin, &format!("/o/contact/{}/field/city", c.id), &[("_version", "1"), ("city", "杭州")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers.get("hx-retarget").unwrap(), "#record-fields");
    assert!(r.body.contains("杭州") && r.body.contains("id=\"record-version\" value=\"2\""));
    assert_eq!(t.app.get(&Actor::system(), "contact", c.id).await.unwrap().get("city"), &json!("杭州"));
    // Stale version: the editor again with the conflict message; nothing written.
    let r = htmx_post(&admin, &format!("/o/contact/{}/field/city", c.id), &[("_version", "1"), ("city", "北京")]).await;
    assert_eq!(r.headers.get("x-kehu-conflict").unwrap(), "1");
    assert!(r.body.contains("已被他人修改") && r.body.contains("name=\"_version\" value=\"2\""), "{}", r.body);
    assert_eq!(version(&t, "contact", c.id).await, 2);
    // Invalid value: the translated field error under the input; nothing written.
    let r = htmx_post(&admin, &format!("/o/contact/{}/field/email", c.id), &[("_version", "2"), ("email", "not-mail")])
        .await;
    assert!(r.body.contains("class=\"error\"") && r.body.contains("邮箱"), "{}", r.body);
    assert_eq!(version(&t, "contact", c.id).await, 2);
    // Tags are typed as a list; read-only built-ins cannot be edited.
    let r = htmx_post(
        &admin,
        &format!("/o/contact/{}/field/tags", c.id),
        &[("_version", "2"), ("tags", "重点, 华东，决策人")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.app.get(&Actor::system(), "contact", c.id).await.unwrap().get("tags"),
        &json!(["重点", "华东", "决策人"])
    );
    let r = admin.get(&format!("/o/contact/{}/field/created_at", c.id)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The change is on the timeline, old → new.
    let tl = admin.get(&format!("/o/contact/{}", c.id)).await.body;
    assert!(tl.contains("<s>上海</s>") && tl.contains("<b>杭州</b>"), "{tl}");
}
both!(edit_in_place);

async fn composer_tasks_notifications_home(t: TestWeb) {
    let admin = t.admin().await;
    // A second administrator (who may read the note she is mentioned in).
    t.user("li@kehu.test", "admin").await;
    let sys = Actor::system();
    let co = t.app.create(&sys, "company", &obj(json!({"name": "星辰科技"}))).await.unwrap();
    let c = t.app.create(&sys, "contact", &obj(json!({"name": "张伟", "company": co.id}))).await.unwrap();
    admin.get(&format!("/o/contact/{}", c.id)).await;
    // A note with a mention, logged over htmx: the timeline comes back with it.
    let r = htmx_post(
        &admin,
        &format!("/o/contact/{}/activities", c.id),
        &[("kind", "note"), ("body", "<p>预算 <b>20 万</b>，请 @li@kehu.test 准备报价</p><script>x()</script>")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("id=\"timeline\"") && r.body.contains("<b>20 万</b>") && !r.body.contains("<script>"));
    assert!(r.headers.get("hx-trigger").unwrap().to_str().unwrap().contains("kehu:toast"));
    // The activity belongs to the contact and to the contact's company.
    let acts = t.app.list(&sys, "activity", &Default::default()).await.unwrap().records;
    assert_eq!(acts.len(), 1);
    assert_eq!((acts[0].get("contact"), acts[0].get("company")), (&json!(c.id), &json!(co.id)));
    let company_page = admin.get(&format!("/o/company/{}", co.id)).await.body;
    assert!(company_page.contains("<b>20 万</b>"), "on the company's timeline too");
    assert!(company_page.contains(&format!("href=\"/o/contact/{}\"", c.id)), "related list of contacts");
    // The mentioned colleague has a notification that opens the contact.
    let li = t.login("li@kehu.test").await;
    let home = li.get("/").await.body;
    assert!(home.contains("class=\"count\">1<"), "bell count: {home}");
    let notes = li.get("/notifications").await.body;
    assert!(notes.contains("王管理 提到了你"), "{notes}");
    let nid = notes.split("href=\"/notifications/").nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = li.get(&format!("/notifications/{nid}")).await;
    assert_eq!(r.location(), format!("/o/contact/{}", c.id));
    assert!(!li.get("/").await.body.contains("class=\"count\""), "read");
    // A task with a due date (in the user's zone), on the home page, ticked off there.
    let r = htmx_post(
        &admin,
        &format!("/o/contact/{}/activities", c.id),
        &[("kind", "task"), ("subject", "发送报价单"), ("due_at", "2020-01-02T09:30"), ("owner", "")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let task = t
        .app
        .list(
            &sys,
            "activity",
            &kehu_app::ListRequest {
                filter: Some(json!({"field": "kind", "op": "eq", "value": "task"})),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .records
        .remove(0);
    assert_eq!(task.get("due_at"), &json!("2020-01-02T01:30:00Z"), "Asia/Shanghai → UTC");
    // The record page noted the view; the pump (run here by hand) writes it.
    assert!(t.app.flush_views().await.unwrap() >= 1);
    let home = admin.get("/").await.body;
    assert!(home.contains("发送报价单") && home.contains("g-overdue"), "{home}");
    assert!(home.contains(&format!("href=\"/o/contact/{}\"", c.id)), "the task links its contact");
    assert!(home.contains("最近查看") && home.contains(">张伟</a>"), "recently viewed");
    let r = htmx_post(
        &admin,
        &format!("/activities/{}/done", task.id),
        &[("_version", "1"), ("done", "on"), ("view", "home")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("task-line done"));
    assert_eq!(t.app.get(&sys, "activity", task.id).await.unwrap().get("done"), &json!(true));
    assert!(!admin.get("/").await.body.contains("发送报价单"), "done tasks leave the home page");
    // A stale tick is refused and changes nothing.
    let r = htmx_post(&admin, &format!("/activities/{}/done", task.id), &[("_version", "1")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(t.app.get(&sys, "activity", task.id).await.unwrap().get("done"), &json!(true));
    // Timeline filter by kind.
    let r = admin
        .send(
            axum::http::Method::GET,
            &format!("/o/contact/{}/timeline?kind=task", c.id),
            &[("hx-request", "true")],
            axum::body::Body::empty(),
        )
        .await;
    assert!(r.body.contains("发送报价单") && !r.body.contains("20 万"), "{}", r.body);
}
both!(composer_tasks_notifications_home);

async fn rep_sees_only_own_team(t: TestWeb) {
    t.admin().await;
    let east = t.app.create_team("华东", None).await.unwrap();
    let north = t.app.create_team("华北", None).await.unwrap();
    let e1 = t.user("e1@kehu.test", "sales_rep").await;
    let n1 = t.user("n1@kehu.test", "sales_rep").await;
    for (u, team) in [(e1, east), (n1, north)] {
        let role = t.app.role_by_key("sales_rep").await.unwrap().id;
        t.app
            .db
            .write(&kehu_db::Raw::new(
                "UPDATE users SET team_id = $1, role_id = $2 WHERE id = $3",
                vec![team.into(), role.into(), u.into()],
            ))
            .await
            .unwrap();
    }
    let sys = Actor::system();
    let co = t.app.create(&sys, "company", &obj(json!({"name": "共享公司", "owner": e1.to_string()}))).await.unwrap();
    let mine = t
        .app
        .create(&sys, "contact", &obj(json!({"name": "东区联系人", "company": co.id, "owner": e1.to_string()})))
        .await
        .unwrap();
    let theirs = t
        .app
        .create(&sys, "contact", &obj(json!({"name": "北区联系人", "company": co.id, "owner": n1.to_string()})))
        .await
        .unwrap();
    t.app
        .create(
            &sys,
            "activity",
            &obj(json!({"kind": "note", "body": "北区的秘密笔记", "company": co.id, "owner": n1.to_string()})),
        )
        .await
        .unwrap();
    t.app
        .create(
            &sys,
            "activity",
            &obj(json!({"kind": "note", "body": "东区笔记", "company": co.id, "owner": e1.to_string()})),
        )
        .await
        .unwrap();
    let b = t.login("e1@kehu.test").await;
    let page = b.get(&format!("/o/company/{}", co.id)).await.body;
    assert!(page.contains("东区联系人") && !page.contains("北区联系人"), "related list within scope");
    assert!(page.contains("东区笔记") && !page.contains("北区的秘密笔记"), "timeline within scope");
    assert!(page.contains("<span class=\"muted small\">1</span>"), "related count within scope: {page}");
    assert_eq!(b.get(&format!("/o/contact/{}", theirs.id)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.get(&format!("/o/contact/{}/field/name", theirs.id)).await.status, StatusCode::NOT_FOUND);
    let r = htmx_post(&b, &format!("/o/contact/{}/activities", theirs.id), &[("kind", "note"), ("body", "x")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let s = b.get("/search/suggest?q=%E8%81%94%E7%B3%BB%E4%BA%BA").await.body;
    assert!(s.contains("东区联系人") && !s.contains("北区联系人"), "{s}");
    let _ = mine;
}
both!(rep_sees_only_own_team);

async fn markup_is_text_everywhere(t: TestWeb) {
    let admin = t.admin().await;
    let sys = Actor::system();
    let evil = "<script>alert(1)</script>";
    let co = t
        .app
        .create(&sys, "company", &obj(json!({"name": format!("{evil}公司"), "tags": ["<img src=x onerror=alert(2)>"]})))
        .await
        .unwrap();
    let c = t
        .app
        .create(&sys, "contact", &obj(json!({"name": format!("{evil}张"), "company": co.id, "job_title": "<b onmouseover=x>经理</b>", "tags": ["<i>t</i>"]})))
        .await
        .unwrap();
    t.app.create(&sys, "activity", &obj(json!({"kind": "task", "subject": format!("{evil}任务"), "contact": c.id, "owner": t.app.user_choices().await.unwrap()[0].0.to_string()}))).await.unwrap();
    t.app.create(&sys, "activity", &obj(json!({"kind": "note", "body": format!("<p>ok</p>{evil}<a href=\"javascript:alert(3)\">x</a>"), "contact": c.id}))).await.unwrap();
    admin.get(&format!("/o/contact/{}", c.id)).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for path in [
        format!("/o/contact/{}", c.id),
        format!("/o/company/{}", co.id),
        "/".to_string(),
        "/o/contact".to_string(),
        "/search?q=%E5%BC%A0".to_string(),
    ] {
        let body = admin.get(&path).await.body;
        for bad in ["<script>alert", "<img src=x", "<b onmouseover", "<i>t</i>", "javascript:alert"] {
            assert!(!body.contains(bad), "{path} contains {bad}");
        }
        assert!(
            body.contains("&lt;script&gt;") || body.contains("&#60;script&#62;"),
            "{path} shows the markup as text"
        );
    }
    let ed = admin.get(&format!("/o/contact/{}/field/job_title", c.id)).await.body;
    assert!(!ed.contains("<b onmouseover") && ed.contains("onmouseover"), "the editor holds the text escaped: {ed}");
}
both!(markup_is_text_everywhere);

/// `record.revealed` audit entries as (object, record, fields), oldest first.
async fn revealed(t: &TestWeb) -> Vec<(Uuid, Uuid, Json)> {
    let q = kehu_db::Raw::new(
        "SELECT object_id, record_id, changes FROM audit_log WHERE action = 'record.revealed' ORDER BY at, id",
        vec![],
    );
    let rows = t.app.db.all(&q).await.unwrap();
    rows.iter()
        .map(|r| {
            let changes: Json = serde_json::from_str(&r.string(2).unwrap()).unwrap();
            (r.uuid(0).unwrap(), r.uuid(1).unwrap(), changes["fields"].clone())
        })
        .collect()
}

async fn reveal_audits_only_the_revealed_record(t: TestWeb) {
    let admin = t.admin().await;
    let sys = Actor::system();
    // The company has contact details of its own; revealing the contact shows only its name.
    let co = t
        .app
        .create(
            &sys,
            "company",
            &obj(json!({"name": "星辰科技", "phone": "021-62345678", "email": "info@xingchen.cn"})),
        )
        .await
        .unwrap();
    let c = t
        .app
        .create(
            &sys,
            "contact",
            &obj(json!({"name": "张伟", "phone": "13800138000", "email": "zhang.wei@example.com", "company": co.id})),
        )
        .await
        .unwrap();
    let page = admin.get(&format!("/o/contact/{}", c.id)).await;
    assert!(page.body.contains("138****8000") && page.body.contains("id=\"reveal\""));
    assert_eq!(revealed(&t).await, [], "showing masked values is no reveal");

    let token = admin.csrf.lock().unwrap().clone();
    let shown = admin
        .send(
            Method::POST,
            &format!("/o/contact/{}/reveal", c.id),
            &[("hx-request", "true"), ("x-csrf-token", &token)],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert!(shown.body.contains("13800138000") && shown.body.contains("zhang.wei@example.com"), "{}", shown.body);
    assert!(shown.body.contains("星辰科技"), "the company is still named");
    assert!(!shown.body.contains("62345678") && !shown.body.contains("info@xingchen.cn"));
    let contact = t.app.schema().await.unwrap().object("contact").unwrap().id;
    assert_eq!(
        revealed(&t).await,
        [(contact, c.id, json!(["email", "phone"]))],
        "one entry, for the contact, naming the values shown"
    );

    // A contact without phone or e-mail reveals nothing: no entry.
    let bare = t.app.create(&sys, "contact", &obj(json!({"name": "无号码", "company": co.id}))).await.unwrap();
    let r = admin
        .send(
            Method::POST,
            &format!("/o/contact/{}/reveal", bare.id),
            &[("hx-request", "true"), ("x-csrf-token", &token)],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(revealed(&t).await.len(), 1, "nothing revealed, nothing audited");
}
both!(reveal_audits_only_the_revealed_record);
