//! The write path: create, get, update with versions, unique fields, delete and restore, and
//! that audit, outbox and data commit together or not at all.

use crate::support::*;
use kehu_core::ErrorKind;
use serde_json::json;

async fn create_get_update(t: TestApp) {
    let a = system();
    let c = t
        .create(
            &a,
            "contact",
            &obj(json!({"name": "张伟", "email": "Zhang.Wei@Example.com", "phone": "+86 138 0013 8000"})),
        )
        .await
        .unwrap();
    assert_eq!(c.version, 1);
    assert_eq!(c.get("email"), &json!("zhang.wei@example.com"));
    assert_eq!(c.get("phone"), &json!("+8613800138000"));
    assert_eq!(c.get("lifecycle_stage"), &json!("lead"), "default applied");
    let got = t.get(&a, "contact", c.id).await.unwrap();
    assert_eq!(got, c);
    let u = t.update(&a, "contact", c.id, 1, &obj(json!({"job_title": "销售总监"}))).await.unwrap();
    assert_eq!(u.version, 2);
    assert_eq!(u, t.get(&a, "contact", c.id).await.unwrap(), "what update returns is what is stored");
    assert_eq!(u.get("job_title"), &json!("销售总监"));
    assert_eq!(u.get("name"), &json!("张伟"), "partial update keeps other fields");
    // Each write left one audit entry and one outbox event; the update one field-history row.
    assert_eq!(count(&t, "audit_log").await, 2);
    assert_eq!(count(&t, "outbox").await, 2);
    assert_eq!(count(&t, "field_history").await, 1);
    let ev = t.db.all(&kehu_db::Raw::new("SELECT event FROM outbox ORDER BY id", vec![])).await.unwrap();
    let evs: Vec<String> = ev.iter().filter_map(|r| r.string(0)).collect();
    assert_eq!(evs, ["record.created", "record.updated"]);
}
both!(create_get_update);

async fn stale_version_conflicts(t: TestApp) {
    let a = system();
    let c = t.create(&a, "contact", &obj(json!({"name": "李娜"}))).await.unwrap();
    t.update(&a, "contact", c.id, 1, &obj(json!({"city": "上海"}))).await.unwrap();
    let before_audit = count(&t, "audit_log").await;
    let e = t.update(&a, "contact", c.id, 1, &obj(json!({"city": "北京"}))).await.unwrap_err();
    assert_eq!(e.code, "record.version_conflict");
    assert_eq!(e.kind, ErrorKind::Conflict);
    let now = t.get(&a, "contact", c.id).await.unwrap();
    assert_eq!(now.get("city"), &json!("上海"), "row unchanged");
    assert_eq!(now.version, 2);
    assert_eq!(count(&t, "audit_log").await, before_audit, "no audit for a refused write");
    let e = t.delete(&a, "contact", c.id, Some(1)).await.unwrap_err();
    assert_eq!(e.code, "record.version_conflict");
}
both!(stale_version_conflicts);

