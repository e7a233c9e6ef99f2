//! The recycle bin and field history in the engine: the bin lists deleted records of every
//! object within the user's delete scope, newest first; restoring many reports the ones that
//! cannot come back; purging is for administrators, removes the row and its history and
//! clears links to it; retention purges old deletions only. Field history lists changes with
//! masking, and reverting is an ordinary, versioned, audited update.

use crate::support::*;
use kehu_app::export::{ExportFormat, ExportRequest};
use kehu_app::records::bin::BinQuery;
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use kehu_db::Raw;
use serde_json::json;

async fn contact(t: &TestApp, name: &str, owner: &Actor, extra: serde_json::Value) -> Uuid {
    let mut input = obj(json!({"name": name, "owner": owner.user_id.unwrap().to_string()}));
    if let Some(m) = extra.as_object() {
        input.extend(m.clone());
    }
    t.create(&system(), "contact", &input).await.unwrap().id
}

async fn scalar(t: &TestApp, sql: &str, id: Uuid) -> i64 {
    t.db.one(&Raw::new(sql, vec![id.into()])).await.unwrap().and_then(|r| r.i64(0)).unwrap_or(-1)
}

fn all(limit: u64) -> BinQuery {
    BinQuery { limit, ..Default::default() }
}

async fn bin_within_scope_restore_many(t: TestApp) {
    let o = org(&t).await;
    let a = contact(&t, "回收甲", &o.rep_east1, json!({"email": "a@bin.test"})).await;
    let b = contact(&t, "回收乙", &o.rep_east1, json!({})).await;
    let c = contact(&t, "回收丙", &o.rep_north, json!({})).await;
    let company = t.create(&system(), "company", &obj(json!({"name": "回收公司"}))).await.unwrap().id;
    t.delete(&o.rep_east1, "contact", a, None).await.unwrap();
    t.delete(&o.rep_east1, "contact", b, None).await.unwrap();
    t.delete(&o.rep_north, "contact", c, None).await.unwrap();
    t.delete(&o.admin, "company", company, None).await.unwrap();

    // The rep sees their own deletions, newest first, with who deleted them.
    let page = t.recycle_bin(&o.rep_east1, &all(50)).await.unwrap();
    let ids: Vec<Uuid> = page.items.iter().map(|i| i.record.id).collect();
    assert_eq!(ids, vec![b, a]);
    assert_eq!(page.items[0].title, "回收乙");
    assert_eq!(page.items[0].deleted_by, o.rep_east1.user_id);
    // The administrator sees every object's, and pages through them without repeats.
    let first = t.recycle_bin(&o.admin, &all(2)).await.unwrap();
    assert_eq!(first.items.iter().map(|i| i.record.id).collect::<Vec<_>>(), vec![company, c]);
    assert_eq!(first.items[0].object.api_name, "company");
    let rest = t
        .recycle_bin(&o.admin, &BinQuery { cursor: first.next.clone(), limit: 2, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rest.items.iter().map(|i| i.record.id).collect::<Vec<_>>(), vec![b, a]);
    assert!(rest.next.is_none());
    // By object and by name.
    let only = BinQuery { object: Some("company".into()), limit: 50, ..Default::default() };
    assert_eq!(t.recycle_bin(&o.admin, &only).await.unwrap().items.len(), 1);
    let named = BinQuery { q: Some("丙".into()), limit: 50, ..Default::default() };
    assert_eq!(t.recycle_bin(&o.admin, &named).await.unwrap().items[0].record.id, c);
    // A read-only user deletes nothing, so sees no bin.
    assert!(t.bin_objects(&o.viewer).await.unwrap().is_empty());
    assert_eq!(t.recycle_bin(&o.viewer, &only).await.unwrap_err().code, "permission.denied");

    // A live record now holds a's e-mail: a cannot come back, b and (out of scope) c are
    // handled one by one.
    contact(&t, "新甲", &o.rep_east1, json!({"email": "a@bin.test"})).await;
    let items = vec![("contact".to_string(), a), ("contact".to_string(), b), ("contact".to_string(), c)];
    let res = t.restore_many(&o.rep_east1, &items).await.unwrap();
    assert!(res[0].error.as_ref().is_some_and(|e| e.fields.iter().any(|f| f.code == "field.not_unique")), "{res:?}");
    assert_eq!(res[0].title, "回收甲");
    assert!(res[1].error.is_none());
    assert_eq!(res[2].error.as_ref().unwrap().code, "record.not_found");
    assert!(t.get(&o.rep_east1, "contact", b).await.is_ok());
    assert!(t.get(&system(), "contact", a).await.is_err() && t.get(&system(), "contact", c).await.is_err());
    assert_eq!(scalar(&t, "SELECT COUNT(*) FROM audit_log WHERE record_id = $1 AND action = 'restore'", b).await, 1);
}
both!(bin_within_scope_restore_many);

async fn purge_removes_for_good_and_clears_links(t: TestApp) {
    let o = org(&t).await;
    let company = t.create(&system(), "company", &obj(json!({"name": "将被清除"}))).await.unwrap().id;
    let linked = contact(&t, "链接联系人", &o.rep_east1, json!({"company": company.to_string()})).await;
    t.update(&system(), "company", company, 1, &obj(json!({"name": "将被清除2"}))).await.unwrap();
    assert!(scalar(&t, "SELECT COUNT(*) FROM field_history WHERE record_id = $1", company).await > 0);
    let live = contact(&t, "未删除", &o.rep_east1, json!({})).await;
    t.delete(&o.admin, "company", company, None).await.unwrap();

    // Only administrators purge; a record not in the bin is refused.
    let items = vec![("company".to_string(), company)];
    assert_eq!(t.purge_many(&o.manager_sales, &items).await.unwrap_err().code, "permission.denied");
    let res = t.purge_many(&o.admin, &[("contact".to_string(), live)]).await.unwrap();
    assert_eq!(res[0].error.as_ref().unwrap().code, "record.not_found");
    assert!(t.get(&system(), "contact", live).await.is_ok());

    let before = t.get(&system(), "contact", linked).await.unwrap().version;
    let res = t.purge_many(&o.admin, &items).await.unwrap();
    assert!(res[0].error.is_none(), "{res:?}");
    let table = t.schema().await.unwrap().object("company").unwrap().table.clone();
    let q = Raw::new(format!("SELECT COUNT(*) FROM {table} WHERE id = $1"), vec![company.into()]);
    assert_eq!(t.db.one(&q).await.unwrap().and_then(|r| r.i64(0)), Some(0));
    assert_eq!(scalar(&t, "SELECT COUNT(*) FROM field_history WHERE record_id = $1", company).await, 0);
    assert_eq!(
        scalar(&t, "SELECT COUNT(*) FROM audit_log WHERE record_id = $1 AND action = 'purge'", company).await,
        1
    );
    // The contact no longer points at it, as a normal, journaled change.
    let c = t.get(&system(), "contact", linked).await.unwrap();
    assert!(c.get("company").is_null());
    assert_eq!(c.version, before + 1);
    let h = t.field_history(&system(), "contact", linked, Some("company"), None, 10).await.unwrap();
    assert_eq!(h.changes.len(), 1);
    assert_eq!(h.changes[0].old, json!(company.to_string()));
    // Purging twice: gone.
    let res = t.purge_many(&o.admin, &items).await.unwrap();
    assert_eq!(res[0].error.as_ref().unwrap().code, "record.not_found");
}
both!(purge_removes_for_good_and_clears_links);

async fn retention_purges_only_old_deletions(t: TestApp) {
    let o = org(&t).await;
    let old = contact(&t, "很久以前", &o.rep_east1, json!({})).await;
    let recent = contact(&t, "刚刚删除", &o.rep_east1, json!({})).await;
    t.delete(&o.rep_east1, "contact", old, None).await.unwrap();
    t.delete(&o.rep_east1, "contact", recent, None).await.unwrap();
    let table = t.schema().await.unwrap().object("contact").unwrap().table.clone();
    let day = 86_400_000_000i64;
    let long_ago = kehu_core::now_micros() - 40 * day;
    t.db.write(&Raw::new(
        format!("UPDATE {table} SET deleted_at = $1 WHERE id = $2"),
        vec![long_ago.into(), old.into()],
    ))
    .await
    .unwrap();
    assert_eq!(t.recycle_retention().await.unwrap(), 30);
    // Retention 0 keeps everything.
    t.set_recycle_retention(&o.admin, 0).await.unwrap();
    assert_eq!(t.purge_expired(kehu_core::now_micros()).await.unwrap(), 0);
    // Non-admins and nonsense are refused.
    assert_eq!(t.set_recycle_retention(&o.manager_sales, 5).await.unwrap_err().code, "permission.denied");
    assert_eq!(
        t.set_recycle_retention(&o.admin, 100_000).await.unwrap_err().fields[0].code,
        "recycle.invalid_retention"
    );
    t.set_recycle_retention(&o.admin, 30).await.unwrap();
    t.housekeeping().await.unwrap();
    let left: Vec<Uuid> = t.recycle_bin(&o.admin, &all(50)).await.unwrap().items.iter().map(|i| i.record.id).collect();
    assert_eq!(left, vec![recent]);
}
both!(retention_purges_only_old_deletions);

async fn history_lists_masks_and_reverts(t: TestApp) {
    let o = org(&t).await;
    let id = contact(&t, "历史", &o.rep_east1, json!({"phone": "13800138000", "city": "上海"})).await;
    let r =
        t.update(&o.rep_east1, "contact", id, 1, &obj(json!({"city": "杭州", "phone": "13900139000"}))).await.unwrap();
    let r = t.update(&o.rep_east1, "contact", id, r.version, &obj(json!({"city": "北京"}))).await.unwrap();
    let h = t.field_history(&o.rep_east1, "contact", id, None, None, 50).await.unwrap();
    let cities: Vec<_> =
        h.changes.iter().filter(|c| c.field.api_name == "city").map(|c| (c.old.clone(), c.new.clone())).collect();
    assert_eq!(cities, vec![(json!("杭州"), json!("北京")), (json!("上海"), json!("杭州"))]);
    let phone = h.changes.iter().find(|c| c.field.api_name == "phone").unwrap();
    assert_eq!(phone.old, json!("138****8000"), "masked like everywhere else");
    assert_eq!(phone.by, o.rep_east1.user_id);
    // Paging: one at a time, oldest last, no repeats.
    let p1 = t.field_history(&o.rep_east1, "contact", id, None, None, 1).await.unwrap();
    let p2 = t.field_history(&o.rep_east1, "contact", id, None, p1.before.as_deref(), 50).await.unwrap();
    assert_eq!(p1.changes.len() + p2.changes.len(), h.changes.len());
    assert!(!p2.changes.iter().any(|c| c.id == p1.changes[0].id));
    // Another team's user cannot read it.
    assert!(t.field_history(&o.rep_north, "contact", id, None, None, 50).await.is_err());

    // Revert the first city change (上海 → 杭州): the city is 上海 again, as a new change.
    let first = h.changes.iter().rev().find(|c| c.field.api_name == "city").unwrap().id;
    let stale = t.revert_change(&o.rep_east1, "contact", id, first, r.version - 1).await.unwrap_err();
    assert_eq!(stale.code, "record.version_conflict");
    assert_eq!(t.get(&system(), "contact", id).await.unwrap().get("city"), &json!("北京"));
    assert!(t.revert_change(&o.rep_north, "contact", id, first, r.version).await.is_err());
    let back = t.revert_change(&o.rep_east1, "contact", id, first, r.version).await.unwrap();
    assert_eq!(back.get("city"), &json!("上海"));
    assert_eq!(back.version, r.version + 1);
    let h2 = t.field_history(&o.rep_east1, "contact", id, Some("city"), None, 50).await.unwrap();
    assert_eq!((h2.changes[0].old.clone(), h2.changes[0].new.clone()), (json!("北京"), json!("上海")));
    // The phone's previous value comes back unmasked in the data.
    let ph = h.changes.iter().find(|c| c.field.api_name == "phone").unwrap().id;
    t.revert_change(&o.rep_east1, "contact", id, ph, back.version).await.unwrap();
    let raw = t.get(&system(), "contact", id).await.unwrap();
    assert_eq!(raw.get("phone"), &json!("13800138000"));
    // A change id of another record is not found.
    let other = contact(&t, "别人", &o.rep_east1, json!({})).await;
    let e = t.revert_change(&o.rep_east1, "contact", other, first, 1).await.unwrap_err();
    assert_eq!(e.code, "history.not_found");
}
both!(history_lists_masks_and_reverts);

async fn revert_money_and_relations(t: TestApp) {
    let a = system();
    let c1 = t.create(&a, "company", &obj(json!({"name": "甲公司"}))).await.unwrap().id;
    let c2 = t.create(&a, "company", &obj(json!({"name": "乙公司"}))).await.unwrap().id;
    let f: kehu_app::metadata::NewField = serde_json::from_value(json!({
        "api_name": "budget", "type": "currency", "label": {"en": "Budget", "zh-CN": "预算"}
    }))
    .unwrap();
    t.add_field(&a, "contact", f).await.unwrap();
    let id = t
        .create(&a, "contact", &obj(json!({"name": "预算", "company": c1.to_string(), "budget": "CNY 12.50"})))
        .await
        .unwrap()
        .id;
    let r = t
        .update(
            &a,
            "contact",
            id,
            1,
            &obj(json!({"company": c2.to_string(), "budget": {"amount": "99", "currency": "USD"}})),
        )
        .await
        .unwrap();
    let h = t.field_history(&a, "contact", id, None, None, 50).await.unwrap();
    let mut v = r.version;
    for c in &h.changes {
        v = t.revert_change(&a, "contact", id, c.id, v).await.unwrap().version;
    }
    let back = t.get(&a, "contact", id).await.unwrap();
    assert_eq!(back.get("company"), &json!(c1.to_string()));
    assert_eq!(back.get("budget")["minor"], json!(1250));
    assert_eq!(back.get("budget")["currency"], json!("CNY"));
}
both!(revert_money_and_relations);

async fn export_xlsx(t: TestApp) {
    let o = org(&t).await;
    contact(&t, "=CMD()", &o.rep_east1, json!({"phone": "+8613800138000", "city": "上海"})).await;
    contact(&t, "王芳", &o.rep_east1, json!({"city": "北京"})).await;
    let req = ExportRequest {
        object: "contact".into(),
        columns: vec!["name".into(), "phone".into(), "city".into()],
        lang: "zh-CN".into(),
        reveal: true,
        ..Default::default()
    };
    let (bytes, n) = t.export(&o.manager_sales, &req, ExportFormat::Xlsx).await.unwrap();
    assert_eq!(n, 2);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut read = |name: &str| {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut s).unwrap();
        s
    };
    let strings = read("xl/sharedStrings.xml");
    let sheet = read("xl/worksheets/sheet1.xml");
    for want in ["姓名", "'=CMD()", "+8613800138000", "上海", "王芳"] {
        assert!(strings.contains(want), "{want} in {strings}");
    }
    assert!(!sheet.contains("<f>"), "no formulas: {sheet}");
    let q = Raw::new("SELECT changes FROM audit_log WHERE action = 'records.exported'", vec![]);
    let rows = t.db.all(&q).await.unwrap();
    let changes: serde_json::Value = serde_json::from_str(rows[0].str(0).unwrap()).unwrap();
    assert_eq!((changes["count"].clone(), changes["format"].clone()), (json!(2), json!("xlsx")));
}
both!(export_xlsx);
