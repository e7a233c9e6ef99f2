//! Duplicate detection (e-mail case, phone formats, name at the same company, hidden matches)
//! and merging (nothing lost, relations and history moved, recycle bin and audit trail,
//! conflicts and scope refusals that change nothing).

use crate::support::*;
use kehu_app::metadata::{NewField, NewObject};
use kehu_app::records::MergeRequest;
use kehu_app::ListRequest;
use kehu_core::meta::Label;
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use kehu_db::Raw;
use serde_json::{json, Value as Json};
use std::collections::HashMap;

async fn mk(t: &TestApp, actor: &Actor, object: &str, v: Json) -> (Uuid, i64) {
    let r = t.create(actor, object, &obj(v)).await.unwrap();
    (r.id, r.version)
}

fn ids(m: &[kehu_app::customers::duplicates::DuplicateMatch]) -> Vec<Option<Uuid>> {
    m.iter().map(|m| m.record.as_ref().map(|r| r.id)).collect()
}

async fn duplicate_detection(t: TestApp) {
    let o = org(&t).await;
    let a = &o.admin;
    let (huaxia, _) = mk(&t, a, "company", json!({"name": "华夏科技", "phone": "010-6552 1234"})).await;
    let (yuanjing, _) = mk(&t, a, "company", json!({"name": "远景"})).await;
    let (zw, _) = mk(
        &t,
        a,
        "contact",
        json!({"name": "张伟", "email": "Zhang.Wei@Example.com", "phone": "+86 138-0013-8000", "company": huaxia.to_string()}),
    )
    .await;
    let probe = |v: Json| obj(v);
    // E-mail in any case.
    let m = t.find_duplicates(a, "contact", &probe(json!({"email": "ZHANG.WEI@example.COM"})), None).await.unwrap();
    assert_eq!(ids(&m), vec![Some(zw)]);
    assert_eq!(m[0].kinds, vec![kehu_app::customers::duplicates::MatchKind::Email]);
    // Phone in other formats.
    for p in ["13800138000", "138 0013 8000", "+8613800138000", "(138)0013-8000"] {
        let m = t.find_duplicates(a, "contact", &probe(json!({"phone": p})), None).await.unwrap();
        assert_eq!(ids(&m), vec![Some(zw)], "{p}");
    }
    // Half-typed or different numbers match nothing.
    for p in ["1380013", "13800138001", "abc"] {
        assert!(t.find_duplicates(a, "contact", &probe(json!({"phone": p})), None).await.unwrap().is_empty(), "{p}");
    }
    // Name at the same company, and only there.
    let m = t
        .find_duplicates(a, "contact", &probe(json!({"name": "张伟", "company": huaxia.to_string()})), None)
        .await
        .unwrap();
    assert_eq!(ids(&m), vec![Some(zw)]);
    assert_eq!(m[0].record.as_ref().unwrap().title, "张伟");
    let other = probe(json!({"name": "张伟", "company": yuanjing.to_string()}));
    assert!(t.find_duplicates(a, "contact", &other, None).await.unwrap().is_empty());
    assert!(t.find_duplicates(a, "contact", &probe(json!({"name": "张伟"})), None).await.unwrap().is_empty());
    // Several reasons for one record are one match; the record itself can be left out.
    let both = probe(json!({"name": "张伟", "company": huaxia.to_string(), "phone": "13800138000"}));
    let m = t.find_duplicates(a, "contact", &both, None).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].kinds.len(), 2);
    assert!(t.find_duplicates(a, "contact", &both, Some(zw)).await.unwrap().is_empty());
    // Companies: same name; their phone too.
    let m = t.find_duplicates(a, "company", &probe(json!({"name": "华夏科技"})), None).await.unwrap();
    assert_eq!(ids(&m), vec![Some(huaxia)]);
    let m = t.find_duplicates(a, "company", &probe(json!({"phone": "01065521234"})), None).await.unwrap();
    assert_eq!(ids(&m), vec![Some(huaxia)]);

    // A match outside the actor's scope: only its existence, nothing else.
    let (east, _) = mk(&t, &o.rep_east1, "contact", json!({"name": "李娜", "phone": "13911112222"})).await;
    let m = t.find_duplicates(&o.rep_north, "contact", &probe(json!({"phone": "139 1111 2222"})), None).await.unwrap();
    assert_eq!(m.len(), 1);
    assert!(m[0].record.is_none());
    let text = serde_json::to_string(&m).unwrap();
    assert!(!text.contains("李娜") && !text.contains(&east.to_string()), "{text}");
    let m = t.find_duplicates(&o.rep_east1, "contact", &probe(json!({"phone": "139 1111 2222"})), None).await.unwrap();
    assert_eq!(ids(&m), vec![Some(east)]);

    // The duplicates page: a phone group across formats, a name group within one company.
    let (zw2, _) = mk(&t, a, "contact", json!({"name": "Zhang Wei", "phone": "138 0013 8000"})).await;
    let (zw3, _) = mk(&t, a, "contact", json!({"name": "张伟", "company": huaxia.to_string()})).await;
    mk(&t, a, "contact", json!({"name": "张伟", "company": yuanjing.to_string()})).await;
    let page = t.duplicate_groups(a, "contact", "phone", None).await.unwrap();
    assert_eq!(page.groups.len(), 1, "{page:?}");
    let mut got: Vec<Uuid> = page.groups[0].records.iter().map(|r| r.id).collect();
    got.sort();
    let mut want = vec![zw, zw2];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(page.groups[0].value, "138****8000");
    let page = t.duplicate_groups(a, "contact", "name", None).await.unwrap();
    assert_eq!(page.groups.len(), 1, "{page:?}");
    let mut got: Vec<Uuid> = page.groups[0].records.iter().map(|r| r.id).collect();
    got.sort();
    let mut want = vec![zw, zw3];
    want.sort();
    assert_eq!(got, want);
    mk(&t, a, "company", json!({"name": "华夏科技"})).await;
    let page = t.duplicate_groups(a, "company", "name", None).await.unwrap();
    assert_eq!(page.groups.len(), 1);
    assert_eq!(page.groups[0].records.len(), 2);
    // A rep sees their record of a group and a count of the others.
    mk(&t, &o.rep_north, "contact", json!({"name": "李娜", "phone": "+86 139 1111 2222"})).await;
    let page = t.duplicate_groups(&o.rep_north, "contact", "phone", None).await.unwrap();
    assert_eq!(page.groups.len(), 1);
    assert_eq!((page.groups[0].records.len(), page.groups[0].hidden), (1, 1));
    assert!(!serde_json::to_string(&page).unwrap().contains(&east.to_string()));
    // Paging: many groups come in pages, each group once.
    for i in 0..30 {
        for _ in 0..2 {
            mk(&t, a, "company", json!({"name": format!("分组{i:02}")})).await;
        }
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = t.duplicate_groups(a, "company", "name", cursor.as_deref()).await.unwrap();
        seen.extend(page.groups.iter().map(|g| g.value.clone()));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let n = seen.len();
    seen.dedup();
    assert_eq!((n, seen.len()), (31, 31));
    let e = t.duplicate_groups(a, "contact", "wechat", None).await.unwrap_err();
    assert_eq!(e.code, "duplicates.unknown_rule");
}
both!(duplicate_detection);

