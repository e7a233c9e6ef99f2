//! A salesperson's day in headless Chromium, on the real pages: create a company and two
//! contacts (one with a Chinese name), log a call and a note with an @mention, create a task
//! and tick it off on the home page, find 张伟 and a phone suffix through the top bar, see a
//! custom select field 客户等级 in the form, the list, a filter and the API, merge a duplicate
//! and see the merged timeline. Screenshots of the list, the record page and the phone layout
//! go to `target/screenshots/day-*.png`.
//!
//! (Filtering by city and lifecycle, saving the view and bulk-assigning three contacts are
//! walked in `browser_lists`; building the field and a custom object in the settings pages in
//! `browser_custom`; the duplicate warning while typing in `browser_merge`.)

use crate::browser::{first_admin, fresh_app, Driver};
use kehu_core::perm::Actor;
use serde_json::json;
use std::time::Duration;

/// Wait until the current URL contains `part`; returns it.
async fn url_with(d: &Driver, part: &str) -> String {
    for _ in 0..50 {
        let u = d.url().await;
        if u.contains(part) {
            return u;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never reached a URL with {part}: {}", d.url().await);
}

fn id_in(url: &str) -> String {
    url.rsplit('/').next().unwrap_or("").split(['?', '#']).next().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_in_the_crm() {
    let Some(d) = Driver::start().await else { return };
    let (app, base, _dir) = fresh_app().await;
    first_admin(&d, &base).await;
    let li =
        app.create_user_with_password("li@huaxia.test", "李娜", "purple elephant dances 天天", "admin").await.unwrap();

    // A company, then a contact from the company's related list (the company is prefilled).
    d.go(&format!("{base}/o/company/new")).await;
    d.type_in("#f-name", "星辰科技有限公司").await;
    d.type_in("#f-city", "上海").await;
    d.click("#record-form button[type=submit]").await;
    let company = id_in(&url_with(&d, "/o/company/0").await);
    d.wait_for("related-contact-company").await;
    d.click("#related-contact-company a.btn").await;
    d.wait_for("record-form").await;
    d.type_in("#f-name", "张伟").await;
    d.type_in("#f-phone", "13800138000").await;
    d.type_in("#f-city", "上海").await;
    d.click("#f-lifecycle_stage option[value='prospect']").await;
    d.click("#record-form button[type=submit]").await;
    let zhang = id_in(&url_with(&d, "/o/contact/0").await);
    d.go(&format!("{base}/o/contact/new")).await;
    d.type_in("#f-name", "Emily Chen").await;
    d.type_in("#f-email", "emily@xingchen.example.cn").await;
    // The company picker searches the server; the choice is clicked from its list.
    // A picker is typed into as a person does: focus selects its text, typing replaces it
    // (WebDriver's clear would blur it, and leaving the box restores the chosen name).
    d.click("#f-company").await;
    d.keys("#f-company", "星辰").await;
    d.click(&format!("#f-company-list li[data-value='{company}']")).await;
    d.click("#record-form button[type=submit]").await;
    url_with(&d, "/o/contact/0").await;

    // On 张伟's page: a call, then a note mentioning 李娜 (picked from the @ menu).
    d.go(&format!("{base}/o/contact/{zhang}")).await;
    d.wait_for("composer").await;
    d.click("label[for='ck-call']").await;
    d.type_in("#form-call input[name=subject]", "首次电话沟通").await;
    d.click("#form-call select[name=outcome] option[value='interested']").await;
    d.type_in("#form-call .editor", "对私有化部署很感兴趣").await;
    d.click("#save-call").await;
    d.wait_for("首次电话沟通</div>").await;
    d.click("label[for='ck-note']").await;
    d.type_in("#form-note .editor", "预算约 20 万，请 @李").await;
    d.wait_for("mention-pop").await;
    d.click(".mention-pop button.on").await;
    d.keys("#form-note .editor", "准备报价").await;
    d.click("#save-note").await;
    d.wait_for("准备报价").await;
    assert!(d.source().await.contains("@李娜"), "the mention was completed from the menu");
    // "准备报价" is also in the editor itself, so the save may still be on its way: wait for it.
    for _ in 0..50 {
        if app.unread_notifications(li).await.unwrap() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.unread_notifications(li).await.unwrap(), 1, "李娜 was notified");

    // A task, ticked off on the home page.
    d.click("label[for='ck-task']").await;
    d.type_in("#form-task input[name=subject]", "发送报价单").await;
    d.click("#save-task").await;
    d.wait_for("task-subject\">发送报价单").await;
    d.size(1280, 1500).await;
    d.screenshot("day-record-desktop").await;
    d.go(&format!("{base}/")).await;
    d.wait_for("my-tasks").await;
    assert!(d.source().await.contains("发送报价单"));
    d.click("#my-tasks input[name=done]").await;
    d.wait_for("task-line done").await;
    let open = app.my_tasks(&app.actor(app.user_choices().await.unwrap()[0].0).await.unwrap()).await.unwrap();
    assert!(open.is_empty(), "the task is done in the database");

    // The top bar finds 张伟 by name and by the last digits of the phone.
    for q in ["张伟", "8000"] {
        d.type_in("#global-search", q).await;
        d.wait_for(&format!("href=\"/o/contact/{zhang}\"")).await;
    }

    // A custom select field 客户等级: in the form, set in place, in the list, as a filter, in the API.
    let admin = Actor::system();
    let field: kehu_app::metadata::NewField = serde_json::from_value(json!({
        "api_name": "customer_tier", "type": "select", "label": {"en": "Customer tier", "zh-CN": "客户等级"},
        "filterable": true, "in_list": true,
        "options": {"choices": [{"key": "a", "label": {"en": "A", "zh-CN": "A"}, "color": "red"},
                                 {"key": "b", "label": {"en": "B", "zh-CN": "B"}, "color": "blue"}]}
    }))
    .unwrap();
    app.add_field(&admin, "contact", field).await.unwrap();
    d.go(&format!("{base}/o/contact/new")).await;
    d.wait_for("f-customer_tier").await;
    d.go(&format!("{base}/o/contact/{zhang}")).await;
    d.click("#f-customer_tier .edit-btn").await;
    d.click("#f-in-customer_tier option[value='a']").await;
    d.click("#f-customer_tier button[type=submit]").await;
    d.wait_for("c-red\">A</span>").await;
    d.go(&format!("{base}/o/contact?st=1&cf=customer_tier&co=eq&cv=a")).await;
    d.wait_for("张伟").await;
    let list = d.source().await;
    assert!(list.contains("客户等级") && !list.contains("Emily Chen"), "column and filter");
    d.size(1280, 900).await;
    d.go(&format!("{base}/o/contact")).await;
    d.wait_for("Emily Chen").await;
    d.screenshot("day-list-desktop").await;
    let api = app.get(&admin, "contact", zhang.parse().unwrap()).await.unwrap();
    assert_eq!(api.get("customer_tier"), &json!("a"));

    // A duplicate of 张伟 arrives (same phone, written differently); merge keeps one timeline.
    let dup = app
        .create(
            &admin,
            "contact",
            json!({"name": "张伟", "phone": "+86 138-0013-8000", "email": "zw@xingchen.example.cn"})
                .as_object()
                .unwrap(),
        )
        .await
        .unwrap();
    app.create(
        &admin,
        "activity",
        json!({"kind": "meeting", "subject": "上门拜访", "contact": dup.id}).as_object().unwrap(),
    )
    .await
    .unwrap();
    d.go(&format!("{base}/o/contact/merge?ids={zhang},{}", dup.id)).await;
    d.wait_for("merge-form").await;
    d.click("#merge-submit").await;
    d.wait_for("timeline").await;
    let page = d.source().await;
    assert!(page.contains("上门拜访") && page.contains("首次电话沟通") && page.contains("准备报价"), "merged timeline");
    assert!(page.contains("zw@") || page.contains("z***@"), "the duplicate's e-mail was kept");

    // The phone layout of the record page and the home page.
    d.size(390, 844).await;
    d.go(&format!("{base}/o/contact/{zhang}")).await;
    d.wait_for("timeline").await;
    d.screenshot("day-record-phone").await;
    d.go(&format!("{base}/")).await;
    d.wait_for("my-tasks").await;
    d.screenshot("day-home-phone").await;
    d.quit().await;
}
