//! The full archive: a database with every field type, custom objects, activities, history,
//! merged and deleted records, users, roles and teams → export → import into a fresh instance
//! on the other backend → canonical dumps identical, and the new instance works. Damaged
//! archives are refused with a stable code and change nothing.

use crate::support::*;
use kehu_app::auth::Client;
use kehu_app::metadata::{FieldPatch, NewField, NewObject};
use kehu_app::records::MergeRequest;
use kehu_app::App;
use kehu_core::meta::{FieldType, Label};
use kehu_db::archive::{dump, load, write};
use serde_json::{json, Value as Json};
use std::io::{Read, Write};
use std::path::Path;

pub const PASSWORD: &str = "Archive-Round-Trip-2026!";

fn field(api: &str, t: FieldType, extra: Json) -> NewField {
    let mut base = json!({"api_name": api, "type": t.as_str(), "label": {"en": api, "zh-CN": api}});
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    serde_json::from_value(base).expect("field json")
}

/// A database with something in every table an archive carries.
pub async fn populate(t: &TestApp) {
    let a = system();
    let o = org(t).await;
    t.create_user_with_password("owner@kehu.test", "Owner 老板", PASSWORD, "admin").await.unwrap();
    t.create_role(&o.admin, "Auditor", "审计", "read_only").await.unwrap();
    let project = NewObject {
        api_name: "project".into(),
        label: Label::new("Project", "项目"),
        plural: Label::new("Projects", "项目"),
        icon: None,
    };
    t.create_object(&a, project).await.unwrap();
    let choices = json!({"options": {"choices": [
        {"key": "a", "label": {"en": "Alpha", "zh-CN": "甲"}, "color": "red"},
        {"key": "b", "label": {"en": "Beta", "zh-CN": "乙"}, "color": "blue"}]}});
    let specs: Vec<(&str, FieldType, Json, Json)> = vec![
        ("t_text", FieldType::Text, json!({"filterable": true}), json!("你好 world")),
        ("t_long", FieldType::LongText, json!({}), json!("line1\nline2 \"quoted\" \\ back")),
        ("t_int", FieldType::Integer, json!({}), json!(-42)),
        ("t_dec", FieldType::Decimal, json!({}), json!("1234.5678")),
        ("t_cur", FieldType::Currency, json!({}), json!({"amount": "99.95", "currency": "USD"})),
        ("t_pct", FieldType::Percent, json!({}), json!(12.5)),
        ("t_bool", FieldType::Boolean, json!({}), json!(true)),
        ("t_date", FieldType::Date, json!({}), json!("2026-02-28")),
        ("t_dt", FieldType::DateTime, json!({}), json!("2026-02-28T08:00:00+08:00")),
        ("t_email", FieldType::Email, json!({"unique": true}), json!("li.na@example.cn")),
        ("t_phone", FieldType::Phone, json!({}), json!("021-6555 1234")),
        ("t_url", FieldType::Url, json!({}), json!("kehu.example.com/x")),
        ("t_sel", FieldType::Select, choices.clone(), json!("b")),
        ("t_multi", FieldType::MultiSelect, choices, json!(["b", "a"])),
        ("t_tags", FieldType::Tags, json!({}), json!(["VIP", "老客户"])),
        ("t_user", FieldType::User, json!({}), Json::Null),
        ("t_rel", FieldType::Relation, json!({"target_object": "company"}), Json::Null),
        ("t_old", FieldType::Text, json!({}), json!("kept after archiving")),
    ];
    for (api, ty, extra, _) in &specs {
        t.add_field(&a, "project", field(api, *ty, extra.clone())).await.unwrap();
    }
    let company = t.create(&a, "company", &obj(json!({"name": "客户科技", "phone": "010-8888 6666"}))).await.unwrap();
    let mut input = serde_json::Map::new();
    input.insert("name".into(), json!("全类型 all types"));
    for (api, _, _, v) in &specs {
        input.insert(api.to_string(), v.clone());
    }
    input.insert("t_user".into(), json!(o.rep_east1.user_id.unwrap().to_string()));
    input.insert("t_rel".into(), json!(company.id.to_string()));
    let p = t.create(&a, "project", &input).await.unwrap();
    // History: two updates, one clearing values.
    let p = t.update(&a, "project", p.id, p.version, &obj(json!({"t_int": 7, "t_text": "改过"}))).await.unwrap();
    t.update(&a, "project", p.id, p.version, &obj(json!({"t_multi": null, "t_dec": null}))).await.unwrap();
    // An archived field keeps its column and data.
    let patch: FieldPatch = serde_json::from_value(json!({"archived": true})).unwrap();
    t.update_field(&a, "project", "t_old", patch).await.unwrap();
    // Contacts by several owners; one deleted (recycle bin), two merged.
    let mut ids = Vec::new();
    for (i, who) in [&o.rep_east1, &o.rep_east2, &o.rep_north].iter().enumerate() {
        let c = t
            .create(
                who,
                "contact",
                &obj(json!({"name": format!("联系人{i} Contact"), "phone": format!("1380013800{i}"),
                "email": format!("c{i}@kehu.test"), "tags": ["a", "b"]})),
            )
            .await
            .unwrap();
        ids.push((c.id, c.version));
    }
    t.delete(&a, "contact", ids[2].0, Some(ids[2].1)).await.unwrap();
    let keep = t
        .create(&a, "contact", &obj(json!({"name": "张伟", "phone": "13900139000", "company": company.id.to_string()})))
        .await
        .unwrap();
    let gone = t.create(&a, "contact", &obj(json!({"name": "Zhang Wei", "email": "zw@huaxia.cn"}))).await.unwrap();
    let m = MergeRequest {
        survivor: keep.id,
        merge: vec![gone.id],
        versions: [(keep.id, keep.version), (gone.id, gone.version)].into_iter().collect(),
        values: Default::default(),
    };
    t.merge(&a, "contact", &m).await.unwrap();
    // Activities: a note and a task on a contact.
    for (kind, subject) in [("note", "第一次拜访"), ("task", "Send the quote")] {
        t.create(
            &o.rep_east1,
            "activity",
            &obj(json!({"kind": kind, "subject": subject, "contact": ids[0].0.to_string()})),
        )
        .await
        .unwrap();
    }
    // A shared saved view, an API token, instance settings.
    let v = kehu_app::views::ViewInput {
        name: "我的客户".into(),
        team_id: None,
        columns: vec!["name".into(), "phone".into()],
        filter: Some(json!({"and": [{"field": "city", "op": "eq", "value": "上海"}]})),
        sort: "-updated_at".into(),
        layout: Some(kehu_app::views::Layout {
            kind: "board".into(),
            field: "lifecycle_stage".into(),
            sum: None,
            cards: vec!["phone".into()],
        }),
    };
    t.create_view(&o.rep_east1, "contact", &v).await.unwrap();
    t.create_api_token(o.admin.user_id.unwrap(), "integration", &kehu_app::auth::TokenScope::ALL, None).await.unwrap();
    let s = kehu_app::backup::BackupSettings { enabled: true, every_hours: 6, keep: 3 };
    t.set_backup_settings(&o.admin, s).await.unwrap();
}

