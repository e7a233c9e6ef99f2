//! Activities and the timeline: ordering, kinds, field changes, permissions; mentions and task
//! notifications (once each); reminders (once); my tasks; recently viewed; rich text cleaned.

use crate::support::*;
use kehu_app::activity::Entry;
use kehu_core::now_micros;
use kehu_core::value::format_datetime;
use serde_json::json;

fn kinds_of(tl: &kehu_app::activity::Timeline) -> Vec<String> {
    tl.items
        .iter()
        .map(|i| match &i.entry {
            Entry::Activity(r) => r.get("kind").as_str().unwrap().to_string(),
            Entry::Change { field, .. } => format!("change:{}", field.api_name),
            Entry::Created { .. } => "created".into(),
        })
        .collect()
}

async fn timeline_order_and_filters(t: TestApp) {
    let o = org(&t).await;
    let rep = &o.rep_east1;
    let company = t.create(rep, "company", &obj(json!({"name": "星辰科技"}))).await.unwrap();
    let c = t.create(rep, "contact", &obj(json!({"name": "张伟", "company": company.id}))).await.unwrap();
    let mut ids = Vec::new();
    for (kind, subject) in [("call", "第一次电话"), ("note", ""), ("meeting", "现场拜访"), ("task", "发报价")]
    {
        let mut i =
            obj(json!({"kind": kind, "contact": c.id, "company": company.id, "body": format!("<p>{kind}</p>")}));
        if !subject.is_empty() {
            i.insert("subject".into(), json!(subject));
        }
        ids.push(t.create(rep, "activity", &i).await.unwrap().id);
    }
    let c2 = t.update(rep, "contact", c.id, c.version, &obj(json!({"lifecycle_stage": "customer"}))).await.unwrap();
    assert_eq!(c2.version, c.version + 1);

    let tl = t.timeline(rep, "contact", c.id, &[], None, 50).await.unwrap();
    assert_eq!(
        kinds_of(&tl),
        ["change:lifecycle_stage", "task", "meeting", "note", "call", "created"],
        "newest first, the creation last"
    );
    let ats: Vec<i64> = tl.items.iter().map(|i| i.at).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "times descend: {ats:?}");
    // The change shows old → new.
    match &tl.items[0].entry {
        Entry::Change { old, new, by, .. } => {
            assert_eq!(old, &json!("lead"));
            assert_eq!(new, &json!("customer"));
            assert_eq!(*by, rep.user_id);
        }
        _ => panic!("first entry is the change"),
    }
    // Filtered by kind.
    let calls = t.timeline(rep, "contact", c.id, &["call".into(), "task".into()], None, 50).await.unwrap();
    assert_eq!(kinds_of(&calls), ["task", "call"]);
    let changes = t.timeline(rep, "contact", c.id, &["changes".into()], None, 50).await.unwrap();
    assert_eq!(kinds_of(&changes), ["change:lifecycle_stage", "created"]);
    // Paged: two at a time, no gaps or repeats.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let p = t.timeline(rep, "contact", c.id, &[], before, 2).await.unwrap();
        seen.extend(kinds_of(&p));
        match p.before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(seen, kinds_of(&tl));
    // The company's timeline holds the same activities (they carry the company too).
    let ct = t
        .timeline(
            rep,
            "company",
            company.id,
            &["note".into(), "call".into(), "meeting".into(), "task".into()],
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(ct.items.len(), 4);
    // Unknown kinds are refused.
    let Err(e) = t.timeline(rep, "contact", c.id, &["call".into(), "bogus".into()], None, 50).await else {
        panic!("an unknown kind filters")
    };
    assert_eq!(e.code, "timeline.unknown_kind");
}
both!(timeline_order_and_filters);

