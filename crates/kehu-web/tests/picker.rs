//! The relation and user picker: a contact linked to the oldest of 2,500 companies keeps it
//! when its editor is opened and saved unchanged (the editor used to offer the 200 newest and
//! saved an empty choice); the new-record form, the filter row and the bulk set carry a picker
//! that names the current value; the choices are searched on the server within the user's
//! scope; a value the user may not see is kept and named as such.

use crate::support::*;
use axum::http::StatusCode;
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use serde_json::{json, Map, Value as Json};

fn obj(v: Json) -> Map<String, Json> {
    v.as_object().cloned().unwrap()
}

/// The value of the hidden input named `name` in a page, as a browser would submit it.
fn hidden_value(body: &str, name: &str) -> String {
    let key = format!("type=\"hidden\" name=\"{name}\" value=\"");
    let at = body.find(&key).unwrap_or_else(|| panic!("no hidden {name} in {body}")) + key.len();
    body[at..].split('"').next().unwrap().to_string()
}

/// `n` companies named `公司 00001`…, created oldest first; returns their ids in that order.
async fn companies(t: &TestWeb, n: usize, owner: Option<Uuid>) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(n);
    let rows: Vec<Map<String, Json>> = (1..=n)
        .map(|i| {
            let mut m = obj(json!({"name": format!("公司 {i:05}"), "city": if i % 2 == 0 { "杭州" } else { "沈阳" }}));
            if let Some(o) = owner {
                m.insert("owner".into(), json!(o));
            }
            m
        })
        .collect();
    for chunk in rows.chunks(500) {
        ids.extend(t.app.create_many(&Actor::system(), "company", chunk).await.unwrap());
    }
    ids
}