async fn export(t: &TestApp, dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kehu.kehu-archive");
    let s = write::export(&t.db, &path, "test").await.unwrap();
    assert!(s.rows > 50 && s.bytes > 1000, "{s:?}");
    path
}

/// The other backend when PostgreSQL is configured, else another SQLite file.
async fn fresh_other(from_sqlite: bool) -> TestApp {
    if from_sqlite {
        if let Some(t) = postgres().await {
            return t;
        }
    }
    sqlite().await
}

async fn round_trip(src: TestApp, dst: TestApp) {
    populate(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let path = export(&src, dir.path()).await;
    let before = dump::dump_string(&src.db).await.unwrap();
    let loaded = load::import(&dst.db, &path).await.unwrap();
    assert_eq!(loaded.source_backend, src.db.backend().name());
    let after = dump::dump_string(&dst.db).await.unwrap();
    if let Some(d) = dump::first_difference(&before, &after) {
        panic!("{} → {}: dumps differ at {d}", src.db.backend().name(), dst.db.backend().name());
    }
    assert!(before.contains("## o_contact:") && before.contains("\"全类型 all types\""));
    // The imported instance works: sign in, list, search, use the custom object.
    let app = App::with_db(dst.db.clone()).await.unwrap();
    let client = Client { ip: Some("127.0.0.1"), user_agent: Some("test") };
    let login = app.login("owner@kehu.test", PASSWORD, &client).await.unwrap();
    let me = app.actor(login.user_id).await.unwrap();
    let page = app.list(&me, "contact", &Default::default()).await.unwrap();
    assert_eq!(page.records.len(), 3, "two live contacts and the merge survivor");
    let hits = app.search(&me, "张伟", None, 10).await.unwrap();
    assert!(hits.iter().any(|h| h.object == "contact"), "{hits:?}");
    let projects = app.list(&me, "project", &Default::default()).await.unwrap();
    assert_eq!(projects.records[0].get("t_text"), &json!("改过"));
    assert_eq!(projects.records[0].get("t_cur"), &json!({"minor": 9995, "currency": "USD", "amount": "99.95"}));
    app.create(&me, "project", &obj(json!({"name": "新项目", "t_email": "x@kehu.test"}))).await.unwrap();
    let e = app.create(&me, "project", &obj(json!({"name": "dup", "t_email": "li.na@example.cn"}))).await.unwrap_err();
    assert_eq!(e.fields.first().map(|f| f.code.as_str()), Some("field.not_unique"), "unique index recreated: {e:?}");
    // A second import into the now populated instance is refused and changes nothing.
    let full = dump::dump_string(&dst.db).await.unwrap();
    let e = load::import(&dst.db, &path).await.unwrap_err();
    assert_eq!(e.code, "archive.target_not_empty");
    assert_eq!(dump::dump_string(&dst.db).await.unwrap(), full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_from_sqlite() {
    round_trip(sqlite().await, fresh_other(true).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_from_postgres() {
    let Some(src) = postgres().await else { return };
    round_trip(src, sqlite().await).await
}

fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut s).unwrap();
    s
}

fn gzip(path: &Path, text: &str) {
    let mut e = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap();
}

/// Damaged archives: each refused with its code, the target unchanged.
async fn damaged_archives_change_nothing(t: TestApp) {
    let src = sqlite().await;
    populate(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let good = export(&src, dir.path()).await;
    let bytes = std::fs::read(&good).unwrap();
    let text = gunzip(&good);
    let mut cases: Vec<(&[&str], std::path::PathBuf)> = Vec::new();
    let p = dir.path().join("truncated");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    cases.push((&["archive.truncated"], p));
    let p = dir.path().join("cut-lines");
    gzip(&p, &text[..text.len() * 2 / 3]);
    cases.push((&["archive.truncated"], p));
    let p = dir.path().join("flipped");
    let mut b = bytes.clone();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    std::fs::write(&p, &b).unwrap();
    cases.push((&["archive.corrupt", "archive.checksum", "archive.truncated"], p));
    let p = dir.path().join("edited");
    gzip(&p, &text.replacen("全类型 all types", "全类型 all typos", 1));
    cases.push((&["archive.checksum"], p));
    let p = dir.path().join("version");
    gzip(&p, &text.replacen("\"format_version\":1", "\"format_version\":99", 1));
    cases.push((&["archive.version"], p));
    let p = dir.path().join("newer");
    gzip(&p, &text.replacen("\"migrations\":[1,", "\"migrations\":[1,999,", 1));
    cases.push((&["archive.schema_newer"], p));
    let p = dir.path().join("tiny");
    std::fs::write(&p, "garbage\n").unwrap();
    cases.push((&["archive.not_archive"], p));
    let p = dir.path().join("not-an-archive.csv");
    std::fs::write(&p, "name,phone\n张三,13800138000\n").unwrap();
    cases.push((&["archive.not_archive"], p));
    let before = dump::dump_string(&t.db).await.unwrap();
    for (codes, path) in cases {
        let e = load::import(&t.db, &path).await.unwrap_err();
        assert!(codes.contains(&e.code.as_str()), "{}: {e:?}", path.display());
        assert_eq!(dump::dump_string(&t.db).await.unwrap(), before, "{} wrote something", path.display());
    }
    // The good archive still loads afterwards.
    load::import(&t.db, &good).await.unwrap();
}
both!(damaged_archives_change_nothing);

/// An export never overwrites a file, and leaves no partial file behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_to_overwrite() {
    let t = sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let path = export(&t, dir.path()).await;
    let e = write::export(&t.db, &path, "test").await.unwrap_err();
    assert_eq!(e.code, "archive.exists");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
