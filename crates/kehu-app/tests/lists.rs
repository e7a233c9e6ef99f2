//! List views in the engine: bulk actions change only what the user may change (the rest is
//! counted as skipped) and journal every change; large ones run as jobs in batches that
//! resume after a crash without repeating a record; saved views are personal or shared with a
//! team; CSV export respects scope, masking and the export permission, and is audited.

use crate::support::*;
use kehu_app::bulk::{BulkAction, BulkOutcome, BulkRequest, Selection, INLINE_MAX};
use kehu_app::export::ExportRequest;
use kehu_app::views::ViewInput;
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use kehu_db::Raw;
use serde_json::json;

async fn audits(t: &TestApp, id: Uuid, action: &str) -> i64 {
    let q =
        Raw::new("SELECT COUNT(*) FROM audit_log WHERE record_id = $1 AND action = $2", vec![id.into(), action.into()]);
    t.db.one(&q).await.unwrap().and_then(|r| r.i64(0)).unwrap_or(-1)
}

/// A contact owned by `owner`, made by the system.
async fn contact(t: &TestApp, name: &str, owner: &Actor, extra: serde_json::Value) -> Uuid {
    let mut input = obj(json!({"name": name, "owner": owner.user_id.unwrap().to_string()}));
    if let Some(m) = extra.as_object() {
        input.extend(m.clone());
    }
    t.create(&system(), "contact", &input).await.unwrap().id
}

async fn owner_of(t: &TestApp, id: Uuid) -> Option<Uuid> {
    let r = t.get(&system(), "contact", id).await.ok()?;
    r.get("owner").as_str().and_then(|s| s.parse().ok())
}

async fn bulk_changes_only_permitted_records(t: TestApp) {
    let o = org(&t).await;
    let mut all = Vec::new();
    let mut east1 = Vec::new();
    for (i, who) in [&o.rep_east1, &o.rep_east1, &o.rep_east2, &o.rep_north, &o.manager_other].iter().enumerate() {
        let id = contact(&t, &format!("bulk{i}"), who, json!({})).await;
        if i < 2 {
            east1.push(id);
        }
        all.push(id);
    }
    // A rep selects every record (ids from elsewhere) and sets a field: only theirs change.
    let req = BulkRequest {
        object: "contact".into(),
        action: BulkAction::SetField { field: "city".into(), value: json!("杭州") },
        selection: Selection::Ids(all.clone()),
    };
    let BulkOutcome::Done(c) = t.bulk(&o.rep_east1, &req).await.unwrap() else { panic!("inline") };
    assert_eq!((c.done, c.skipped, c.failed), (2, 3, 0));
    for id in &all {
        let city = t.get(&system(), "contact", *id).await.unwrap().get("city").clone();
        assert_eq!(city == json!("杭州"), east1.contains(id), "{id}");
        assert_eq!(audits(&t, *id, "update").await, east1.contains(id) as i64);
    }
    // "Assign owner" on everything matching: a rep may only hand records to themselves, so
    // handing them to another team's user is refused before anything changes.
    let to_north = BulkRequest {
        object: "contact".into(),
        action: BulkAction::AssignOwner { owner: o.rep_north.user_id.unwrap() },
        selection: Selection::Filter(None),
    };
    let e = t.bulk(&o.rep_east1, &to_north).await.unwrap_err();
    assert_eq!(e.fields[0].code, "permission.owner_out_of_scope");
    assert_eq!(owner_of(&t, east1[0]).await, o.rep_east1.user_id);
    // The sales manager assigns everything matching to rep_east2: the sales team's records
    // move, the support team's record stays.
    let to_e2 = BulkRequest {
        object: "contact".into(),
        action: BulkAction::AssignOwner { owner: o.rep_east2.user_id.unwrap() },
        selection: Selection::Filter(Some(json!({"field": "name", "op": "starts_with", "value": "bulk"}))),
    };
    let BulkOutcome::Done(c) = t.bulk(&o.manager_sales, &to_e2).await.unwrap() else { panic!("inline") };
    assert_eq!((c.done, c.skipped), (4, 0), "the other team's record is not even selected");
    for id in &all[..4] {
        assert_eq!(owner_of(&t, *id).await, o.rep_east2.user_id);
    }
    assert_eq!(owner_of(&t, all[4]).await, o.manager_other.user_id);
    // A rep deletes "all": only their own records go to the recycle bin.
    let del =
        BulkRequest { object: "contact".into(), action: BulkAction::Delete, selection: Selection::Ids(all.clone()) };
    let BulkOutcome::Done(c) = t.bulk(&o.rep_east2, &del).await.unwrap() else { panic!("inline") };
    assert_eq!((c.done, c.skipped), (4, 1));
    assert!(t.get(&system(), "contact", all[4]).await.is_ok());
    for id in &all[..4] {
        assert!(t.get(&system(), "contact", *id).await.is_err());
        assert_eq!(audits(&t, *id, "delete").await, 1);
    }
    // Tags: add then remove, through the engine.
    let id = contact(&t, "tagged", &o.rep_east1, json!({"tags": ["老客户"]})).await;
    let add = BulkRequest {
        object: "contact".into(),
        action: BulkAction::AddTag { field: "tags".into(), tag: "vip".into() },
        selection: Selection::Ids(vec![id]),
    };
    t.bulk(&o.rep_east1, &add).await.unwrap();
    assert_eq!(t.get(&system(), "contact", id).await.unwrap().get("tags"), &json!(["老客户", "vip"]));
    let rm = BulkRequest {
        object: "contact".into(),
        action: BulkAction::RemoveTag { field: "tags".into(), tag: "老客户".into() },
        selection: Selection::Ids(vec![id]),
    };
    t.bulk(&o.rep_east1, &rm).await.unwrap();
    assert_eq!(t.get(&system(), "contact", id).await.unwrap().get("tags"), &json!(["vip"]));
    // A value the engine refuses is refused for the whole request.
    let bad = BulkRequest {
        object: "contact".into(),
        action: BulkAction::SetField { field: "email".into(), value: json!("not an email") },
        selection: Selection::Ids(vec![id]),
    };
    assert!(t.bulk(&o.rep_east1, &bad).await.is_err());
    // A read-only user may not run bulk changes at all.
    assert_eq!(t.bulk(&o.viewer, &add).await.unwrap_err().code, "permission.denied");
}
both!(bulk_changes_only_permitted_records);

