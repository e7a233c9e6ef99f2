//! The list page in headless Chromium: filter contacts by city and lifecycle stage through
//! the filter builder and a chip, save the view, reopen it, select three contacts and assign
//! them to another user; screenshots of the list at desktop and phone width.

use crate::browser::{first_admin, fresh_app, Driver};
use kehu_core::perm::Actor;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_save_view_and_bulk_assign() {
    let Some(d) = Driver::start().await else { return };
    let (app, base, _dir) = fresh_app().await;
    first_admin(&d, &base).await;
    let me = app.user_choices().await.unwrap()[0].0;
    let li = app
        .create_user_with_password("li@huaxia.test", "李娜", "purple elephant dances 天天", "sales_rep")
        .await
        .unwrap();
    let people = [
        ("张伟", "上海", "lead", "+8613800138000", &["vip"][..]),
        ("刘洋", "上海", "lead", "13900139000", &[][..]),
        ("陈静", "上海", "lead", "13700137000", &["展会"][..]),
        ("杨帆", "上海", "customer", "13600136000", &["vip"][..]),
        ("赵磊", "北京", "lead", "13500135000", &[][..]),
        ("Emily Chen", "上海", "lead", "13400134000", &["vip", "海外"][..]),
    ];
    let mut ids = Vec::new();
    for (name, city, stage, phone, tags) in people {
        let input = json!({"name": name, "city": city, "lifecycle_stage": stage, "phone": phone, "tags": tags,
            "email": format!("{}@example.com", ids.len()), "owner": me.to_string()});
        ids.push(app.create(&Actor::system(), "contact", input.as_object().unwrap()).await.unwrap().id);
    }
    // Filter by city through the builder, then the lifecycle chip.
    d.go(&format!("{base}/o/contact?st=1&cols=name,city,lifecycle_stage,tags,phone,owner")).await;
    d.wait_for("record-list").await;
    d.click("#filter-panel summary").await;
    d.click("#add-cond").await;
    d.wait_for("name=\"cf\"").await;
    d.click("#conds .cond select[name=cf] option[value=city]").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.type_in("#conds .cond input[name=cv]", "上海").await;
    d.click("#apply-filter").await;
    d.wait_for("cv=%E4%B8%8A%E6%B5%B7").await;
    d.click("a[data-lc][href*='lc=lead']").await;
    d.wait_for("chip c-blue on").await;
    let src = d.source().await;
    assert!(src.contains("张伟") && src.contains("Emily Chen") && !src.contains("赵磊") && !src.contains("杨帆"));
    // Save the view and reopen it from the picker.
    d.click("#view-picker summary").await;
    d.type_in("#view-name", "上海线索").await;
    d.click("#save-view button[type=submit]").await;
    d.wait_for("视图已保存").await;
    d.go(&format!("{base}/o/contact")).await;
    d.wait_for("杨帆").await;
    d.click("#view-picker summary").await;
    d.click("#view-picker .menu-panel a:nth-child(3)").await;
    d.wait_for("chip c-blue on").await;
    let src = d.source().await;
    assert!(!src.contains("杨帆") && src.contains("张伟"), "the view's filter came back");
    d.size(1280, 900).await;
    d.screenshot("lists-desktop").await;
    // Select three contacts and assign them to 李娜.
    for n in 1..=3 {
        d.click(&format!("#record-list tbody tr:nth-child({n}) input[name=ids]")).await;
    }
    d.wait_for("3 条已选").await;
    d.click(&format!("#bulk-owner option[value='{li}']")).await;
    d.screenshot("lists-desktop-selected").await;
    d.click("#bulk-assign").await;
    d.wait_for("已处理 3 条").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut moved = 0;
    for id in &ids {
        let r = app.get(&Actor::system(), "contact", *id).await.unwrap();
        if r.get("owner") == &json!(li.to_string()) {
            moved += 1;
        }
    }
    assert_eq!(moved, 3, "three owners changed");
    // Phone width: cards, bulk bar still there.
    d.size(375, 812).await;
    d.go(&format!("{base}/o/contact?st=1&cols=name,city,lifecycle_stage,tags,phone,owner")).await;
    d.wait_for("record-list").await;
    d.click("#record-list tbody tr:nth-child(1) input[name=ids]").await;
    d.screenshot("lists-phone").await;
    d.quit().await;
}