async fn keeps_an_old_company(t: TestWeb) {
    let admin = t.admin().await;
    let ids = companies(&t, 2500, None).await;
    let oldest = ids[0];
    let c = t.app.create(&Actor::system(), "contact", &obj(json!({"name": "张伟", "company": oldest}))).await.unwrap();
    // The in-place editor names the oldest company and holds its id.
    let ed = admin.get(&format!("/o/contact/{}/field/company", c.id)).await;
    assert_eq!(ed.status, StatusCode::OK);
    assert_eq!(hidden_value(&ed.body, "company"), oldest.to_string());
    assert!(ed.body.contains("value=\"公司 00001\""), "{}", ed.body);
    assert!(ed.body.contains("data-source=\"/pick/company\""));
    // Saved unchanged, as the browser submits the editor: the company stays, nothing is written.
    let version = hidden_value(&ed.body, "_version");
    let r = htmx_post(
        &admin,
        &format!("/o/contact/{}/field/company", c.id),
        &[("_version", &version), ("company", &hidden_value(&ed.body, "company"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = t.app.get(&Actor::system(), "contact", c.id).await.unwrap();
    assert_eq!((after.get("company"), after.version), (&json!(oldest), 1));

    // The new-contact form can link the oldest company (prefilled from the company's page).
    let form = admin.get(&format!("/o/contact/new?company={oldest}")).await.body;
    assert_eq!(hidden_value(&form, "company"), oldest.to_string());
    assert!(form.contains("value=\"公司 00001\""));
    let r = admin.post_form("/o/contact/new", &[("name", "李娜"), ("company", &oldest.to_string())]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    // The server searches all 2,500: the oldest is found by name; blank asks give the 20
    // most recently changed.
    let found = admin.get("/pick/company?q=%E5%85%AC%E5%8F%B8%2000001").await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.body.contains(&format!("data-value=\"{oldest}\"")), "{}", found.body);
    let recent = admin.get("/pick/company").await.body;
    assert_eq!(recent.matches("role=\"option\"").count(), 20, "{recent}");
    assert!(recent.contains(&format!("data-value=\"{}\"", ids[2499])) && !recent.contains(&oldest.to_string()));
    let none = admin.get("/pick/company?q=%E4%B8%8D%E5%AD%98%E5%9C%A8%E7%9A%84").await.body;
    assert!(none.contains("picker-empty") && !none.contains("data-value"), "{none}");

    // The filter row on a relation is a picker naming the chosen company; the list filters by it.
    let row = admin.get(&format!("/o/contact/filter-row?cf=company&co=eq&cv={oldest}")).await.body;
    assert_eq!(hidden_value(&row, "cv"), oldest.to_string());
    assert!(row.contains("value=\"公司 00001\"") && row.contains("data-source=\"/pick/company\""), "{row}");
    let list = admin.get(&format!("/o/contact?cf=company&co=eq&cv={oldest}")).await.body;
    assert!(list.contains("张伟") && list.contains("李娜"), "{list}");
    // The bulk set of a relation field is a picker too.
    let bulk = admin.get("/o/contact/bulk-value?field=company").await.body;
    assert!(bulk.contains("data-source=\"/pick/company\"") && bulk.contains("name=\"value\""), "{bulk}");
}
both!(keeps_an_old_company);

async fn picks_within_scope(t: TestWeb) {
    let _admin = t.admin().await;
    let rep = t.user("rep@kehu.test", "sales_rep").await;
    t.user("rep2@kehu.test", "sales_rep").await;
    let mine = companies(&t, 30, Some(rep)).await;
    let others = companies(&t, 30, None).await;
    let b = t.login("rep@kehu.test").await;
    // A rep is offered only the companies they may read, searched or not.
    let recent = b.get("/pick/company").await.body;
    assert_eq!(recent.matches("role=\"option\"").count(), 20);
    assert!(!others.iter().any(|id| recent.contains(&id.to_string())), "{recent}");
    let found = b.get("/pick/company?q=%E5%85%AC%E5%8F%B8%2000001").await.body;
    assert!(found.contains(&mine[0].to_string()) && !found.contains(&others[0].to_string()), "{found}");
    // A contact of theirs linked to a company they cannot see: the editor keeps the value and
    // says it is hidden; saving it unchanged keeps the company.
    let c = t
        .app
        .create(&Actor::system(), "contact", &obj(json!({"name": "王芳", "company": others[3], "owner": rep})))
        .await
        .unwrap();
    let ed = b.get(&format!("/o/contact/{}/field/company", c.id)).await;
    assert_eq!(ed.status, StatusCode::OK, "{}", ed.body);
    assert_eq!(hidden_value(&ed.body, "company"), others[3].to_string());
    assert!(ed.body.contains("您无权查看的记录") && !ed.body.contains("公司 00004"), "{}", ed.body);
    let r = htmx_post(
        &b,
        &format!("/o/contact/{}/field/company", c.id),
        &[("_version", "1"), ("company", &others[3].to_string())],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(t.app.get(&Actor::system(), "contact", c.id).await.unwrap().get("company"), &json!(others[3]));
    // Users: searched by name or e-mail; a filter on a user field offers "me" too.
    let users = b.get("/pick/_users?q=rep2").await.body;
    assert!(users.contains("rep2@kehu.test") && !users.contains("rep@kehu.test\""), "{users}");
    assert_eq!(users.matches("role=\"option\"").count(), 1);
    let with_me = b.get("/pick/_users?me=1").await.body;
    assert!(with_me.contains("data-value=\"$me\""), "{with_me}");
    let row = b.get("/o/contact/filter-row?cf=owner&co=eq&cv=%24me").await.body;
    assert!(
        row.contains("data-me") && row.contains("value=\"我\"") && row.contains("data-source=\"/pick/_users\""),
        "{row}"
    );
    // Bad input: an unknown object is a translated 404, an over-long query a clear error.
    assert_eq!(b.get("/pick/nothing").await.status, StatusCode::NOT_FOUND);
    let long = format!("/pick/company?q={}", "a".repeat(300));
    assert_eq!(b.get(&long).await.status, StatusCode::UNPROCESSABLE_ENTITY);
}
both!(picks_within_scope);