async fn bulk_job_resumes_without_repeating(t: TestApp) {
    let o = org(&t).await;
    let n = INLINE_MAX as usize * 2 + 50;
    let inputs: Vec<_> = (0..n)
        .map(|i| obj(json!({"name": format!("job{i}"), "owner": o.rep_east1.user_id.unwrap().to_string()})))
        .collect();
    let mut ids = t.create_many(&system(), "contact", &inputs).await.unwrap();
    // Two records of another team (the manager's job must skip them... they are not selected).
    let other = contact(&t, "job-other", &o.manager_other, json!({})).await;
    let req = BulkRequest {
        object: "contact".into(),
        action: BulkAction::SetField { field: "lifecycle_stage".into(), value: json!("customer") },
        selection: Selection::Filter(Some(json!({"field": "name", "op": "starts_with", "value": "job"}))),
    };
    let BulkOutcome::Queued(job) = t.bulk(&o.manager_sales, &req).await.unwrap() else { panic!("queued") };
    let v = t.job(&o.manager_sales, job).await.unwrap();
    assert_eq!((v.state.as_str(), v.total, v.percent()), ("pending", n as u64, 0));
    assert!(t.job(&o.rep_north, job).await.is_err(), "someone else's job is not visible");
    // One batch, then the process "dies".
    assert!(t.run_job_batch(job).await.unwrap());
    let v = t.job(&o.manager_sales, job).await.unwrap();
    assert_eq!((v.state.as_str(), v.counts.done), ("running", kehu_app::bulk::BATCH as u64));
    assert!(v.percent() > 0 && v.percent() < 100);
    // A restarted worker finishes the job.
    assert_eq!(t.run_jobs().await.unwrap(), 1);
    let v = t.job(&o.manager_sales, job).await.unwrap();
    assert_eq!((v.state.as_str(), v.counts.done, v.counts.skipped, v.percent()), ("done", n as u64, 0, 100));
    ids.sort();
    for id in &ids {
        assert_eq!(audits(&t, *id, "update").await, 1, "{id} changed exactly once");
    }
    let q = Raw::new("SELECT COUNT(*) FROM o_contact WHERE f_lifecycle = 'customer'", vec![]);
    assert_eq!(t.db.one(&q).await.unwrap().and_then(|r| r.i64(0)), Some(n as i64));
    assert_eq!(audits(&t, other, "update").await, 0);
    // Nothing left to run.
    assert_eq!(t.run_jobs().await.unwrap(), 0);
    assert!(!t.run_job_batch(job).await.unwrap());
}
both!(bulk_job_resumes_without_repeating);

