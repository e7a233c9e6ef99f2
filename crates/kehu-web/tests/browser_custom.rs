//! Browser walk-through of Settings → Objects & fields in headless Chromium: add the select
//! field 客户等级 to contacts, use it in the new-contact form and see it on the record page;
//! create the custom object 项目 with a text field and a record of it. Screenshots of the
//! object and field editors at desktop and phone width go to `target/screenshots/`.

use crate::browser::{first_admin, fresh_app, Driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_and_fields_in_the_browser() {
    let Some(d) = Driver::start().await else { return };
    let (_app, base, _dir) = fresh_app().await;
    first_admin(&d, &base).await;

    // Settings → Objects & fields → Contact.
    d.click("a[href='/settings/objects']").await;
    d.wait_for("objects-table").await;
    d.screenshot("custom-objects-desktop").await;
    d.click("#objects-table a[href='/settings/objects/contact']").await;
    d.wait_for("field-list").await;
    d.click("#add-field").await;
    d.wait_for("type-form").await;
    // Picking the type reloads the form with that type's options (script submits on change).
    d.click("#f-type option[value='select']").await;
    d.wait_for("choice-rows").await;
    d.type_in("#f-label-zh", "客户等级").await;
    d.type_in("#f-label-en", "Customer tier").await;
    let api = d.el("#f-api").await;
    let v = d.cmd(reqwest::Method::GET, &format!("/element/{api}/property/value"), None).await;
    assert_eq!(v.as_str(), Some("customer_tier"), "api name derived from the English label");
    for (i, (label, color)) in [("A", "red"), ("B", "green"), ("C", "blue")].iter().enumerate() {
        let n = i + 1;
        d.type_in(&format!(".choice-row:nth-child({n}) input[name=choice_zh]"), label).await;
        d.type_in(&format!(".choice-row:nth-child({n}) input[name=choice_en]"), label).await;
        d.click(&format!(".choice-row:nth-child({n}) select[name=choice_color] option[value={color}]")).await;
    }
    d.screenshot("custom-field-editor-desktop").await;
    d.click("#save-field").await;
    d.wait_for("字段已添加").await;
    d.wait_for("客户等级").await;
    d.screenshot("custom-object-editor-desktop").await;

    // Phone width: the object and field editors.
    d.size(375, 812).await;
    d.go(&format!("{base}/settings/objects/contact")).await;
    d.wait_for("field-list").await;
    d.screenshot("custom-object-editor-phone").await;
    d.go(&format!("{base}/settings/objects/contact/fields/customer_tier")).await;
    d.wait_for("choice-rows").await;
    d.screenshot("custom-field-editor-phone").await;
    let script = "var w = document.documentElement.clientWidth, out = []; document.querySelectorAll('body *').forEach(function (e) { var r = e.getBoundingClientRect(); if (r.right > w + 1) out.push(e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 20) + ':' + Math.round(r.right)); }); return out.slice(0, 8).join(' | ');";
    let wide =
        d.cmd(reqwest::Method::POST, "/execute/sync", Some(serde_json::json!({"script": script, "args": []}))).await;
    assert_eq!(wide.as_str(), Some(""), "nothing wider than the phone");
    d.size(1280, 900).await;

    // The new-contact form shows it; a contact is created with tier B.
    d.go(&format!("{base}/o/contact/new")).await;
    d.wait_for("f-customer_tier").await;
    d.type_in("#f-name", "张伟").await;
    d.click("#f-customer_tier option[value='b']").await;
    d.click("#record-form button[type=submit]").await;
    d.wait_for("record-fields").await;
    let page = d.source().await;
    assert!(page.contains("客户等级") && page.contains(">B</span>"), "record page shows the tier");
    d.screenshot("custom-contact-with-tier").await;

    // A custom object 项目 with a text field, and a record of it.
    d.go(&format!("{base}/settings/objects")).await;
    d.type_in("#o-label-zh", "项目").await;
    d.type_in("#o-label-en", "Project").await;
    d.type_in("#o-plural-en", "Projects").await;
    d.click("#create-object").await;
    d.wait_for("对象已创建").await;
    d.go(&format!("{base}/settings/objects/project/fields/new?type=text")).await;
    d.type_in("#f-label-zh", "编号").await;
    d.type_in("#f-label-en", "Code").await;
    d.click("#save-field").await;
    d.wait_for("字段已添加").await;
    d.go(&format!("{base}/")).await;
    d.click(".nav a[href='/o/project']").await;
    d.go(&format!("{base}/o/project/new")).await;
    d.type_in("#f-name", "华东仓储").await;
    d.type_in("#f-code", "P-001").await;
    d.click("#record-form button[type=submit]").await;
    d.wait_for("record-fields").await;
    let page = d.source().await;
    assert!(page.contains("华东仓储") && page.contains("P-001"));
    d.quit().await;
}