async fn timeline_respects_scope(t: TestApp) {
    let o = org(&t).await;
    let c = t.create(&o.rep_east1, "contact", &obj(json!({"name": "王芳", "phone": "13800138000"}))).await.unwrap();
    t.create(&o.rep_east1, "activity", &obj(json!({"kind": "note", "contact": c.id, "body": "东区笔记"})))
        .await
        .unwrap();
    // A note by the admin, owned by a manager of another department, on the same contact.
    t.create(
        &o.admin,
        "activity",
        &obj(json!({"kind": "note", "contact": c.id, "body": "客服部的笔记", "owner": o.manager_other.user_id.unwrap().to_string()})),
    )
    .await
    .unwrap();
    let c2 = t.update(&o.rep_east1, "contact", c.id, c.version, &obj(json!({"phone": "13900139000"}))).await.unwrap();
    let _ = c2;
    // Another team cannot open the timeline at all.
    let Err(e) = t.timeline(&o.rep_north, "contact", c.id, &[], None, 50).await else {
        panic!("timeline of another team")
    };
    assert_eq!(e.code, "record.not_found");
    // The sales manager sees the record, but only activities within their scope: the note
    // owned by the support manager is not among them (the admin sees both).
    let all = t.timeline(&o.admin, "contact", c.id, &["note".into()], None, 50).await.unwrap();
    assert_eq!(all.items.len(), 2);
    let tl = t.timeline(&o.manager_sales, "contact", c.id, &[], None, 50).await.unwrap();
    let bodies: Vec<String> = tl
        .items
        .iter()
        .filter_map(|i| match &i.entry {
            Entry::Activity(r) => r.get("body").as_str().map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, vec!["<p>东区笔记</p>".to_string()]);
    // Phone changes are masked in the timeline.
    let change = tl.items.iter().find_map(|i| match &i.entry {
        Entry::Change { old, new, .. } => Some((old.clone(), new.clone())),
        _ => None,
    });
    let (old, new) = change.expect("phone change in the timeline");
    assert_eq!(old, json!("138****8000"));
    assert_eq!(new, json!("139****9000"));
}
both!(timeline_respects_scope);

async fn mentions_and_assignments_notify_once(t: TestApp) {
    let o = org(&t).await;
    let e1 = &o.rep_east1;
    let e2 = o.rep_east2.user_id.unwrap();
    let mgr = o.manager_sales.user_id.unwrap();
    let c = t.create(e1, "contact", &obj(json!({"name": "李雷"}))).await.unwrap();
    // Users are named after their e-mail in the fixture.
    let note = t
        .create(e1, "activity", &obj(json!({"kind": "note", "contact": c.id, "body": "<p>请 @e2@kehu.test 跟进，@e1@kehu.test 自己不算</p>"})))
        .await
        .unwrap();
    assert_eq!(t.unread_notifications(e2).await.unwrap(), 1);
    assert_eq!(t.unread_notifications(e1.user_id.unwrap()).await.unwrap(), 0, "no notification for mentioning oneself");
    // Editing the note and adding the manager notifies only the manager.
    let note2 = t
        .update(
            e1,
            "activity",
            note.id,
            note.version,
            &obj(json!({"body": "<p>@e2@kehu.test 和 @m.sales@kehu.test</p>"})),
        )
        .await
        .unwrap();
    assert_eq!(t.unread_notifications(e2).await.unwrap(), 1);
    assert_eq!(t.unread_notifications(mgr).await.unwrap(), 1);
    let _ = note2;
    // The manager may read the rep's note: the notification names it.
    let list = t.notifications(&o.manager_sales, 10).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].kind, "mention");
    assert_eq!(list[0].record.as_ref().map(|r| r.id), Some(note.id));
    assert_eq!(list[0].actor_name.as_deref(), Some("e1@kehu.test"));
    // A task given to someone else notifies them; ticking it off does not notify again. (A
    // rep with the "own" scope may not give records away; the manager may.)
    let task = t
        .create(
            &o.manager_sales,
            "activity",
            &obj(json!({"kind": "task", "subject": "寄样品", "contact": c.id, "owner": e2.to_string()})),
        )
        .await
        .unwrap();
    assert_eq!(t.unread_notifications(e2).await.unwrap(), 2);
    t.update(&o.rep_east2, "activity", task.id, task.version, &obj(json!({"done": true}))).await.unwrap();
    assert_eq!(t.unread_notifications(e2).await.unwrap(), 2);
    assert_eq!(t.mark_read(e2, None).await.unwrap(), 2);
    assert_eq!(t.unread_notifications(e2).await.unwrap(), 0);
    // A rep of another team mentioned in a note they cannot read gets a notification that
    // names nothing.
    t.create(e1, "activity", &obj(json!({"kind": "note", "contact": c.id, "body": "@n1@kehu.test 看看"})))
        .await
        .unwrap();
    let n = t.notifications(&o.rep_north, 10).await.unwrap();
    assert_eq!(n.len(), 1);
    assert!(n[0].record.is_none(), "the recipient cannot read the note");
}
both!(mentions_and_assignments_notify_once);