async fn saved_views_personal_and_shared(t: TestApp) {
    let o = org(&t).await;
    let input = |name: &str, team: Option<Uuid>| ViewInput {
        name: name.into(),
        team_id: team,
        columns: vec!["name".into(), "city".into(), "lifecycle_stage".into()],
        filter: Some(json!({"and": [{"field": "city", "op": "eq", "value": "上海"}]})),
        sort: "-updated_at".into(),
        layout: None,
    };
    let east = o.rep_east1.teams[0];
    // A board layout is kept with the view; one on a field that is no single select is refused.
    let board = kehu_app::views::Layout {
        kind: "board".into(),
        field: "lifecycle_stage".into(),
        sum: Some("score".into()),
        cards: vec!["city".into(), "phone".into()],
    };
    let v = ViewInput { layout: Some(board.clone()), ..input("看板", None) };
    let saved = t.create_view(&o.rep_east1, "contact", &v).await.unwrap();
    assert_eq!(saved.layout, Some(board.clone()));
    for bad in [
        kehu_app::views::Layout { field: "city".into(), ..board.clone() },
        kehu_app::views::Layout { sum: Some("city".into()), ..board.clone() },
        kehu_app::views::Layout { kind: "gantt".into(), ..board.clone() },
        kehu_app::views::Layout { cards: vec!["city".into(); 4], ..board.clone() },
    ] {
        let v = ViewInput { layout: Some(bad), ..input("坏看板", None) };
        let e = t.create_view(&o.rep_east1, "contact", &v).await.unwrap_err();
        assert_eq!(e.fields[0].code, "view.invalid_layout");
    }
    t.delete_view(&o.rep_east1, "contact", saved.id).await.unwrap();
    let mine = t.create_view(&o.rep_east1, "contact", &input("我的上海", None)).await.unwrap();
    let shared = t.create_view(&o.rep_east1, "contact", &input("华东共享", Some(east))).await.unwrap();
    assert_eq!(shared.columns, vec!["name", "city", "lifecycle_stage"]);
    let names = |v: Vec<kehu_app::views::SavedView>| v.into_iter().map(|v| v.name).collect::<Vec<_>>();
    assert_eq!(names(t.views(&o.rep_east1, "contact").await.unwrap()), vec!["华东共享", "我的上海"]);
    assert_eq!(names(t.views(&o.rep_east2, "contact").await.unwrap()), vec!["华东共享"]);
    assert!(names(t.views(&o.rep_north, "contact").await.unwrap()).is_empty());
    assert!(names(t.views(&o.manager_other, "contact").await.unwrap()).is_empty());
    assert!(t.view_by_id(&o.rep_north, "contact", shared.id).await.is_err());
    assert!(t.view_by_id(&o.rep_east2, "contact", mine.id).await.is_err());
    // Only the owner (or a manager of users/metadata) changes a shared view.
    let e = t.update_view(&o.rep_east2, "contact", shared.id, &input("x", Some(east))).await.unwrap_err();
    assert_eq!(e.code, "view.not_editable");
    assert_eq!(t.delete_view(&o.rep_east2, "contact", shared.id).await.unwrap_err().code, "view.not_editable");
    // Sharing with another team is refused for a rep.
    let north = o.rep_north.teams[0];
    assert_eq!(
        t.create_view(&o.rep_east1, "contact", &input("n", Some(north))).await.unwrap_err().code,
        "view.team_denied"
    );
    // Bad content is refused.
    let mut bad = input("bad", None);
    bad.columns.push("nope".into());
    assert!(t.create_view(&o.rep_east1, "contact", &bad).await.is_err());
    let mut bad = input("bad", None);
    bad.filter = Some(json!({"field": "city", "op": "gt", "value": 1}));
    assert!(t.create_view(&o.rep_east1, "contact", &bad).await.is_err());
    assert_eq!(
        t.create_view(&o.rep_east1, "contact", &input(" ", None)).await.unwrap_err().fields[0].code,
        "view.name_required"
    );
    // The owner updates; an administrator may delete a shared view.
    let up = t.update_view(&o.rep_east1, "contact", shared.id, &input("华东共享2", Some(east))).await.unwrap();
    assert_eq!(up.name, "华东共享2");
    t.delete_view(&o.admin, "contact", shared.id).await.unwrap();
    assert_eq!(names(t.views(&o.rep_east2, "contact").await.unwrap()), Vec::<String>::new());
    // A personal view is its owner's alone, even for an administrator.
    assert!(t.delete_view(&o.admin, "contact", mine.id).await.is_err());
    t.delete_view(&o.rep_east1, "contact", mine.id).await.unwrap();
}
both!(saved_views_personal_and_shared);