/// Rows that must not change when a merge is refused.
async fn snapshot(t: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT id, version, deleted_at, f_name, f_email, f_company FROM o_contact ORDER BY id",
        "SELECT id, version, deleted_at, f_name FROM o_company ORDER BY id",
        "SELECT id, record_id FROM field_history ORDER BY id",
    ] {
        let rows = t.db.all(&Raw::new(sql, vec![])).await.unwrap();
        out.extend(rows.iter().map(|r| format!("{:?}", r.0)));
    }
    for table in ["audit_log", "outbox", "search_docs"] {
        out.push(format!("{table}={}", count(t, table).await));
    }
    out
}

fn req(survivor: Uuid, merge: &[Uuid], versions: &[(Uuid, i64)], values: &[(&str, Uuid)]) -> MergeRequest {
    MergeRequest {
        survivor,
        merge: merge.to_vec(),
        versions: versions.iter().copied().collect(),
        values: values.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
    }
}

async fn merge_keeps_everything_and_moves_relations(t: TestApp) {
    let a = system();
    // A custom object with a relation to contacts.
    t.create_object(
        &a,
        NewObject {
            api_name: "project".into(),
            label: Label::new("Project", "项目"),
            plural: Label::new("Projects", "项目"),
            icon: None,
        },
    )
    .await
    .unwrap();
    let f: NewField = serde_json::from_value(json!({"api_name": "contact", "type": "relation",
        "label": {"en": "Contact", "zh-CN": "联系人"}, "target_object": "contact"}))
    .unwrap();
    t.add_field(&a, "project", f).await.unwrap();
    let (huaxia, _) = mk(&t, &a, "company", json!({"name": "华夏科技"})).await;
    let (keep, kv) = mk(
        &t,
        &a,
        "contact",
        json!({"name": "张伟", "phone": "13800138000", "job_title": "经理", "tags": ["vip"], "company": huaxia.to_string()}),
    )
    .await;
    let (gone, _) = mk(
        &t,
        &a,
        "contact",
        json!({"name": "Zhang Wei", "email": "zw@huaxia.cn", "phone": "+86 138 0013 8000", "job_title": "CTO",
               "wechat": "zw123", "tags": ["beijing", "vip"]}),
    )
    .await;
    // History of the merged record: a change of city.
    let g = t.update(&a, "contact", gone, 1, &obj(json!({"city": "北京"}))).await.unwrap();
    let (p, pv) = mk(&t, &a, "project", json!({"name": "CRM 上线", "contact": gone.to_string()})).await;

    let m = req(keep, &[gone], &[(keep, kv), (gone, g.version)], &[("job_title", gone)]);
    let r = t.merge(&a, "contact", &m).await.unwrap();
    // Chosen value from the merged record, survivor's values kept, empty ones filled, tags unioned.
    assert_eq!(r.get("job_title"), &json!("CTO"));
    assert_eq!(r.get("name"), &json!("张伟"));
    assert_eq!(r.get("wechat"), &json!("zw123"));
    assert_eq!(r.get("city"), &json!("北京"));
    assert_eq!(r.get("email"), &json!("zw@huaxia.cn"), "unique value taken over");
    assert_eq!(r.get("tags"), &json!(["vip", "beijing"]));
    assert_eq!(r.get("company"), &json!(huaxia.to_string()));
    assert_eq!(r.version, kv + 1);
    let fresh = t.get(&a, "contact", keep).await.unwrap();
    assert_eq!(fresh, r);
    // The custom object's record now points at the survivor, with a new version and a trail.
    let pr = t.get(&a, "project", p).await.unwrap();
    assert_eq!(pr.get("contact"), &json!(keep.to_string()));
    assert_eq!(pr.version, pv + 1);
    let n = t
        .db
        .one(&Raw::new("SELECT COUNT(*) FROM outbox WHERE record_id = $1 AND event = 'record.updated'", vec![p.into()]))
        .await
        .unwrap()
        .and_then(|r| r.i64(0));
    assert_eq!(n, Some(1));
    // The merged record's field history is the survivor's now.
    let rows = t
        .db
        .all(&Raw::new("SELECT record_id, new_value FROM field_history WHERE new_value = $1", vec!["\"北京\"".into()]))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.uuid(0) == Some(keep)));
    // The merged record is in the recycle bin, not found, not searchable; the trail names both.
    assert_eq!(t.get(&a, "contact", gone).await.unwrap_err().code, "record.not_found");
    let bin = t.list(&a, "contact", &ListRequest { deleted: true, ..Default::default() }).await.unwrap();
    assert_eq!(bin.records.iter().map(|r| r.id).collect::<Vec<_>>(), vec![gone]);
    assert_eq!(bin.records[0].get("email"), &Json::Null, "unique value cleared");
    let audit = |id: Uuid, action: &'static str| {
        let db = t.db.clone();
        async move {
            db.one(&Raw::new(
                "SELECT changes FROM audit_log WHERE record_id = $1 AND action = $2",
                vec![id.into(), action.into()],
            ))
            .await
            .unwrap()
            .and_then(|r| r.string(0))
            .unwrap_or_default()
        }
    };
    let merged: Json = serde_json::from_str(&audit(gone, "record.merged").await).unwrap();
    assert_eq!(merged["into"], json!(keep.to_string()));
    assert_eq!(merged["cleared"]["email"], json!("zw@huaxia.cn"));
    let survivor: Json = serde_json::from_str(&audit(keep, "merge").await).unwrap();
    assert_eq!(survivor["merged"], json!([gone.to_string()]));
    let hits = t.search(&a, "zw123", None, 10).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![keep]);

    // Companies: the contacts of a merged company point at the survivor.
    let (dup, dv) = mk(&t, &a, "company", json!({"name": "华夏科技有限公司", "tags": ["a"]})).await;
    let (c2, _) = mk(&t, &a, "contact", json!({"name": "李娜", "company": dup.to_string()})).await;
    let hv = t.get(&a, "company", huaxia).await.unwrap().version;
    let r = t.merge(&a, "company", &req(huaxia, &[dup], &[(huaxia, hv), (dup, dv)], &[("name", dup)])).await.unwrap();
    assert_eq!(r.get("name"), &json!("华夏科技有限公司"));
    assert_eq!(r.get("tags"), &json!(["a"]));
    assert_eq!(t.get(&a, "contact", c2).await.unwrap().get("company"), &json!(huaxia.to_string()));
    assert_eq!(t.get(&a, "contact", keep).await.unwrap().get("company"), &json!(huaxia.to_string()));
}
both!(merge_keeps_everything_and_moves_relations);

