//! Permissions in the engine: roles × scopes × operations. A rep never sees, counts, finds,
//! updates or deletes another team's records; denied writes change nothing; a field the role
//! cannot read cannot be filtered, sorted or searched on.

use crate::support::*;
use kehu_app::ListRequest;
use kehu_core::perm::{Actor, FieldPerm};
use kehu_core::Uuid;
use kehu_db::Raw;
use serde_json::json;
use std::collections::BTreeSet;

/// Everything in the contact table and journal, to prove a refused write changed nothing.
async fn snapshot(t: &TestApp) -> Vec<String> {
    let rows =
        t.db.all(&Raw::new("SELECT id, version, deleted_at, f_name, owner_id FROM o_contact ORDER BY id", vec![]))
            .await
            .unwrap();
    let mut out: Vec<String> = rows.iter().map(|r| format!("{:?}", r.0)).collect();
    for table in ["audit_log", "outbox", "field_history", "search_docs"] {
        out.push(format!("{table}={}", count(t, table).await));
    }
    out
}

/// A record name made of letters only (digits would also match phone numbers in search).
fn word(user: &str) -> String {
    format!("matrix{}", user.replace('_', "").replace('1', "one").replace('2', "two"))
}

async fn role_scope_matrix(t: TestApp) {
    let o = org(&t).await;
    let users: Vec<(&str, &Actor)> = vec![
        ("admin", &o.admin),
        ("manager_sales", &o.manager_sales),
        ("rep_east1", &o.rep_east1),
        ("rep_east2", &o.rep_east2),
        ("rep_north", &o.rep_north),
        ("manager_other", &o.manager_other),
        ("viewer", &o.viewer),
    ];
    // One contact owned by each user, created by that user (the viewer cannot create: the
    // admin creates it for them).
    let mut recs: Vec<(String, Uuid)> = Vec::new();
    for (name, actor) in &users {
        let word = word(name);
        let input = obj(json!({"name": word.clone(), "phone": "13800000000"}));
        let r = if *name == "viewer" {
            let e = t.create(actor, "contact", &input).await.unwrap_err();
            assert_eq!(e.code, "permission.denied");
            let mut i = input.clone();
            i.insert("owner".into(), json!(actor.user_id.unwrap().to_string()));
            t.create(&o.admin, "contact", &i).await.unwrap()
        } else {
            t.create(actor, "contact", &input).await.unwrap()
        };
        recs.push((name.to_string(), r.id));
    }
    let sales_team = ["admin", "manager_sales", "rep_east1", "rep_east2", "rep_north"];
    let expected_visible = |who: &str| -> BTreeSet<String> {
        let all: BTreeSet<String> = users.iter().map(|(n, _)| n.to_string()).collect();
        match who {
            "admin" | "viewer" => all,
            "manager_sales" => sales_team.iter().map(|s| s.to_string()).collect(),
            "manager_other" => ["manager_other", "viewer"].iter().map(|s| s.to_string()).collect(),
            rep => [rep.to_string()].into_iter().collect(),
        }
    };
    for (who, actor) in &users {
        let want = expected_visible(who);
        // list
        let page = t.list(actor, "contact", &ListRequest { limit: Some(100), ..Default::default() }).await.unwrap();
        let got: BTreeSet<String> = page.records.iter().map(|r| r.get("name").as_str().unwrap().to_string()).collect();
        assert_eq!(got, want.iter().map(|w| word(w)).collect(), "{who}: list");
        // count
        assert_eq!(t.count(actor, "contact", None).await.unwrap(), want.len() as u64, "{who}: count");
        // aggregate: the total and the groups by owner are exactly the visible records
        let by_owner = kehu_app::records::aggregate::AggregateRequest {
            group_by: vec![kehu_app::records::aggregate::GroupBy { field: "owner".into(), bucket: None }],
            ..Default::default()
        };
        let agg = t.aggregate(actor, "contact", &by_owner, "en").await.unwrap();
        assert_eq!(agg.total.values[0], json!(want.len()), "{who}: aggregate total");
        let owners: BTreeSet<String> = agg.groups.iter().map(|g| g.keys[0].label.clone()).collect();
        let emails: BTreeSet<String> = want.iter().map(|w| w.to_string()).collect();
        assert_eq!(owners.len(), emails.len(), "{who}: one group per visible owner: {owners:?}");
        // search (by name word and by a phone suffix every record shares)
        let hits = t.search(actor, "0000", None, 50).await.unwrap();
        assert_eq!(hits.len(), want.len(), "{who}: search");
        for (owner, id) in &recs {
            let visible = want.contains(owner);
            assert_eq!(t.get(actor, "contact", *id).await.is_ok(), visible, "{who} get {owner}");
            let found = t.search(actor, &word(owner), None, 5).await.unwrap();
            assert_eq!(found.len(), visible as usize, "{who} search {owner}");
        }
    }
    // Writes: every actor tries to update and delete every record.
    for (who, actor) in &users {
        let want = expected_visible(who);
        for (owner, id) in &recs {
            let may = want.contains(owner) && *who != "viewer";
            let before = snapshot(&t).await;
            let cur = t.get(&o.admin, "contact", *id).await.unwrap();
            let res = t.update(actor, "contact", *id, cur.version, &obj(json!({"city": format!("by {who}")}))).await;
            assert_eq!(res.is_ok(), may, "{who} update {owner}: {res:?}");
            if !may {
                assert_eq!(snapshot(&t).await, before, "{who} update {owner} changed something");
                let e = res.unwrap_err();
                assert!(e.code == "record.not_found" || e.code == "permission.denied", "{}", e.code);
                let del = t.delete(actor, "contact", *id, None).await;
                assert!(del.is_err(), "{who} deleted {owner}");
                assert_eq!(snapshot(&t).await, before, "{who} delete {owner} changed something");
            }
        }
    }
    // A rep cannot hand a record to another team, nor create one owned by someone else.
    let mine = recs.iter().find(|(n, _)| n == "rep_east1").unwrap().1;
    let cur = t.get(&o.rep_east1, "contact", mine).await.unwrap();
    let before = snapshot(&t).await;
    let north = o.rep_north.user_id.unwrap().to_string();
    let e =
        t.update(&o.rep_east1, "contact", mine, cur.version, &obj(json!({"owner": north.clone()}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "permission.owner_out_of_scope");
    let e = t.create(&o.rep_east1, "contact", &obj(json!({"name": "x", "owner": north.clone()}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "permission.owner_out_of_scope");
    assert_eq!(snapshot(&t).await, before);
    // A manager may reassign within the team tree.
    let cur = t.get(&o.manager_sales, "contact", mine).await.unwrap();
    t.update(&o.manager_sales, "contact", mine, cur.version, &obj(json!({"owner": north}))).await.unwrap();
    assert!(t.get(&o.rep_east1, "contact", mine).await.is_err(), "reassigned away");
    assert!(t.get(&o.rep_north, "contact", mine).await.is_ok());
    // A relation to a company the rep cannot see is refused.
    let hidden = t.create(&o.rep_north, "company", &obj(json!({"name": "北方公司"}))).await.unwrap();
    let e = t
        .create(&o.rep_east2, "contact", &obj(json!({"name": "y", "company": hidden.id.to_string()})))
        .await
        .unwrap_err();
    assert_eq!(e.fields[0].code, "field.invalid_reference");
}
both!(role_scope_matrix);

async fn field_level_permissions(t: TestApp) {
    let o = org(&t).await;
    let mut role = t.role_by_key("sales_rep").await.unwrap();
    role.grants.fields.insert("contact.phone".into(), FieldPerm { read: false, write: false });
    role.grants.fields.insert("contact.score".into(), FieldPerm { read: true, write: false });
    t.set_role_grants("sales_rep", &role.grants).await.unwrap();
    let rep = t.actor(o.rep_east1.user_id.unwrap()).await.unwrap();
    let c = t.create(&rep, "contact", &obj(json!({"name": "隐私测试"}))).await.unwrap();
    t.update(&o.admin, "contact", c.id, c.version, &obj(json!({"phone": "13700001234", "score": 5}))).await.unwrap();
    let seen = t.get(&rep, "contact", c.id).await.unwrap();
    assert!(seen.fields.get("phone").is_none(), "hidden field not returned");
    assert_eq!(seen.get("score"), &json!(5));
    let f = |filter| ListRequest { filter: Some(filter), ..Default::default() };
    let e =
        t.list(&rep, "contact", &f(json!({"field": "phone", "op": "contains", "value": "1234"}))).await.unwrap_err();
    assert_eq!(e.code, "filter.field_not_readable");
    let e =
        t.list(&rep, "contact", &ListRequest { sort: Some(json!("phone")), ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code, "sort.field_not_readable");
    assert!(t.search(&rep, "1234", None, 10).await.unwrap().is_empty(), "search does not reveal hidden values");
    assert_eq!(t.search(&o.admin, "1234", None, 10).await.unwrap().len(), 1);
    assert_eq!(t.search(&rep, "隐私", None, 10).await.unwrap().len(), 1, "readable fields still found");
    let before = snapshot(&t).await;
    let e = t.update(&rep, "contact", c.id, seen.version, &obj(json!({"score": 9, "name": "改名"}))).await.unwrap_err();
    assert_eq!(e.code, "permission.field_denied");
    assert_eq!(snapshot(&t).await, before, "denied field write changed nothing");
}
both!(field_level_permissions);