async fn export_csv_scope_masking_audit(t: TestApp) {
    let o = org(&t).await;
    contact(&t, "=HYPERLINK(\"http://evil\")", &o.rep_east1, json!({"phone": "+8613800138000", "city": "上海"})).await;
    contact(&t, "王芳", &o.rep_east2, json!({"phone": "13900139000", "lifecycle_stage": "customer"})).await;
    contact(&t, "客服联系人", &o.manager_other, json!({"phone": "13700137000"})).await;
    let req = |reveal: bool| ExportRequest {
        object: "contact".into(),
        columns: vec!["name".into(), "phone".into(), "lifecycle_stage".into(), "owner".into()],
        reveal,
        lang: "zh-CN".into(),
        ..Default::default()
    };
    // Revealed export by the sales manager: their team only.
    let (csv, n) = t.export_csv(&o.manager_sales, &req(true)).await.unwrap();
    assert_eq!(n, 2);
    assert!(csv.starts_with(&[0xEF, 0xBB, 0xBF]), "BOM");
    let text = String::from_utf8(csv).unwrap();
    assert!(text.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "{text}");
    assert!(text.contains(",+8613800138000,"), "{text}");
    assert!(text.contains("成交客户"), "option labels: {text}");
    assert!(text.contains("e2@kehu.test"), "owner names: {text}");
    assert!(!text.contains("客服联系人"), "another team's record: {text}");
    // Without reveal: masked.
    let (csv, _) = t.export_csv(&o.manager_sales, &req(false)).await.unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert!(text.contains("138****8000") && !text.contains("13800138000"), "{text}");
    // The export is audited with its count.
    let q = Raw::new(
        "SELECT changes FROM audit_log WHERE action = 'records.exported' AND actor_id = $1",
        vec![o.manager_sales.user_id.unwrap().into()],
    );
    let rows = t.db.all(&q).await.unwrap();
    assert_eq!(rows.len(), 2);
    let changes: serde_json::Value = serde_json::from_str(rows[0].str(0).unwrap()).unwrap();
    assert_eq!(changes["count"], json!(2));
    // A rep's role has no export permission; a read-only user cannot reveal.
    assert_eq!(t.export_csv(&o.rep_east1, &req(false)).await.unwrap_err().code, "permission.denied");
    let mut ro = t.role_by_key("read_only").await.unwrap().grants;
    ro.default.export = true;
    t.set_role_grants("read_only", &ro).await.unwrap();
    let viewer = t.actor(o.viewer.user_id.unwrap()).await.unwrap();
    assert_eq!(t.export_csv(&viewer, &req(true)).await.unwrap_err().code, "permission.reveal_denied");
    let (csv, n) = t.export_csv(&viewer, &req(false)).await.unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert_eq!(n, 3);
    assert!(text.contains("137****7000") && !text.contains("13700137000"), "{text}");
}
both!(export_csv_scope_masking_audit);
