//! The record page's timeline over HTTP: its "more" button pages through every activity once —
//! filtered by kind or not, with many activities of one timestamp — and a kind an administrator
//! adds through the metadata API is a filter tab at once (an archived one no longer is).

use crate::support::*;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use kehu_app::auth::TokenScope;
use kehu_core::perm::Actor;
use serde_json::{json, Value as Json};

/// Activity ids a timeline answer shows (`id="act-…"`), and the path of its "more" button.
fn shown(body: &str) -> (Vec<String>, Option<String>) {
    let ids = body.split("id=\"act-").skip(1).map(|s| s[..36].to_string()).collect();
    let more = body
        .split("<li class=\"tl-more\"><button class=\"btn sm ghost\" hx-get=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(|s| s.replace("&#38;", "&").replace("&amp;", "&"));
    (ids, more)
}

/// Every activity of the timeline from `first` on, following "more", and the pages read.
async fn follow(b: &Browser, first: &str) -> (Vec<String>, usize) {
    let mut path = first.to_string();
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let r = b.send(Method::GET, &path, &[("hx-request", "true")], Body::empty()).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        let (page, more) = shown(&r.body);
        ids.extend(page);
        pages += 1;
        assert!(pages < 50, "paging does not end: {path}");
        match more {
            Some(m) => path = m,
            None => return (ids, pages),
        }
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn timeline_pages_and_admin_kinds(t: TestWeb) {
    let admin = t.admin().await;
    let admin_id =
        t.app.db.one(&kehu_db::Raw::new("SELECT id FROM users", vec![])).await.unwrap().unwrap().uuid(0).unwrap();
    let (token, _) = t.app.create_api_token(admin_id, "meta", &TokenScope::ALL, None).await.unwrap();
    let api = t.api(&token);
    // The administrator adds a kind of activity through the metadata API.
    let meta = api.get("/api/v1/meta/objects/activity").await.json();
    let kind = meta["fields"].as_array().unwrap().iter().find(|f| f["api_name"] == "kind").unwrap().clone();
    let mut choices = kind["options"]["choices"].as_array().unwrap().clone();
    choices.push(json!({"key": "visit", "label": {"en": "Site visit", "zh-CN": "上门拜访"}, "color": "teal"}));
    let patch = |choices: Vec<Json>| json!({ "choices": choices });
    let r =
        api.call(Method::PATCH, "/api/v1/meta/objects/activity/fields/kind", Some(patch(choices.clone())), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let sys = Actor::system();
    let c = t.app.create(&sys, "contact", json!({"name": "张无忌"}).as_object().unwrap()).await.unwrap();
    // One batch each: 40 visits share one timestamp, 35 calls another.
    let batch = |kind: &str, n: usize| -> Vec<serde_json::Map<String, Json>> {
        (0..n)
            .map(|i| json!({"kind": kind, "contact": c.id, "subject": format!("{kind} {i}")}))
            .map(|v| v.as_object().unwrap().clone())
            .collect()
    };
    let visits: Vec<String> =
        t.app.create_many(&sys, "activity", &batch("visit", 40)).await.unwrap().iter().map(|i| i.to_string()).collect();
    let calls: Vec<String> =
        t.app.create_many(&sys, "activity", &batch("call", 35)).await.unwrap().iter().map(|i| i.to_string()).collect();

    // The page offers the new kind as a filter, labelled in the user's language.
    let page = admin.get(&format!("/o/contact/{}", c.id)).await;
    assert!(page.body.contains("data-kind=\"visit\">上门拜访</button>"), "{}", page.body);
    // Filtered by the new kind: 30 a page, then the rest; each visit once.
    let (seen, pages) = follow(&admin, &format!("/o/contact/{}/timeline?kind=visit", c.id)).await;
    assert_eq!(pages, 2);
    assert_eq!(seen.len(), 40, "no visit repeated");
    assert_eq!(sorted(seen), sorted(visits.clone()));
    let (seen, pages) = follow(&admin, &format!("/o/contact/{}/timeline?kind=call", c.id)).await;
    assert_eq!((seen.len(), pages), (35, 2));
    assert_eq!(sorted(seen), sorted(calls.clone()));
    // Unfiltered: every activity once (and the contact's creation after them).
    let (seen, pages) = follow(&admin, &format!("/o/contact/{}/timeline", c.id)).await;
    assert_eq!(seen.len(), 75);
    assert_eq!(pages, 3, "75 activities and the creation, 30 a page");
    assert_eq!(seen[..35], calls_desc(&calls)[..], "the newer batch first, by id within its timestamp");
    assert_eq!(sorted(seen), sorted(visits.iter().chain(&calls).cloned().collect()));

    // Archived, the kind is no longer a filter; its activities stay on the timeline.
    for ch in choices.iter_mut().filter(|ch| ch["key"] == "visit") {
        ch["archived"] = json!(true);
    }
    let r = api.call(Method::PATCH, "/api/v1/meta/objects/activity/fields/kind", Some(patch(choices)), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = admin.get(&format!("/o/contact/{}", c.id)).await;
    assert!(!page.body.contains("data-kind=\"visit\""));
    assert!(page.body.contains("data-kind=\"call\""));
    let r = admin
        .send(
            Method::GET,
            &format!("/o/contact/{}/timeline?kind=visit", c.id),
            &[("hx-request", "true")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("未知的跟进类型"), "{}", r.body);
}
both!(timeline_pages_and_admin_kinds);

/// Ids of one batch as the timeline orders them within their shared timestamp: descending.
fn calls_desc(ids: &[String]) -> Vec<String> {
    let mut v: Vec<kehu_core::Uuid> = ids.iter().map(|s| s.parse().unwrap()).collect();
    v.sort();
    v.reverse();
    v.iter().map(|u| u.to_string()).collect()
}