async fn reminders_and_my_tasks(t: TestApp) {
    let o = org(&t).await;
    let rep = &o.rep_east1;
    let me = rep.user_id.unwrap();
    let c = t.create(rep, "contact", &obj(json!({"name": "韩梅梅"}))).await.unwrap();
    let now = now_micros();
    let hour = 3_600_000_000i64;
    let mk = |subject: &str, due: Option<i64>, remind: Option<i64>| {
        let mut i = obj(json!({"kind": "task", "subject": subject, "contact": c.id}));
        if let Some(d) = due {
            i.insert("due_at".into(), json!(format_datetime(d)));
        }
        if let Some(r) = remind {
            i.insert("remind_at".into(), json!(format_datetime(r)));
        }
        i
    };
    let late = t.create(rep, "activity", &mk("逾期", Some(now - 30 * hour), Some(now - hour))).await.unwrap();
    t.create(rep, "activity", &mk("以后", Some(now + 48 * hour), Some(now + 47 * hour))).await.unwrap();
    t.create(rep, "activity", &mk("没日期", None, None)).await.unwrap();
    let done = t.create(rep, "activity", &mk("已完成", Some(now - hour), Some(now - hour))).await.unwrap();
    t.update(rep, "activity", done.id, done.version, &obj(json!({"done": true}))).await.unwrap();
    // A note is not a task.
    t.create(rep, "activity", &obj(json!({"kind": "note", "contact": c.id, "body": "x"}))).await.unwrap();

    let mine: Vec<String> =
        t.my_tasks(rep).await.unwrap().iter().map(|r| r.get("subject").as_str().unwrap().to_string()).collect();
    assert_eq!(mine, ["逾期", "以后", "没日期"], "open tasks, soonest first, undated last");
    assert!(t.my_tasks(&o.rep_east2).await.unwrap().is_empty(), "only one's own tasks");

    assert_eq!(t.send_reminders(now).await.unwrap(), 1, "only the due reminder of an open task");
    assert_eq!(t.send_reminders(now).await.unwrap(), 0, "never twice");
    let n = t.notifications(rep, 10).await.unwrap();
    assert_eq!(n.len(), 1);
    assert_eq!((n[0].kind.as_str(), n[0].record.as_ref().map(|r| r.id)), ("reminder", Some(late.id)));
    // Later, the other reminder comes due.
    assert_eq!(t.send_reminders(now + 48 * hour).await.unwrap(), 1);
    assert_eq!(t.unread_notifications(me).await.unwrap(), 2);
}
both!(reminders_and_my_tasks);

async fn recent_and_rich_text(t: TestApp) {
    let o = org(&t).await;
    let rep = &o.rep_east1;
    let a = t.create(rep, "contact", &obj(json!({"name": "甲"}))).await.unwrap();
    let b = t.create(rep, "contact", &obj(json!({"name": "乙"}))).await.unwrap();
    let schema = t.schema().await.unwrap();
    let contact = schema.object("contact").unwrap().id;
    let me = rep.user_id.unwrap();
    t.note_view(me, contact, a.id);
    t.note_view(me, contact, b.id);
    t.note_view(me, contact, a.id);
    assert!(t.recent(rep, 5).await.unwrap().is_empty(), "noted, not yet written");
    assert_eq!(t.flush_views().await.unwrap(), 2, "one row per record");
    assert_eq!(t.flush_views().await.unwrap(), 0);
    let ids: Vec<_> = t.recent(rep, 5).await.unwrap().iter().map(|(_, r)| r.id).collect();
    assert_eq!(ids, [a.id, b.id], "one row per record, the latest visit first");
    t.delete(rep, "contact", b.id, None).await.unwrap();
    let ids: Vec<_> = t.recent(rep, 5).await.unwrap().iter().map(|(_, r)| r.id).collect();
    assert_eq!(ids, [a.id], "deleted records drop out");
    assert!(t.recent(&o.rep_north, 5).await.unwrap().is_empty());

    // Markup in a note is cleaned on the way in (the API too: the engine does it).
    let n = t
        .create(
            rep,
            "activity",
            &obj(json!({"kind": "note", "contact": a.id, "body": "<b>ok</b><script>alert(1)</script><img src=x onerror=alert(2)>"})),
        )
        .await
        .unwrap();
    assert_eq!(n.get("body"), &json!("<b>ok</b>"));
    // Markup-only bodies are empty.
    let e =
        t.create(rep, "activity", &obj(json!({"kind": "note", "contact": a.id, "body": "<script>x</script>"}))).await;
    assert!(e.is_ok(), "an empty body is allowed (not required)");
    assert_eq!(e.unwrap().get("body"), &json!(null));
}
both!(recent_and_rich_text);

async fn western_names_compose(t: TestApp) {
    let o = org(&t).await;
    let c = t.create(&o.rep_east1, "contact", &obj(json!({"first_name": "Emily", "last_name": "Chen"}))).await.unwrap();
    assert_eq!(c.get("name"), &json!("Emily Chen"));
    let z = t.create(&o.rep_east1, "contact", &obj(json!({"name": "张伟", "first_name": "Wei"}))).await.unwrap();
    assert_eq!(z.get("name"), &json!("张伟"), "a given name wins");
    let e = t.create(&o.rep_east1, "contact", &obj(json!({"job_title": "经理"}))).await.unwrap_err();
    assert_eq!(e.fields[0].field, "name", "still required without any name");
}
both!(western_names_compose);