async fn refused_merges_change_nothing(t: TestApp) {
    let o = org(&t).await;
    let (c1, v1) = mk(&t, &o.rep_east1, "contact", json!({"name": "王芳", "phone": "13700001111"})).await;
    let (c2, v2) = mk(&t, &o.rep_east1, "contact", json!({"name": "王芳", "phone": "137 0000 1111"})).await;
    let (c3, v3) = mk(&t, &o.rep_north, "contact", json!({"name": "王芳", "phone": "13700001111"})).await;
    let before = snapshot(&t).await;
    // A stale version of the merged record: a conflict, nothing written.
    let e = t.merge(&o.rep_east1, "contact", &req(c1, &[c2], &[(c1, v1), (c2, v2 - 1)], &[])).await.unwrap_err();
    assert_eq!(e.code, "record.version_conflict");
    // A stale survivor too.
    let e = t.merge(&o.rep_east1, "contact", &req(c1, &[c2], &[(c1, v1 + 1), (c2, v2)], &[])).await.unwrap_err();
    assert_eq!(e.code, "record.version_conflict");
    // Another team's record cannot be merged in, nor be the survivor.
    let e = t.merge(&o.rep_east1, "contact", &req(c1, &[c3], &[(c1, v1), (c3, v3)], &[])).await.unwrap_err();
    assert_eq!(e.code, "record.not_found");
    let e = t.merge(&o.rep_east1, "contact", &req(c3, &[c1], &[(c1, v1), (c3, v3)], &[])).await.unwrap_err();
    assert_eq!(e.code, "record.not_found");
    // A read-only user cannot merge at all.
    let e = t.merge(&o.viewer, "contact", &req(c1, &[c2], &[(c1, v1), (c2, v2)], &[])).await.unwrap_err();
    assert_eq!(e.code, "permission.denied");
    // Bad requests.
    let e = t.merge(&o.admin, "contact", &req(c1, &[c1], &[(c1, v1)], &[])).await.unwrap_err();
    assert_eq!(e.fields[0].code, "merge.invalid_selection");
    let e = t.merge(&o.admin, "contact", &req(c1, &[c2], &[(c1, v1)], &[])).await.unwrap_err();
    assert_eq!(e.fields[0].code, "merge.version_required");
    let e = t.merge(&o.admin, "contact", &req(c1, &[c2], &[(c1, v1), (c2, v2)], &[("name", c3)])).await.unwrap_err();
    assert_eq!(e.fields[0].code, "merge.invalid_source");
    let e = t.merge(&o.admin, "contact", &req(c1, &[c2], &[(c1, v1), (c2, v2)], &[("nope", c2)])).await.unwrap_err();
    assert_eq!(e.fields[0].code, "field.unknown");
    assert_eq!(snapshot(&t).await, before);
    // The rep may merge their own two.
    let r = t.merge(&o.rep_east1, "contact", &req(c1, &[c2], &[(c1, v1), (c2, v2)], &[])).await.unwrap();
    assert_eq!(r.id, c1);
    assert_ne!(snapshot(&t).await, before);
}
both!(refused_merges_change_nothing);