async fn unique_violation_is_a_field_error_and_writes_nothing(t: TestApp) {
    let a = system();
    t.create(&a, "contact", &obj(json!({"name": "A", "email": "dup@example.com"}))).await.unwrap();
    let (audit, outbox, docs) =
        (count(&t, "audit_log").await, count(&t, "outbox").await, count(&t, "search_docs").await);
    let e = t.create(&a, "contact", &obj(json!({"name": "B", "email": "DUP@example.com"}))).await.unwrap_err();
    assert_eq!(e.fields.len(), 1);
    assert_eq!((e.fields[0].field.as_str(), e.fields[0].code.as_str()), ("email", "field.not_unique"));
    assert_eq!(count(&t, "o_contact").await, 1, "no row");
    assert_eq!(count(&t, "audit_log").await, audit, "no audit entry");
    assert_eq!(count(&t, "outbox").await, outbox, "no event");
    assert_eq!(count(&t, "search_docs").await, docs, "no search document");
    // An update into a taken value is refused the same way and changes nothing.
    let b = t.create(&a, "contact", &obj(json!({"name": "B", "email": "b@example.com"}))).await.unwrap();
    let e = t.update(&a, "contact", b.id, 1, &obj(json!({"email": "dup@example.com"}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "field.not_unique");
    assert_eq!(t.get(&a, "contact", b.id).await.unwrap().get("email"), &json!("b@example.com"));
    // A batch with one bad row writes none of its rows.
    let rows = vec![obj(json!({"name": "C"})), obj(json!({"name": "D", "email": "dup@example.com"}))];
    assert!(t.create_many(&a, "contact", &rows).await.is_err());
    assert_eq!(count(&t, "o_contact").await, 2);
}
both!(unique_violation_is_a_field_error_and_writes_nothing);

async fn delete_hides_and_restore_brings_back(t: TestApp) {
    let a = system();
    let c = t.create(&a, "contact", &obj(json!({"name": "王芳", "email": "wf@example.com"}))).await.unwrap();
    t.delete(&a, "contact", c.id, None).await.unwrap();
    assert_eq!(t.get(&a, "contact", c.id).await.unwrap_err().code, "record.not_found");
    let page = t.list(&a, "contact", &Default::default()).await.unwrap();
    assert!(page.records.is_empty());
    assert!(t.search(&a, "王芳", None, 10).await.unwrap().is_empty(), "deleted records are not found");
    let bin = t.list(&a, "contact", &kehu_app::ListRequest { deleted: true, ..Default::default() }).await.unwrap();
    assert_eq!(bin.records.len(), 1);
    assert!(bin.records[0].deleted_at.is_some());
    // The e-mail is free while the record is in the recycle bin; restoring then conflicts.
    let other = t.create(&a, "contact", &obj(json!({"name": "X", "email": "wf@example.com"}))).await.unwrap();
    assert_eq!(t.restore(&a, "contact", c.id).await.unwrap_err().fields[0].code, "field.not_unique");
    t.delete(&a, "contact", other.id, None).await.unwrap();
    let r = t.restore(&a, "contact", c.id).await.unwrap();
    assert_eq!(r, t.get(&a, "contact", c.id).await.unwrap(), "what restore returns is what is stored");
    assert_eq!(r.get("name"), &json!("王芳"));
    assert_eq!(t.search(&a, "王芳", None, 10).await.unwrap().len(), 1);
    assert_eq!(t.restore(&a, "contact", c.id).await.unwrap_err().code, "record.not_deleted");
    let events =
        t.db.all(&kehu_db::Raw::new("SELECT event FROM outbox WHERE record_id = $1", vec![c.id.into()])).await.unwrap();
    let mut evs: Vec<String> = events.iter().filter_map(|r| r.string(0)).collect();
    evs.sort();
    assert_eq!(evs, ["record.created", "record.deleted", "record.restored"]);
}
both!(delete_hides_and_restore_brings_back);

async fn bad_input_gets_clear_errors(t: TestApp) {
    let a = system();
    assert_eq!(t.create(&a, "nope", &obj(json!({"name": "x"}))).await.unwrap_err().code, "object.not_found");
    let e = t
        .create(
            &a,
            "contact",
            &obj(json!({"name": "x", "bogus": 1, "score": "ten", "email": "not-an-email", "created_at": "2020-01-01"})),
        )
        .await
        .unwrap_err();
    let mut codes: Vec<(String, String)> = e.fields.iter().map(|f| (f.field.clone(), f.code.clone())).collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("bogus".to_string(), "field.unknown".to_string()),
            ("created_at".into(), "field.readonly".into()),
            ("email".into(), "field.invalid_email".into()),
            ("score".into(), "field.invalid_integer".into()),
        ]
    );
    let e = t.create(&a, "contact", &obj(json!({"name": "x".repeat(300)}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "field.too_long");
    let e = t.create(&a, "contact", &obj(json!({"email": "a@b.cn"}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "field.required");
    let e = t
        .create(&a, "contact", &obj(json!({"name": "x", "company": "00000000-0000-7000-8000-000000000000"})))
        .await
        .unwrap_err();
    assert_eq!(e.fields[0].code, "field.invalid_reference");
    let e = t.create(&a, "contact", &obj(json!({"name": "x", "company": "not-a-uuid"}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "field.invalid_reference");
    let e = t.get(&a, "contact", kehu_core::new_id()).await.unwrap_err();
    assert_eq!(e.code, "record.not_found");
    for bad in [
        json!(1),
        json!({"and": 1}),
        json!({"field": "name"}),
        json!({"field": "name", "op": "eq", "value": 1, "x": 2}),
    ] {
        let req = kehu_app::ListRequest { filter: Some(bad), ..Default::default() };
        assert_eq!(t.list(&a, "contact", &req).await.unwrap_err().code, "filter.malformed");
    }
    let req =
        kehu_app::ListRequest { filter: Some(json!({"field": "nope", "op": "eq", "value": 1})), ..Default::default() };
    assert_eq!(t.list(&a, "contact", &req).await.unwrap_err().code, "filter.unknown_field");
    let req = kehu_app::ListRequest {
        filter: Some(json!({"field": "name", "op": "lt", "value": "a"})),
        ..Default::default()
    };
    assert_eq!(t.list(&a, "contact", &req).await.unwrap_err().code, "filter.op_not_supported");
    let req = kehu_app::ListRequest {
        filter: Some(json!({"field": "score", "op": "gt", "value": "x"})),
        ..Default::default()
    };
    assert_eq!(t.list(&a, "contact", &req).await.unwrap_err().fields[0].code, "field.invalid_integer");
    let mut deep = json!({"field": "name", "op": "eq", "value": "a"});
    for _ in 0..10 {
        deep = json!({"and": [deep]});
    }
    let req = kehu_app::ListRequest { filter: Some(deep), ..Default::default() };
    assert_eq!(t.list(&a, "contact", &req).await.unwrap_err().code, "filter.too_complex");
    let req = kehu_app::ListRequest { cursor: Some("garbage".into()), ..Default::default() };
    assert_eq!(t.list(&a, "contact", &req).await.unwrap_err().code, "query.invalid_cursor");
    let req = kehu_app::ListRequest { sort: Some(json!("-nope")), ..Default::default() };
    assert_eq!(t.list(&a, "contact", &req).await.unwrap_err().code, "sort.unknown_field");
    let req = kehu_app::ListRequest { limit: Some(100_000), ..Default::default() };
    assert_eq!(t.list(&a, "contact", &req).await.unwrap_err().fields[0].code, "query.invalid_limit");
    // SQL-looking input is just data.
    let c = t.create(&a, "contact", &obj(json!({"name": "Robert'); DROP TABLE o_contact;--"}))).await.unwrap();
    assert_eq!(t.get(&a, "contact", c.id).await.unwrap().get("name"), &json!("Robert'); DROP TABLE o_contact;--"));
}
both!(bad_input_gets_clear_errors);

async fn migrations_are_recorded_and_idempotent(t: TestApp) {
    let rows =
        t.db.all(&kehu_db::Raw::new("SELECT version FROM schema_migrations ORDER BY version", vec![])).await.unwrap();
    let versions: Vec<i64> = rows.iter().filter_map(|r| r.i64(0)).collect();
    let want: Vec<i64> = kehu_db::schema::versions().into_iter().chain([1001, 1002, 1003]).collect();
    assert_eq!(versions, want);
    assert!(kehu_db::migrate::run(&t.db).await.unwrap().is_empty(), "nothing left to apply");
    kehu_app::modules::seed_all(&t.db).await.unwrap();
    assert_eq!(count(&t, "meta_objects").await, 3, "seeding twice creates nothing");
    assert!(kehu_db::migrate::pending(&t.db).await.unwrap().is_empty());
    t.ready().await.unwrap();
    if t.db.backend() == kehu_db::Backend::Sqlite {
        let mode = t.db.one(&kehu_db::Raw::new("PRAGMA journal_mode", vec![])).await.unwrap().unwrap();
        assert_eq!(mode.str(0), Some("wal"));
        let fk = t.db.one(&kehu_db::Raw::new("PRAGMA foreign_keys", vec![])).await.unwrap().unwrap();
        assert_eq!(fk.i64(0), Some(1));
        let sync = t.db.one(&kehu_db::Raw::new("PRAGMA synchronous", vec![])).await.unwrap().unwrap();
        assert_eq!(sync.i64(0), Some(2), "synchronous = FULL");
    }
}
both!(migrations_are_recorded_and_idempotent);

async fn audit_records_old_and_new_values(t: TestApp) {
    let a = system();
    let c = t.create(&a, "contact", &obj(json!({"name": "周杰", "score": 10}))).await.unwrap();
    t.update(&a, "contact", c.id, 1, &obj(json!({"score": 20, "name": "周杰"}))).await.unwrap();
    let rows =
        t.db.all(&kehu_db::Raw::new(
            "SELECT action, changes FROM audit_log WHERE record_id = $1 ORDER BY at, action",
            vec![c.id.into()],
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let upd: serde_json::Value =
        serde_json::from_str(rows.iter().find(|r| r.str(0) == Some("update")).unwrap().str(1).unwrap()).unwrap();
    assert_eq!(upd, json!({"score": [10, 20]}), "only the changed field, old → new");
    let hist =
        t.db.all(&kehu_db::Raw::new(
            "SELECT old_value, new_value FROM field_history WHERE record_id = $1",
            vec![c.id.into()],
        ))
        .await
        .unwrap();
    assert_eq!((hist[0].str(0), hist[0].str(1)), (Some("10"), Some("20")));
    // An update that changes nothing writes nothing and keeps the version.
    let same = t.update(&a, "contact", c.id, 2, &obj(json!({"score": 20}))).await.unwrap();
    assert_eq!(same.version, 2);
    assert_eq!(count(&t, "audit_log").await, 2);
}
both!(audit_records_old_and_new_values);

/// Consumers read every event with its payload. A created record's event names its audit
/// entry instead of holding the created values a second time, and is read with the payload it
/// always had: `{"fields": {field: value}, "id", "object"}`, the values of the audit entry.
async fn outbox_events_read_with_their_payloads(t: TestApp) {
    let a = system();
    let c = t
        .create(&a, "contact", &obj(json!({"name": "张伟", "email": "zw@example.com", "tags": ["vip", "华东"]})))
        .await
        .unwrap();
    t.update(&a, "contact", c.id, 1, &obj(json!({"city": "上海"}))).await.unwrap();
    let q = "SELECT o.payload, a.changes FROM outbox o JOIN audit_log a ON a.id = o.audit_id \
             WHERE o.event = 'record.created' AND a.action = 'create' AND a.record_id = o.record_id";
    let row = t.db.one(&kehu_db::Raw::new(q, vec![])).await.unwrap().expect("the event names the create's entry");
    assert_eq!(row.str(0), None, "the created values are stored once, in the audit entry");
    let changes: serde_json::Value = serde_json::from_str(row.str(1).unwrap()).unwrap();

    let evs = kehu_db::journal::pending_events(&t.db, 10).await.unwrap();
    let names: Vec<&str> = evs.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["record.created", "record.updated"]);
    let created = &evs[0];
    assert_eq!((created.record_id, created.attempts), (Some(c.id), 0));
    assert_eq!(created.payload["id"], json!(c.id));
    assert_eq!(created.payload["object"], json!("contact"));
    let fields = created.payload["fields"].as_object().unwrap();
    assert_eq!(fields["name"], json!("张伟"));
    assert_eq!(fields["email"], json!("zw@example.com"));
    assert_eq!(fields["tags"], json!(["vip", "华东"]));
    assert_eq!(fields["lifecycle_stage"], json!("lead"), "defaults are among the created values");
    let from_audit: serde_json::Map<String, serde_json::Value> =
        changes.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v[1].clone())).collect();
    assert_eq!(fields, &from_audit);
    assert_eq!(created.payload["version"], json!(1), "object, id and version, as every record event");
    assert_eq!(created.payload.as_object().unwrap().len(), 4);
    // An update's event keeps its own payload (it says the new version, which the audit entry does not).
    assert_eq!(
        evs[1].payload,
        json!({"object": "contact", "id": c.id, "version": 2, "changes": {"city": [null, "上海"]}})
    );
    assert_eq!(kehu_db::journal::pending_events(&t.db, 1).await.unwrap(), evs[..1]);
    t.db.write(&kehu_db::Raw::new("UPDATE outbox SET processed_at = 1 WHERE event = 'record.updated'", vec![]))
        .await
        .unwrap();
    assert_eq!(
        kehu_db::journal::pending_events(&t.db, 10).await.unwrap(),
        evs[..1],
        "processed events are not pending"
    );
    // An event whose audit entry is gone (a damaged database) is an error, never an empty payload.
    t.db.write(&kehu_db::Raw::new("DELETE FROM audit_log WHERE action = 'create'", vec![])).await.unwrap();
    let e = kehu_db::journal::pending_events(&t.db, 10).await.unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}
both!(outbox_events_read_with_their_payloads);

/// Migration 12 makes `payload` optional and adds `audit_id` to an outbox that already holds
/// events: they keep their payloads, and new created records' events name their audit entries.
async fn outbox_migration_keeps_pending_events(t: TestApp) {
    let a = system();
    let uuid = match t.db.backend() {
        kehu_db::Backend::Sqlite => "blob",
        kehu_db::Backend::Postgres => "uuid",
    };
    // The outbox as migration 1 made it, holding one pending event.
    t.db.exec_raw(&format!(
        "DROP TABLE outbox;
         CREATE TABLE outbox (id {uuid} NOT NULL PRIMARY KEY, event text NOT NULL, object_id {uuid} NULL,
             record_id {uuid} NULL, payload text NOT NULL, created_at bigint NOT NULL, processed_at bigint NULL,
             attempts bigint NOT NULL);
         CREATE INDEX ix_outbox__pending ON outbox (processed_at, id);"
    ))
    .await
    .unwrap();
    let old = kehu_core::new_id();
    t.db.write(&kehu_db::Raw::new(
        "INSERT INTO outbox (id, event, payload, created_at, attempts) VALUES ($1, 'record.deleted', $2, 1, 2)",
        vec![old.into(), r#"{"id":"x","object":"contact"}"#.into()],
    ))
    .await
    .unwrap();
    t.db.write(&kehu_db::Raw::new("DELETE FROM schema_migrations WHERE version = 12", vec![])).await.unwrap();
    assert!(kehu_db::migrate::needs_backup(&t.db).await.unwrap().contains(&12), "it alters a table");
    assert_eq!(kehu_db::migrate::run(&t.db).await.unwrap(), vec![12]);
    let c = t.create(&a, "contact", &obj(json!({"name": "李娜"}))).await.unwrap();
    let evs = kehu_db::journal::pending_events(&t.db, 10).await.unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!((evs[0].id, evs[0].attempts), (old, 2));
    assert_eq!(evs[0].payload, json!({"id": "x", "object": "contact"}));
    assert_eq!(evs[1].payload["fields"]["name"], json!("李娜"));
    assert_eq!(evs[1].record_id, Some(c.id));
}
both!(outbox_migration_keeps_pending_events);
