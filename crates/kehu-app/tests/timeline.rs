//! The record timeline pages by (time, id): with and without a kind filter, no entry is skipped
//! or repeated when many entries share one timestamp; the kinds it filters by are the activity
//! `kind` field's current options, so an option an administrator adds is a filter at once.

use crate::support::*;
use kehu_app::activity::{Entry, Timeline};
use kehu_app::metadata::FieldPatch;
use kehu_core::meta::{Choice, Label};
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use serde_json::json;

/// An entry's identity: an activity by its id, a change by its field, the creation.
fn keys(tl: &Timeline) -> Vec<String> {
    tl.items
        .iter()
        .map(|i| match &i.entry {
            Entry::Activity(r) => r.id.to_string(),
            Entry::Change { field, .. } => format!("change:{}", field.api_name),
            Entry::Created { .. } => "created".into(),
        })
        .collect()
}

/// Every page of a timeline, `limit` at a time, with the number of pages read.
async fn all_pages(t: &TestApp, actor: &Actor, id: Uuid, kinds: &[&str], limit: usize) -> (Vec<String>, usize) {
    let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    let mut seen = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let p = t.timeline(actor, "contact", id, &kinds, before, limit).await.unwrap();
        pages += 1;
        assert!(p.items.len() <= limit, "a page holds at most {limit} entries");
        seen.extend(keys(&p));
        match p.before {
            Some(b) => before = Some(b),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    (seen, pages)
}

async fn timeline_pages_through_shared_timestamps(t: TestApp) {
    let o = org(&t).await;
    let rep = &o.rep_east1;
    let c = t.create(rep, "contact", &obj(json!({"name": "赵敏"}))).await.unwrap();
    // 36 activities written in one batch share one creation time.
    let kinds = ["call", "note", "meeting"];
    let inputs: Vec<_> =
        (0..36).map(|i| obj(json!({"kind": kinds[i % 3], "contact": c.id, "subject": format!("第{i}条")}))).collect();
    let batch = t.create_many(rep, "activity", &inputs).await.unwrap();
    let mut singles = Vec::new();
    for k in ["call", "note", "call"] {
        singles.push(t.create(rep, "activity", &obj(json!({"kind": k, "contact": c.id}))).await.unwrap().id);
    }
    // One update of three fields: three changes at one time.
    t.update(
        rep,
        "contact",
        c.id,
        c.version,
        &obj(json!({"city": "杭州", "job_title": "经理", "lifecycle_stage": "customer"})),
    )
    .await
    .unwrap();

    let full = t.timeline(rep, "contact", c.id, &[], None, 100).await.unwrap();
    assert!(full.before.is_none(), "everything fits one page of 100");
    let all = keys(&full);
    let batch_at = kehu_app::activity::micros(&t.get(rep, "activity", batch[0]).await.unwrap(), "created_at").unwrap();
    assert_eq!(full.items.iter().filter(|i| i.at == batch_at).count(), 36, "the batch shares one timestamp");
    let mut expected: Vec<String> = batch.iter().chain(&singles).map(|i| i.to_string()).collect();
    expected.extend(["change:city", "change:job_title", "change:lifecycle_stage", "created"].map(String::from));
    let mut sorted = all.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "every entry once");
    let ats: Vec<i64> = full.items.iter().map(|i| i.at).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Paged without a filter: the same entries in the same order, each once.
    for limit in [1, 7, 10, 36] {
        let (paged, pages) = all_pages(&t, rep, c.id, &[], limit).await;
        assert_eq!(paged, all, "unfiltered, {limit} a page");
        assert_eq!(pages, all.len().div_ceil(limit), "unfiltered, {limit} a page: no empty last page");
    }
    // Filtered by kind: every call (12 in the batch, 2 alone), over several pages.
    let calls: Vec<String> = full
        .items
        .iter()
        .filter_map(|i| match &i.entry {
            Entry::Activity(r) if r.get("kind") == &json!("call") => Some(r.id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 14);
    let (paged, pages) = all_pages(&t, rep, c.id, &["call"], 5).await;
    assert_eq!((paged, pages), (calls.clone(), 3), "calls, 5 a page");
    // Changes only: three at one time, then the creation.
    let (paged, _) = all_pages(&t, rep, c.id, &["changes"], 2).await;
    assert_eq!(paged, all.iter().filter(|k| k.starts_with("change:") || *k == "created").cloned().collect::<Vec<_>>());
    assert_eq!(paged.len(), 4);
    // Calls and changes together.
    let both: Vec<String> =
        all.iter().filter(|k| calls.contains(k) || k.starts_with("change:") || *k == "created").cloned().collect();
    assert_eq!(both.len(), 18);
    for limit in [3, 4] {
        let (paged, _) = all_pages(&t, rep, c.id, &["call", "changes"], limit).await;
        assert_eq!(paged, both, "calls and changes, {limit} a page");
    }
}
both!(timeline_pages_through_shared_timestamps);

async fn admin_added_kind_filters_timeline(t: TestApp) {
    let o = org(&t).await;
    let rep = &o.rep_east1;
    let schema = t.schema().await.unwrap();
    let kind = schema.object("activity").unwrap().field("kind").unwrap().clone();
    let mut choices = kind.options.choices.clone();
    choices.push(Choice {
        key: "visit".into(),
        label: Label::new("Site visit", "上门拜访"),
        color: "teal".into(),
        archived: false,
    });
    t.update_field(&o.admin, "activity", "kind", FieldPatch { choices: Some(choices.clone()), ..Default::default() })
        .await
        .unwrap();
    let c = t.create(rep, "contact", &obj(json!({"name": "周芷若"}))).await.unwrap();
    let visit = t.create(rep, "activity", &obj(json!({"kind": "visit", "contact": c.id}))).await.unwrap();
    t.create(rep, "activity", &obj(json!({"kind": "call", "contact": c.id}))).await.unwrap();

    let visits = t.timeline(rep, "contact", c.id, &["visit".into()], None, 50).await.unwrap();
    assert_eq!(keys(&visits), [visit.id.to_string()], "the new kind filters the timeline");
    let mixed = t.timeline(rep, "contact", c.id, &["visit".into(), "changes".into()], None, 50).await.unwrap();
    assert_eq!(keys(&mixed), [visit.id.to_string(), "created".to_string()]);
    let names: Vec<String> =
        kehu_app::activity::kind_choices(&t.schema().await.unwrap()).iter().map(|c| c.key.clone()).collect();
    assert_eq!(names, ["note", "call", "meeting", "task", "email", "visit"]);

    // Unknown kinds are refused; so is an archived one (no longer offered), though the
    // unfiltered timeline still shows its activities.
    let Err(e) = t.timeline(rep, "contact", c.id, &["call".into(), "bogus".into()], None, 50).await else {
        panic!("an unknown kind filters")
    };
    assert_eq!(e.code, "timeline.unknown_kind");
    for ch in choices.iter_mut().filter(|ch| ch.key == "visit") {
        ch.archived = true;
    }
    t.update_field(&o.admin, "activity", "kind", FieldPatch { choices: Some(choices), ..Default::default() })
        .await
        .unwrap();
    let Err(e) = t.timeline(rep, "contact", c.id, &["visit".into()], None, 50).await else {
        panic!("an archived kind filters")
    };
    assert_eq!(e.code, "timeline.unknown_kind");
    let all = t.timeline(rep, "contact", c.id, &[], None, 50).await.unwrap();
    assert!(keys(&all).contains(&visit.id.to_string()));
    let names: Vec<String> =
        kehu_app::activity::kind_choices(&t.schema().await.unwrap()).iter().map(|c| c.key.clone()).collect();
    assert_eq!(names, ["note", "call", "meeting", "task", "email"]);
}
both!(admin_added_kind_filters_timeline);
