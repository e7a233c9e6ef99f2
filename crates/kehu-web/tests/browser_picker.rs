//! The relation picker in headless Chromium, with 2,500 companies: a contact linked to the
//! oldest keeps it when its editor is opened and saved unchanged; typing searches the server
//! and a choice by keyboard is saved; typing without choosing changes nothing; the new-record
//! form links a company by clicking a choice; a filter on the company uses the same picker;
//! the global search finds a phone in three formats and a name by pinyin.
//! Screenshots at desktop and phone width.

use crate::browser::{first_admin, fresh_app, Driver};
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use serde_json::{json, Map, Value as Json};

async fn company_of(app: &kehu_app::App, id: Uuid) -> Json {
    app.get(&Actor::system(), "contact", id).await.unwrap().get("company").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relation_picker_on_forms_in_place_and_filters() {
    let Some(d) = Driver::start().await else { return };
    let (app, base, _dir) = fresh_app().await;
    first_admin(&d, &base).await;
    let rows: Vec<Map<String, Json>> =
        (1..=2500).map(|i| json!({"name": format!("公司 {i:05}")}).as_object().cloned().unwrap()).collect();
    let mut ids = Vec::new();
    for chunk in rows.chunks(500) {
        ids.extend(app.create_many(&Actor::system(), "company", chunk).await.unwrap());
    }
    let input = json!({"name": "张伟", "company": ids[0]});
    let c = app.create(&Actor::system(), "contact", input.as_object().unwrap()).await.unwrap();

    // Open the company editor and save it untouched: the oldest company stays.
    d.go(&format!("{base}/o/contact/{}", c.id)).await;
    d.click("#f-company .edit-btn").await;
    d.wait_for("id=\"f-in-company\"").await;
    d.click("form#f-company button[type=submit]").await;
    d.wait_for("id=\"record-version\" value=\"1\"").await;
    assert_eq!(company_of(&app, c.id).await, json!(ids[0]));
    assert!(d.source().await.contains("公司 00001"));

    // Typing without choosing changes nothing: the text goes back to the chosen company.
    d.click("#f-company .edit-btn").await;
    d.wait_for("id=\"f-in-company\"").await;
    // A picker is typed into as a person does: click, select all (Ctrl+A), type (WebDriver's
    // clear would blur it, and leaving the box restores the chosen name).
    d.click("#f-in-company").await;
    d.keys("#f-in-company", "\u{E009}a\u{E000}00002").await;
    d.wait_for(&format!("data-value=\"{}\"", ids[1])).await;
    d.size(1280, 900).await;
    d.screenshot("picker-open").await;
    // Escape closes the list and puts the chosen company's name back.
    d.keys("#f-in-company", "\u{E00C}").await;
    d.wait_for("id=\"f-in-company-list\" role=\"listbox\" hidden").await;
    d.click("form#f-company button[type=submit]").await;
    d.wait_for("id=\"record-version\" value=\"1\"").await;
    assert_eq!(company_of(&app, c.id).await, json!(ids[0]), "typing alone chose nothing");

    // Choose by keyboard: the first match is active, Enter picks it, Save writes it.
    d.click("#f-company .edit-btn").await;
    d.wait_for("id=\"f-in-company\"").await;
    // A picker is typed into as a person does: click, select all (Ctrl+A), type (WebDriver's
    // clear would blur it, and leaving the box restores the chosen name).
    d.click("#f-in-company").await;
    d.keys("#f-in-company", "\u{E009}a\u{E000}公司 02000").await;
    d.wait_for("aria-selected=\"true\"").await;
    d.keys("#f-in-company", "\u{E007}").await;
    d.wait_for(&format!("name=\"company\" value=\"{}\"", ids[1999])).await;
    d.click("form#f-company button[type=submit]").await;
    d.wait_for("id=\"record-version\" value=\"2\"").await;
    assert_eq!(company_of(&app, c.id).await, json!(ids[1999]));

    // The new-contact form, on a phone, links any of the 2,500 by tapping a choice.
    d.size(390, 844).await;
    d.go(&format!("{base}/o/contact/new")).await;
    d.type_in("#f-name", "李娜").await;
    // A picker is typed into as a person does: click, select all (Ctrl+A), type (WebDriver's
    // clear would blur it, and leaving the box restores the chosen name).
    d.click("#f-company").await;
    d.keys("#f-company", "00007").await;
    d.wait_for(&format!("data-value=\"{}\"", ids[6])).await;
    d.screenshot("picker-phone").await;
    d.click(&format!("#f-company-list li[data-value='{}']", ids[6])).await;
    d.click("#record-form button[type=submit]").await;
    d.wait_for("李娜</h1>").await;
    let li = app.search(&Actor::system(), "李娜", Some(&["contact"]), 5).await.unwrap();
    assert_eq!(li.len(), 1);
    assert_eq!(company_of(&app, li[0].id).await, json!(ids[6]));

    // A filter on the company: the same picker in the condition row.
    d.size(1280, 900).await;
    d.go(&format!("{base}/o/contact?st=1")).await;
    d.wait_for("record-list").await;
    d.click("#filter-panel summary").await;
    d.click("#add-cond").await;
    d.wait_for("name=\"cf\"").await;
    d.click("#conds .cond select[name=cf] option[value=company]").await;
    d.wait_for("data-source=\"/pick/company\"").await;
    // A picker is typed into as a person does: click, select all (Ctrl+A), type (WebDriver's
    // clear would blur it, and leaving the box restores the chosen name).
    d.click("#conds .cond .picker-text").await;
    d.keys("#conds .cond .picker-text", "00007").await;
    d.click(&format!("#conds .cond li[data-value='{}']", ids[6])).await;
    d.click("#apply-filter").await;
    d.wait_for(&format!("cv={}", ids[6])).await;
    let src = d.source().await;
    assert!(src.contains("李娜") && !src.contains("张伟"), "filtered by the picked company");
    assert!(src.contains("value=\"公司 00007\""), "the condition names the company");

    // Global search: a phone in three formats and a pinyin name, each hit saying what matched.
    let input = json!({"name": "郑敏", "phone": "176 7226 3394", "email": "zm@huaxia.cn"});
    let zm = app.create(&Actor::system(), "contact", input.as_object().unwrap()).await.unwrap();
    let hit = format!("href=\"/o/contact/{}\"", zm.id);
    d.go(&format!("{base}/o/company")).await;
    d.type_in("#global-search", "176-7226-3394").await;
    d.wait_for(&format!("{hit}><strong>郑敏</strong>")).await;
    d.screenshot("search-suggest-phone").await;
    for q in ["%2B86%20176%207226%203394", "17672263394", "zhengmin", "zm"] {
        d.go(&format!("{base}/search?q={q}")).await;
        d.wait_for("search-results").await;
        let src = d.source().await;
        assert!(src.contains(&hit), "{q} finds 郑敏");
        let why = if q.starts_with('z') { "姓名: 郑敏" } else { "手机: 176****3394" };
        assert!(src.contains(why), "{q}: the hit says {why}");
    }
    d.screenshot("search-pinyin").await;
    d.quit().await;
}
