//! The list page over HTTP: filters with AND and OR, sort and cursor pages with a total,
//! lifecycle badges, columns in the URL, saved views, bulk assign with a toast, CSV export,
//! and a rep who sees nothing of another team's records, counts, views or exports.

use crate::support::*;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use serde_json::json;

async fn contact(t: &TestWeb, name: &str, city: &str, stage: &str, owner: Uuid) -> Uuid {
    let input = json!({"name": name, "city": city, "lifecycle_stage": stage, "owner": owner.to_string()});
    t.app.create(&Actor::system(), "contact", input.as_object().unwrap()).await.unwrap().id
}

fn rows(body: &str) -> usize {
    body.matches("name=\"ids\"").count()
}

async fn list_filters_sort_pages_views_bulk(t: TestWeb) {
    let admin = t.admin().await;
    let me = t.app.user_choices().await.unwrap()[0].0;
    let other = t.user("li@kehu.test", "sales_rep").await;
    for i in 0..55 {
        contact(&t, &format!("客户{i:02}"), "杭州", "subscriber", me).await;
    }
    let sh1 = contact(&t, "张伟", "上海", "lead", me).await;
    let sh2 = contact(&t, "<b>李雷</b>", "上海", "customer", me).await;
    let bj = contact(&t, "王芳", "北京", "lead", me).await;
    // AND: city = 上海 and lifecycle lead (chip).
    let r =
        admin.get("/o/contact?st=1&cols=name,city,lifecycle_stage&cf=city&co=eq&cv=%E4%B8%8A%E6%B5%B7&lc=lead").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(rows(&r.body), 1);
    assert!(r.body.contains("张伟") && !r.body.contains("王芳"));
    assert!(r.body.contains("<span class=\"badge c-"), "lifecycle badge");
    // OR: 上海 or 北京.
    let r =
        admin.get("/o/contact?st=1&m=or&cf=city&co=eq&cv=%E4%B8%8A%E6%B5%B7&cf=city&co=eq&cv=%E5%8C%97%E4%BA%AC").await;
    assert_eq!(rows(&r.body), 3, "{}", r.body);
    assert!(r.body.contains("李雷"), "markup shown as text");
    assert!(!r.body.contains("<b>李雷</b>"));
    // Sort by name and page: 58 records, 50 then 8, total shown.
    let r = admin.get("/o/contact?st=1&sort=name&cols=name,city,lifecycle_stage,owner").await;
    assert_eq!(rows(&r.body), 50);
    assert!(r.body.contains("hx-get=\"/o/contact/count?"), "the total is fetched after the rows");
    assert!(r.body.contains("&amp;bulk=1\""), "the page has the bulk bar: its label is swapped too");
    let c = admin.get("/o/contact/count?st=1&sort=name&bulk=1").await;
    assert!(c.body.contains("id=\"list-total\">58<") && c.body.contains("58 条符合条件"), "total: {}", c.body);
    // Without the bulk bar (a viewer, or no rows) the label is not swapped: htmx would log
    // an error for the missing target.
    let c = admin.get("/o/contact/count?st=1&sort=name").await;
    assert!(c.body.contains("id=\"list-total\">58<") && !c.body.contains("bulk-all-label"), "total: {}", c.body);
    let first = r.body.find("客户00").unwrap();
    assert!(first < r.body.find("客户01").unwrap(), "sorted");
    let next = r.body.split("id=\"next-page\"").next().unwrap();
    let href =
        next.rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&amp;", "&").replace("&#38;", "&");
    assert!(href.contains("cols=name%2Ccity%2Clifecycle_stage%2Cowner") && href.contains("sort=name"), "{href}");
    let r2 = admin.get(&href).await;
    assert_eq!(rows(&r2.body), 8, "{href}");
    // Bad input is a translated error, not a panic.
    let r = admin.get("/o/contact?st=1&cf=city&co=gt&cv=x").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Save the filtered view, reopen it.
    let state = "st=1&cols=name%2Ccity&cf=city&co=eq&cv=%E4%B8%8A%E6%B5%B7";
    admin.get("/o/contact").await;
    let r = admin.post_form("/o/contact/views", &[("name", "上海客户"), ("state", state)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let loc = r.location().to_string();
    let r = admin.get(&loc).await;
    assert_eq!(rows(&r.body), 2);
    assert!(r.body.contains("上海客户"));
    // Bulk assign the two 上海 contacts to another user (htmx: a toast with counts).
    let id1 = sh1.to_string();
    let id2 = sh2.to_string();
    let other_s = other.to_string();
    let r = htmx_post(
        &admin,
        "/o/contact/bulk",
        &[("state", state), ("action", "assign_owner"), ("owner", &other_s), ("ids", &id1), ("ids", &id2)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("2") && r.body.contains("toast ok"), "{}", r.body);
    for id in [sh1, sh2] {
        let rec = t.app.get(&Actor::system(), "contact", id).await.unwrap();
        assert_eq!(rec.get("owner"), &json!(other_s));
    }
    let rec = t.app.get(&Actor::system(), "contact", bj).await.unwrap();
    assert_eq!(rec.get("owner"), &json!(me.to_string()));
    // "All matching" over more than the threshold becomes a job with a progress bar.
    let r = htmx_post(
        &admin,
        "/o/contact/bulk",
        &[("state", "st=1"), ("action", "set_field"), ("field", "city"), ("value", "苏州"), ("all", "on")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    if kehu_app::bulk::INLINE_MAX < 58 {
        assert!(r.body.contains("<progress"), "{}", r.body);
        t.app.run_jobs().await.unwrap();
        let job = r.body.split("/jobs/").nth(1).unwrap().split('"').next().unwrap().to_string();
        let j = admin.send(Method::GET, &format!("/jobs/{job}"), &[("hx-request", "true")], Body::empty()).await;
        assert!(j.body.contains("toast ok"), "{}", j.body);
    } else {
        assert!(r.body.contains("toast ok"), "{}", r.body);
    }
    // Export: BOM, the view's columns, audited.
    let r = admin.get("/o/contact/export?st=1&cols=name%2Ccity").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with('\u{feff}'), "BOM");
    assert!(r.body.contains("<b>李雷</b>") && r.body.contains("苏州"), "{}", r.body);
    assert_eq!(count(&t, "audit_log WHERE action = 'records.exported'").await, 1);
}
both!(list_filters_sort_pages_views_bulk);

async fn rep_sees_no_other_teams_records(t: TestWeb) {
    let admin = t.admin().await;
    let boss = t.app.user_choices().await.unwrap()[0].0;
    let rep = t.user("rep@kehu.test", "sales_rep").await;
    contact(&t, "老板的客户", "上海", "lead", boss).await;
    contact(&t, "我的客户", "上海", "lead", rep).await;
    admin.get("/o/contact").await;
    let r = admin.post_form("/o/contact/views", &[("name", "管理层视图"), ("state", "st=1")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let b = t.login("rep@kehu.test").await;
    let r = b.get("/o/contact").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("我的客户") && !r.body.contains("老板的客户"));
    let c = b.get("/o/contact/count").await;
    assert!(c.body.contains("id=\"list-total\">1<"), "count is the rep's own");
    assert!(!r.body.contains("管理层视图"), "another user's personal view");
    let r = b.get("/o/contact?q=%E8%80%81%E6%9D%BF").await;
    assert!(!r.body.contains("老板的客户"));
    // No export permission for reps.
    let r = b.get("/o/contact/export").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Bulk delete on "all matching" removes only the rep's record.
    b.get("/o/contact").await;
    let r = htmx_post(&b, "/o/contact/bulk", &[("state", "st=1"), ("action", "delete"), ("all", "on")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(t.app.count(&Actor::system(), "contact", None).await.unwrap(), 1);
}
both!(rep_sees_no_other_teams_records);

/// Filters a new team stumbles over (#16 item 3): switching a condition's field starts its
/// operator and value afresh (no "$me" carried into a city); "me" reads as a word; a filter
/// that matches nothing offers to clear the filters, not to create a record.
async fn filter_rows_reset_and_empty_results(t: TestWeb) {
    let admin = t.admin().await;
    // Owner = me, then the field switched to city: the value is gone, the operator is the first.
    let row = admin.get("/o/contact/filter-row?pf=owner&cf=city&co=neq&cv=%24me").await.body;
    assert!(row.contains("name=\"pf\" value=\"city\""), "{row}");
    assert!(row.contains("type=\"text\" name=\"cv\" value=\"\""), "{row}");
    assert!(row.contains("<option value=\"eq\" selected>"), "{row}");
    // Only the operator changed: the value stays.
    let row = admin.get("/o/contact/filter-row?pf=city&cf=city&co=neq&cv=%E6%9D%AD%E5%B7%9E").await.body;
    assert!(row.contains("value=\"杭州\"") && row.contains("<option value=\"neq\" selected>"), "{row}");
    // "me" in a user filter is a word, not `$me`.
    let row = admin.get("/o/contact/filter-row?cf=owner&co=eq&cv=%24me").await.body;
    assert!(row.contains("value=\"我\"") && row.contains("name=\"cv\" value=\"$me\""), "{row}");
    // An empty result under a filter offers to clear it.
    let list = admin.get("/o/contact?st=1&cf=city&co=eq&cv=%E4%B8%8D%E5%AD%98%E5%9C%A8").await.body;
    assert!(list.contains("id=\"list-no-match\"") && list.contains("id=\"clear-filters\""), "{list}");
    let empty = admin.get("/o/contact?st=1").await.body;
    assert!(!empty.contains("list-no-match") && empty.contains("暂无记录"), "no filter: the first-record card");
}
both!(filter_rows_reset_and_empty_results);
