//! Import: decoding of real files, dry run = real run, upsert, update-only, undo, failed rows
//! re-imported, resuming after a restart, permissions, hostile files.

use crate::support::*;
use kehu_app::import::read::read_table;
use kehu_app::import::{ImportMode, ImportSettings};
use kehu_app::{ListRequest, RecordView};
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use kehu_db::Raw;
use serde_json::json;

pub fn data(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/import").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn table(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rows = Vec::new();
    let info = read_table(name, &data(name), None, |_, r| {
        rows.push(r);
        Ok(())
    })
    .unwrap();
    (info.headers, rows)
}

#[test]
fn files_decode_to_the_expected_text() {
    let (h, rows) = table("contacts_gbk.csv");
    assert_eq!(h, ["姓名", "邮箱", "手机", "公司", "职位", "城市", "生命周期阶段", "标签"]);
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[0],
        [
            "张伟",
            "zhang.wei@example.cn",
            "13800138001",
            "北京星辰科技有限公司",
            "销售总监",
            "北京",
            "意向客户",
            "重点客户、华北"
        ]
    );
    assert_eq!(table("contacts_utf16le.txt"), table("contacts_gbk.csv"), "Unicode text = the same table");
    let (h, rows) = table("contacts_utf8_bom.csv");
    assert_eq!(h[0], "Name", "BOM stripped");
    assert_eq!(rows[1][8], "met at \"Canton Fair\", follow up");
    assert_eq!(rows[2][8], "第一行\n第二行", "a quoted cell keeps its line break");
    assert_eq!(table("contacts_semicolon.csv"), table("contacts_utf8_bom.csv"));
    let (h, rows) = table("contacts.xlsx");
    assert_eq!(h, ["姓名", "邮箱", "手机", "公司", "生日", "评分"]);
    assert_eq!(rows[0], ["孙悦", "sun.yue@example.cn", "13700137001", "杭州青禾网络", "1990-05-17", "88"]);
    assert_eq!(rows[2][4], "", "an empty date cell stays empty");
}

#[test]
fn hostile_files_are_refused_with_codes() {
    let code = |name: &str, bytes: &[u8]| read_table(name, bytes, None, |_, _| Ok(())).unwrap_err().code;
    assert_eq!(code("x.csv", b""), "import.empty_file");
    assert_eq!(code("x.csv", &[0u8, 1, 2, 3, 0xff, 0xfe, 0xfd, 7, 8, 0, 0, 0, 0x80, 0x81]), "import.bad_encoding");
    assert_eq!(code("x.csv", b"\x01\x02\x03\x04\x05\x06\x07abc"), "import.not_a_table");
    assert_eq!(code("x.xlsx", b"PK\x03\x04 garbage that is no zip"), "import.bad_xlsx");
    // A workbook whose central directory claims a 2 GB entry: refused before inflating.
    let mut bomb = data("contacts.xlsx");
    let mut i = 0;
    while i + 28 < bomb.len() {
        if bomb[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
            bomb[i + 24..i + 28].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        }
        i += 1;
    }
    assert_eq!(code("bomb.xlsx", &bomb), "import.xlsx_too_large_unpacked");
    let mut big = b"PK\x03\x04".to_vec();
    big.resize(kehu_app::import::read::MAX_XLSX_BYTES + 1, 0);
    assert_eq!(code("big.xlsx", &big), "import.file_too_large");
}

/// Upload a test file and configure it (auto mapping, then `tune`).
pub async fn upload(t: &TestApp, actor: &Actor, file: &str, tune: impl FnOnce(&mut ImportSettings)) -> Uuid {
    upload_bytes(t, actor, file, &data(file), tune).await
}

pub async fn upload_bytes(
    t: &TestApp,
    actor: &Actor,
    file: &str,
    bytes: &[u8],
    tune: impl FnOnce(&mut ImportSettings),
) -> Uuid {
    let id = t.import_upload(actor, "contact", file, bytes, None).await.unwrap();
    let mut s = t.import_settings(actor, id).await.unwrap();
    tune(&mut s);
    t.import_configure(actor, id, &s, None).await.unwrap();
    id
}

async fn run(t: &TestApp, actor: &Actor, id: Uuid) -> kehu_app::import::ImportView {
    t.import_start(actor, id).await.unwrap();
    while t.run_jobs().await.unwrap() > 0 {}
    t.import_view(actor, id).await.unwrap()
}

async fn live(t: &TestApp, table: &str) -> i64 {
    let q = Raw::new(format!("SELECT COUNT(*) FROM {table} WHERE deleted_at IS NULL"), vec![]);
    t.db.one(&q).await.unwrap().and_then(|r| r.i64(0)).unwrap()
}

pub async fn by_email(t: &TestApp, email: &str) -> Option<RecordView> {
    let req = ListRequest {
        filter: Some(json!({"field": "email", "op": "eq", "value": email})),
        limit: Some(5),
        ..Default::default()
    };
    let mut p = t.list(&system(), "contact", &req).await.unwrap();
    assert!(p.records.len() <= 1);
    p.records.pop()
}

async fn gbk_file_dry_run_equals_real_run(t: TestApp) {
    let o = org(&t).await;
    let id = upload(&t, &o.admin, "contacts_gbk.csv", |s| s.create_missing = true).await;
    let s = t.import_settings(&o.admin, id).await.unwrap();
    assert_eq!(
        s.columns.iter().map(|c| c.as_deref().unwrap_or("-")).collect::<Vec<_>>(),
        ["name", "email", "phone", "company", "job_title", "city", "lifecycle_stage", "tags"],
        "Chinese labels map automatically"
    );
    let dry = t.import_dry_run(&o.admin, id).await.unwrap();
    assert_eq!((dry.counts.created, dry.counts.failed, dry.counts.related_created), (4, 0, 3), "{dry:?}");
    assert_eq!(live(&t, "o_contact").await, 0, "a dry run writes nothing");
    assert_eq!(live(&t, "o_company").await, 0);
    let v = run(&t, &o.admin, id).await;
    assert_eq!(v.state, "done");
    assert_eq!(v.counts, dry.counts, "the real run counts what the dry run said");
    assert_eq!((live(&t, "o_contact").await, live(&t, "o_company").await), (4, 3));
    let zhang = by_email(&t, "zhang.wei@example.cn").await.unwrap();
    assert_eq!(zhang.get("name"), "张伟");
    assert_eq!(zhang.get("phone"), "13800138001");
    assert_eq!(zhang.get("lifecycle_stage"), "prospect", "option label → key");
    assert_eq!(zhang.get("tags"), &json!(["重点客户", "华北"]), "tags split on 、");
    let li = by_email(&t, "li.na@example.cn").await.unwrap();
    assert_eq!(li.get("company"), zhang.get("company"), "one company created once, linked twice");
    let company = t.get(&system(), "company", zhang.get("company").as_str().unwrap().parse().unwrap()).await.unwrap();
    assert_eq!(company.get("name"), "北京星辰科技有限公司");
    // Audited like any write.
    let q = Raw::new("SELECT COUNT(*) FROM audit_log WHERE action = 'create'", vec![]);
    assert_eq!(t.db.one(&q).await.unwrap().and_then(|r| r.i64(0)), Some(7));
    // The same file again with the same headers: the mapping is proposed as last time.
    let again = t.import_upload(&o.admin, "contact", "again.csv", &data("contacts_gbk.csv"), None).await.unwrap();
    assert!(t.import_settings(&o.admin, again).await.unwrap().create_missing, "last mapping reused");
}
both!(gbk_file_dry_run_equals_real_run);

async fn other_formats_import(t: TestApp) {
    let o = org(&t).await;
    for file in ["contacts_utf16le.txt", "contacts.xlsx"] {
        let id = upload(&t, &o.admin, file, |s| s.create_missing = true).await;
        let dry = t.import_dry_run(&o.admin, id).await.unwrap();
        let v = run(&t, &o.admin, id).await;
        assert_eq!(v.counts, dry.counts, "{file}");
        assert_eq!(v.counts.failed, 0, "{file}: {:?}", dry.errors);
    }
    let sun = by_email(&t, "sun.yue@example.cn").await.unwrap();
    assert_eq!((sun.get("birthday"), sun.get("score")), (&json!("1990-05-17"), &json!(88)), "XLSX date and number");
    let id = upload(&t, &o.admin, "contacts_utf8_bom.csv", |s| s.create_missing = true).await;
    let v = run(&t, &o.admin, id).await;
    assert_eq!((v.counts.created, v.counts.failed), (3, 0));
    let chen = by_email(&t, "chen.jing@example.com").await.unwrap();
    assert_eq!(chen.get("lifecycle_stage"), "customer", "English option label");
    assert_eq!(chen.get("tags"), &json!(["vip", "tech"]));
    assert_eq!(by_email(&t, "zhao.lei@example.com").await.unwrap().get("notes"), "第一行\n第二行");
}
both!(other_formats_import);

async fn bad_rows_are_reported_and_reimported(t: TestApp) {
    let o = org(&t).await;
    let id = upload(&t, &o.admin, "bad_rows.csv", |_| {}).await;
    let dry = t.import_dry_run(&o.admin, id).await.unwrap();
    assert_eq!((dry.counts.created, dry.counts.failed), (2, 3));
    let errs: Vec<(u64, &str, &str, Option<u64>)> =
        dry.errors.iter().map(|e| (e.row, e.column.as_str(), e.code.as_str(), e.first_row)).collect();
    assert_eq!(
        errs,
        [
            (3, "邮箱", "field.invalid_email", None),
            (4, "生命周期阶段", "field.invalid_option", None),
            (5, "邮箱", "import.duplicate_in_file", Some(2)),
        ]
    );
    let v = run(&t, &o.admin, id).await;
    assert_eq!(v.counts, dry.counts);
    let failures = t.import_failures(&o.admin, id, 100).await.unwrap();
    assert_eq!(failures.iter().map(|f| f.row).collect::<Vec<_>>(), [3, 4, 5]);
    let csv = t.failed_rows_csv(&o.admin, id, true, &|i| format!("{}:{}", i.column, i.code)).await.unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with("\u{feff}姓名,邮箱,"), "{text}");
    assert!(text.lines().next().unwrap().ends_with(",导入错误"));
    assert!(text.contains("钱多,qian.duo@@example,"));
    assert!(text.contains("邮箱:field.invalid_email"));
    // Fix the three rows in the downloaded file and import it as it is.
    let fixed = text
        .replace("qian.duo@@example", "qian.duo@example.cn")
        .replace("大客户", "成交客户")
        .replace("郑好二,zheng.hao@example.cn", "郑好二,zheng.hao2@example.cn");
    let again = upload_bytes(&t, &o.admin, "fixed.csv", fixed.as_bytes(), |_| {}).await;
    let dry = t.import_dry_run(&o.admin, again).await.unwrap();
    assert_eq!((dry.counts.created, dry.counts.failed), (3, 0), "{:?}", dry.errors);
    let v = run(&t, &o.admin, again).await;
    assert_eq!(v.counts, dry.counts);
    assert_eq!(live(&t, "o_contact").await, 5);
    assert_eq!(by_email(&t, "sun.shao@example.cn").await.unwrap().get("lifecycle_stage"), "customer");
}
both!(bad_rows_are_reported_and_reimported);

fn upsert_by_email(s: &mut ImportSettings) {
    s.mode = ImportMode::Upsert;
    s.key = Some("email".into());
    s.create_missing = true;
}

async fn upsert_updates_instead_of_duplicating(t: TestApp) {
    let o = org(&t).await;
    let first = run(&t, &o.admin, upload(&t, &o.admin, "contacts_utf8_bom.csv", upsert_by_email).await).await;
    assert_eq!((first.counts.created, first.counts.updated), (3, 0));
    let second_id = upload(&t, &o.admin, "contacts_utf8_bom.csv", upsert_by_email).await;
    let dry = t.import_dry_run(&o.admin, second_id).await.unwrap();
    let second = run(&t, &o.admin, second_id).await;
    assert_eq!(second.counts, dry.counts);
    assert_eq!((second.counts.created, second.counts.updated, second.counts.unchanged), (0, 0, 3));
    assert_eq!(live(&t, "o_contact").await, 3, "no duplicates");
    assert_eq!(live(&t, "o_company").await, 1, "the company was found, not created again");
    let text = String::from_utf8(data("contacts_utf8_bom.csv")).unwrap().replace("Hangzhou", "Ningbo");
    let third = run(&t, &o.admin, upload_bytes(&t, &o.admin, "c.csv", text.as_bytes(), upsert_by_email).await).await;
    assert_eq!((third.counts.created, third.counts.updated, third.counts.unchanged), (0, 1, 2));
    assert_eq!(by_email(&t, "alice@example.com").await.unwrap().get("city"), "Ningbo");
    assert_eq!(live(&t, "o_contact").await, 3);
    // Update only: rows whose key is unknown are skipped, not created.
    let text = format!("{text}new person,new@example.com,,,,Xi'an,,,\r\n");
    let upd = upload_bytes(&t, &o.admin, "u.csv", text.as_bytes(), |s| {
        s.mode = ImportMode::Update;
        s.key = Some("email".into());
    })
    .await;
    let dry = t.import_dry_run(&o.admin, upd).await.unwrap();
    let v = run(&t, &o.admin, upd).await;
    assert_eq!(v.counts, dry.counts);
    assert_eq!((v.counts.created, v.counts.skipped, v.counts.unchanged), (0, 1, 3));
    assert!(by_email(&t, "new@example.com").await.is_none());
}
both!(upsert_updates_instead_of_duplicating);

/// Every field of a record except what any write changes (version, update stamps).
fn content(r: &RecordView) -> serde_json::Map<String, serde_json::Value> {
    let mut f = r.fields.clone();
    for k in ["updated_at", "updated_by", "version"] {
        f.remove(k);
    }
    f
}

async fn undo_restores_previous_values_exactly(t: TestApp) {
    let o = org(&t).await;
    let admin = &o.admin;
    let mk = |name: &str, email: &str, city: &str| {
        obj(json!({"name": name, "email": email, "city": city, "phone": "13911112222", "tags": ["old"], "score": 5}))
    };
    let chen = t.create(admin, "contact", &mk("陈静", "chen.jing@example.com", "温州")).await.unwrap();
    let alice = t.create(admin, "contact", &mk("Alice S.", "alice@example.com", "苏州")).await.unwrap();
    let (chen, alice) =
        (t.get(&system(), "contact", chen.id).await.unwrap(), t.get(&system(), "contact", alice.id).await.unwrap());
    let id = upload(&t, admin, "contacts_utf8_bom.csv", upsert_by_email).await;
    let v = run(&t, admin, id).await;
    assert_eq!((v.counts.created, v.counts.updated, v.counts.related_created), (1, 2, 1));
    // After the import someone changes Alice's city again: that change must survive the undo.
    let a = by_email(&t, "alice@example.com").await.unwrap();
    assert_eq!(a.get("city"), "Hangzhou");
    t.update(admin, "contact", a.id, a.version, &obj(json!({"city": "Ningbo"}))).await.unwrap();
    assert!(t.import_undo(&o.rep_north, id).await.is_err(), "not someone else's import");
    assert!(t.import_undo(admin, id).await.unwrap().is_some());
    assert_eq!(t.import_view(admin, id).await.unwrap().state, "undoing");
    while t.run_jobs().await.unwrap() > 0 {}
    let v = t.import_view(admin, id).await.unwrap();
    assert_eq!(v.state, "undone");
    assert_eq!((v.undo.deleted, v.undo.restored, v.undo.conflicts), (2, 2, 1), "{:?}", v.undo);
    let chen_now = t.get(&system(), "contact", chen.id).await.unwrap();
    assert_eq!(content(&chen_now), content(&chen), "every field as before the import");
    let alice_now = t.get(&system(), "contact", alice.id).await.unwrap();
    assert_eq!(alice_now.get("city"), "Ningbo", "the later change stays");
    let mut expected = content(&alice);
    expected.insert("city".into(), json!("Ningbo"));
    assert_eq!(content(&alice_now), expected, "the other fields are back");
    assert!(by_email(&t, "zhao.lei@example.com").await.is_none(), "created record in the recycle bin");
    let q = Raw::new("SELECT COUNT(*) FROM o_contact WHERE deleted_at IS NOT NULL", vec![]);
    assert_eq!(t.db.one(&q).await.unwrap().and_then(|r| r.i64(0)), Some(1));
    assert_eq!(live(&t, "o_company").await, 0, "the company the import created is gone too");
    // Undo is idempotent.
    assert!(t.import_undo(admin, id).await.unwrap().is_none());
    while t.run_jobs().await.unwrap() > 0 {}
    assert_eq!(t.import_view(admin, id).await.unwrap().undo, v.undo);
    assert_eq!(content(&t.get(&system(), "contact", chen.id).await.unwrap()), content(&chen));
}
both!(undo_restores_previous_values_exactly);

async fn undo_keeps_created_records_changed_since(t: TestApp) {
    let o = org(&t).await;
    let admin = &o.admin;
    let id = upload(&t, admin, "contacts_utf8_bom.csv", upsert_by_email).await;
    let v = run(&t, admin, id).await;
    let created = v.counts.created;
    assert!(created >= 1);
    // Someone works on a record the import created: the undo must not throw that away.
    let z = by_email(&t, "zhao.lei@example.com").await.unwrap();
    t.update(admin, "contact", z.id, z.version, &obj(json!({"city": "Ningbo"}))).await.unwrap();
    t.import_undo(admin, id).await.unwrap();
    while t.run_jobs().await.unwrap() > 0 {}
    let v = t.import_view(admin, id).await.unwrap();
    assert_eq!(v.state, "undone");
    let kept = by_email(&t, "zhao.lei@example.com").await.expect("the changed record stays");
    assert_eq!(kept.get("city"), "Ningbo");
    assert_eq!(v.undo.deleted, v.counts.created + v.counts.related_created - 1, "{:?}", v.undo);
    assert!(v.undo.conflicts >= 1, "{:?}", v.undo);
}
both!(undo_keeps_created_records_changed_since);

pub fn many_rows(n: usize, offset: usize) -> String {
    let mut s = String::from("姓名,邮箱,手机,城市\r\n");
    for i in offset..offset + n {
        s.push_str(&format!("客户{i},c{i}@example.cn,139{:08},上海\r\n", i));
    }
    s
}

async fn resumes_after_a_restart(t: TestApp) {
    let o = org(&t).await;
    t.set_import_batch_rows(1000);
    let n = 1000 * 2 + 321;
    let mut text = many_rows(n, 0);
    text.push_str("重复,c7@example.cn,13000000000,上海\r\n");
    let id = upload_bytes(&t, &o.admin, "many.csv", text.as_bytes(), |s| {
        s.mode = ImportMode::Upsert;
        s.key = Some("email".into());
    })
    .await;
    let job = t.import_start(&o.admin, id).await.unwrap();
    assert!(t.run_job_batch(job).await.unwrap(), "prepare");
    assert!(t.run_job_batch(job).await.unwrap(), "first chunk");
    let v = t.import_view(&o.admin, id).await.unwrap();
    assert_eq!((v.state.as_str(), v.counts.created), ("running", 1000));
    assert!(v.percent() > 0 && v.percent() < 100);
    // The process dies; a new one opens the same database and its worker finishes the job.
    let restarted = kehu_app::App::with_db(t.db.clone()).await.unwrap();
    while restarted.run_jobs().await.unwrap() > 0 {}
    let v = restarted.import_view(&o.admin, id).await.unwrap();
    assert_eq!((v.state.as_str(), v.counts.created, v.counts.failed), ("done", n as u64, 1));
    assert_eq!(live(&t, "o_contact").await, n as i64, "no row lost, none twice");
    let q = Raw::new("SELECT COUNT(DISTINCT f_email) FROM o_contact", vec![]);
    assert_eq!(t.db.one(&q).await.unwrap().and_then(|r| r.i64(0)), Some(n as i64));
    let f = t.import_failures(&o.admin, id, 10).await.unwrap();
    assert_eq!(
        (f[0].row, f[0].issues[0].code.as_str(), f[0].issues[0].first_row),
        (n as u64 + 2, "import.duplicate_in_file", Some(9))
    );
    let q = Raw::new("SELECT COUNT(*) FROM import_chunks", vec![]);
    assert_eq!(t.db.one(&q).await.unwrap().and_then(|r| r.i64(0)), Some(0), "chunks removed as they are done");
    assert!(!t.run_job_batch(job).await.unwrap());
}
both!(resumes_after_a_restart);

/// The dry run as a job (the web's "检查"): the same answer as the dry run in one go, asked
/// twice → one check; a runner that died mid-check is taken over after the lease and the
/// check starts again from the first row; a check answers only for the mapping it checked.
async fn check_job_answers_like_the_dry_run(t: TestApp) {
    let o = org(&t).await;
    t.set_import_batch_rows(1000);
    let n = 2500;
    let mut text = many_rows(n, 0);
    text.push_str("重复,c7@example.cn,13000000000,上海\r\n");
    text.push_str("坏邮箱,not-an-email,13000000001,上海\r\n");
    let existing = obj(json!({"name": "旧名字", "email": "c3@example.cn", "city": "上海"}));
    t.create(&o.admin, "contact", &existing).await.unwrap();
    let id = upload_bytes(&t, &o.admin, "many.csv", text.as_bytes(), upsert_by_email).await;
    let direct = t.import_dry_run(&o.admin, id).await.unwrap();
    assert_eq!((direct.counts.created, direct.counts.updated, direct.counts.failed), (n as u64 - 1, 1, 2));
    assert_eq!(t.import_check(&o.admin, id).await.unwrap(), None, "not checked yet");

    let job = t.import_check_start(&o.admin, id).await.unwrap();
    let c = t.import_check(&o.admin, id).await.unwrap().unwrap();
    assert_eq!((c.job_id, c.state.as_str(), c.rows, c.total), (job, "pending", 0, n as u64 + 2));
    assert_eq!((c.result.as_ref(), c.percent()), (None, 0));
    assert_eq!(t.import_check_start(&o.admin, id).await.unwrap(), job, "asked twice: one check");

    // A runner is at row 1000 and holds its lease: nobody else takes the check.
    let at = |micros: i64| {
        Raw::new(
            "UPDATE jobs SET state = 'running', done = 1000, lease_until = $1, lease_token = $2 WHERE id = $3",
            vec![(micros + 30_000_000).into(), kehu_core::Uuid::now_v7().into(), job.into()],
        )
    };
    t.db.write(&at(kehu_core::now_micros())).await.unwrap();
    assert!(!t.run_job_batch(job).await.unwrap());
    assert_eq!(t.run_jobs().await.unwrap(), 0, "a check another runner holds is not picked (no spinning)");
    let c = t.import_check(&o.admin, id).await.unwrap().unwrap();
    assert_eq!((c.state.as_str(), c.rows, c.result.is_none(), c.percent()), ("running", 1000, true, 39));
    // It died: its lease ran out 1 s ago, and a new process takes the check over.
    t.db.write(&at(kehu_core::now_micros() - 31_000_000)).await.unwrap();
    let restarted = kehu_app::App::with_db(t.db.clone()).await.unwrap();
    while restarted.run_jobs().await.unwrap() > 0 {}
    let c = t.import_check(&o.admin, id).await.unwrap().unwrap();
    assert_eq!((c.state.as_str(), c.rows, c.percent()), ("done", n as u64 + 2, 100));
    assert!(c.finished_at.is_some());
    assert_eq!(c.result.as_ref(), Some(&direct), "the job's answer is the dry run's");
    assert_eq!(c.result.as_ref().unwrap().errors[0].first_row, Some(9), "duplicates across chunks found");
    assert_eq!(live(&t, "o_contact").await, 1, "a check writes nothing");
    assert_eq!(t.import_view(&o.admin, id).await.unwrap().state, "uploaded");

    // Checked again (the data may have changed): a new job with the new answer.
    t.create(&o.admin, "contact", &obj(json!({"name": "新客户", "email": "c4@example.cn"}))).await.unwrap();
    let again = t.import_check_start(&o.admin, id).await.unwrap();
    assert_ne!(again, job);
    while t.run_jobs().await.unwrap() > 0 {}
    let counts = t.import_check(&o.admin, id).await.unwrap().unwrap().result.unwrap().counts;
    assert_eq!((counts.created, counts.updated), (n as u64 - 2, 2));

    // A new mapping: the old check does not answer for it, and a check queued for the old
    // mapping ends as outdated without reading a row.
    let stale = t.import_check_start(&o.admin, id).await.unwrap();
    let mut s = t.import_settings(&o.admin, id).await.unwrap();
    s.mode = ImportMode::Create;
    s.key = None;
    t.import_configure(&o.admin, id, &s, None).await.unwrap();
    assert_eq!(t.import_check(&o.admin, id).await.unwrap(), None);
    while t.run_jobs().await.unwrap() > 0 {}
    let j = t.job(&o.admin, stale).await.unwrap();
    assert_eq!((j.state.as_str(), j.error.as_deref()), ("failed", Some("import.check_outdated")));

    // Another user cannot check someone else's import; once started, nothing is checked.
    assert_eq!(t.import_check_start(&o.rep_east1, id).await.unwrap_err().code, "import.not_found");
    t.import_start(&o.admin, id).await.unwrap();
    assert_eq!(t.import_check_start(&o.admin, id).await.unwrap_err().code, "import.already_started");
}
both!(check_job_answers_like_the_dry_run);

/// A batch decided while the previous one committed is used only if nothing was written in
/// between. Here a user creates a company the next rows name (they must link to it; the batch
/// built ahead would have created a second one), then sets a record's city to the file's value
/// (its row is then unchanged, nothing to undo) and changes another's (the import overwrites
/// it, the undo brings the user's value back).
async fn writes_between_batches_are_seen(t: TestApp) {
    let o = org(&t).await;
    t.set_import_batch_rows(100);
    let rec = |i: usize| {
        obj(
            json!({"name": format!("客户{i}"), "email": format!("c{i}@example.cn"), "phone": format!("139{i:08}"), "city": "北京"}),
        )
    };
    let a = t.create(&o.admin, "contact", &rec(210)).await.unwrap();
    let b = t.create(&o.admin, "contact", &rec(220)).await.unwrap();
    // Rows 0–99 name 公司0, 100–199 公司1, 200–249 公司2 (but 210 and 220: none); missing
    // companies are created.
    let mut csv = String::from("姓名,邮箱,手机,城市,公司\r\n");
    for i in 0..250 {
        let company = if i == 210 || i == 220 { String::new() } else { format!("公司{}", i / 100) };
        csv.push_str(&format!("客户{i},c{i}@example.cn,139{i:08},上海,{company}\r\n"));
    }
    let id = upload_bytes(&t, &o.admin, "between.csv", csv.as_bytes(), |s| {
        upsert_by_email(s);
        s.create_missing = true;
    })
    .await;
    let job = t.import_start(&o.admin, id).await.unwrap();
    assert!(t.run_job_batch(job).await.unwrap(), "prepare");
    assert!(t.run_job_batch(job).await.unwrap(), "rows 0–99");
    // Someone creates 公司1, which the next rows name: they link to it, no second 公司1.
    let c1 = t.create(&o.admin, "company", &obj(json!({"name": "公司1"}))).await.unwrap();
    assert!(t.run_job_batch(job).await.unwrap(), "rows 100–199");
    // 客户210 gets the file's city (its row is then unchanged, nothing to undo); 客户220 another.
    t.update(&o.admin, "contact", a.id, a.version, &obj(json!({"city": "上海"}))).await.unwrap();
    t.update(&o.admin, "contact", b.id, b.version, &obj(json!({"city": "广州"}))).await.unwrap();
    while t.run_job_batch(job).await.unwrap() {}
    let v = t.import_view(&o.admin, id).await.unwrap();
    assert_eq!((v.state.as_str(), v.counts.created, v.counts.updated, v.counts.unchanged), ("done", 248, 1, 1));
    assert_eq!(live(&t, "o_contact").await, 250);
    assert_eq!((live(&t, "o_company").await, v.counts.related_created), (3, 2));
    assert_eq!(by_email(&t, "c150@example.cn").await.unwrap().get("company"), &json!(c1.id.to_string()));
    assert_eq!(t.get(&system(), "contact", b.id).await.unwrap().get("city"), "上海");
    let q = Raw::new("SELECT COUNT(*) FROM import_changes WHERE record_id = $1", vec![a.id.into()]);
    assert_eq!(t.db.one(&q).await.unwrap().and_then(|r| r.i64(0)), Some(0), "nothing to undo for 客户210");
    // Undo: 客户210 keeps the user's city, 客户220 gets the user's 广州 back.
    assert!(t.import_undo(&o.admin, id).await.unwrap().is_some());
    while t.run_jobs().await.unwrap() > 0 {}
    assert_eq!(t.get(&system(), "contact", a.id).await.unwrap().get("city"), "上海");
    assert_eq!(t.get(&system(), "contact", b.id).await.unwrap().get("city"), "广州");
    assert_eq!(live(&t, "o_contact").await, 2);
    assert_eq!(live(&t, "o_company").await, 1, "the user's 公司1 stays");
}
both!(writes_between_batches_are_seen);

/// `Tx::write_mark` / `Tx::follows`: on SQLite a transaction knows whether it is the very
/// next write after a marked one; PostgreSQL gives no mark.
async fn write_marks_tell_whether_a_write_came_between(t: TestApp) {
    let mut tx = t.db.begin().await.unwrap();
    let Some(mark) = tx.write_mark().await.unwrap() else {
        assert_eq!(t.db.backend(), kehu_db::Backend::Postgres);
        tx.rollback().await.unwrap();
        return;
    };
    tx.commit().await.unwrap();
    let mut next = t.db.begin().await.unwrap();
    assert!(next.follows(&mark).await.unwrap(), "the next write");
    let mark = next.write_mark().await.unwrap().unwrap();
    next.commit().await.unwrap();
    t.db.write(&Raw::new("UPDATE schema_state SET epoch = epoch WHERE 1 = 0", vec![])).await.unwrap();
    let mut later = t.db.begin().await.unwrap();
    assert!(!later.follows(&mark).await.unwrap(), "a write of this process came between");
    let mark = later.write_mark().await.unwrap().unwrap();
    later.commit().await.unwrap();
    // Another connection (as another process would) commits.
    let path = match &t.db {
        kehu_db::Db::Sqlite { .. } => {
            let r = t.db.one(&Raw::new("SELECT file FROM pragma_database_list WHERE name = 'main'", vec![])).await;
            r.unwrap().and_then(|r| r.string(0)).unwrap()
        }
        _ => unreachable!(),
    };
    let other = kehu_db::Db::connect(&format!("sqlite://{path}"), &Default::default()).await.unwrap();
    other.write(&Raw::new("UPDATE schema_state SET epoch = epoch + 1", vec![])).await.unwrap();
    other.close().await;
    let mut after = t.db.begin().await.unwrap();
    assert!(!after.follows(&mark).await.unwrap(), "another process committed");
    after.rollback().await.unwrap();
}
both!(write_marks_tell_whether_a_write_came_between);

async fn permissions_apply(t: TestApp) {
    let o = org(&t).await;
    // A read-only user cannot import at all.
    let err = t.import_upload(&o.viewer, "contact", "a.csv", &data("contacts_gbk.csv"), None).await.unwrap_err();
    assert_eq!(err.code, "permission.denied");
    // A rep's upsert that matches a colleague's record: a row error, not a duplicate.
    t.create(&o.rep_east2, "contact", &obj(json!({"name": "王芳", "email": "wang.fang@example.cn"}))).await.unwrap();
    let id = upload(&t, &o.rep_east1, "contacts_gbk.csv", |s| {
        upsert_by_email(s);
    })
    .await;
    let dry = t.import_dry_run(&o.rep_east1, id).await.unwrap();
    assert_eq!((dry.counts.created, dry.counts.failed), (3, 1));
    assert_eq!((dry.errors[0].row, dry.errors[0].code.as_str()), (3, "import.out_of_scope"));
    assert!(t.import_view(&o.rep_east2, id).await.is_err(), "an import is its owner's");
    t.import_view(&o.admin, id).await.expect("and the administrators'");
    let v = run(&t, &o.rep_east1, id).await;
    assert_eq!(v.counts, dry.counts);
    assert_eq!(live(&t, "o_contact").await, 4);
    // A field the role may not write cannot be mapped.
    let mut role = t.role_by_key("sales_rep").await.unwrap();
    role.grants.fields.insert("contact.score".into(), kehu_core::perm::FieldPerm { read: true, write: false });
    t.set_role_grants("sales_rep", &role.grants).await.unwrap();
    let rep = t.actor(o.rep_east1.user_id.unwrap()).await.unwrap();
    let id = t.import_upload(&rep, "contact", "contacts.xlsx", &data("contacts.xlsx"), None).await.unwrap();
    let s = t.import_settings(&rep, id).await.unwrap();
    assert!(s.columns.contains(&Some("score".into())));
    let err = t.import_configure(&rep, id, &s, None).await.unwrap_err();
    assert_eq!((err.code.as_str(), err.fields[0].field.as_str()), ("import.field_not_writable", "score"));
}
both!(permissions_apply);

async fn saved_mappings(t: TestApp) {
    let o = org(&t).await;
    let id = t.import_upload(&o.admin, "contact", "a.csv", &data("contacts_semicolon.csv"), None).await.unwrap();
    let mut s = t.import_settings(&o.admin, id).await.unwrap();
    s.columns[4] = None; // job title ignored
    t.import_configure(&o.admin, id, &s, Some("Trade fair list")).await.unwrap();
    let saved = t.import_mappings(&o.admin, "contact").await.unwrap();
    assert_eq!((saved.len(), saved[0].name.as_str()), (1, "Trade fair list"));
    let other =
        t.import_upload(&o.manager_sales, "contact", "b.csv", &data("contacts_utf8_bom.csv"), None).await.unwrap();
    assert_eq!(t.import_settings(&o.manager_sales, other).await.unwrap(), s, "same headers: the saved mapping");

    // Picked by name for a file whose columns differ: same headers take the saved choice
    // (also "skip"), a new column its automatic match, a field the saved mapping fills is
    // not taken twice; mode, key and "create missing" come along.
    let mut s = s.clone();
    s.mode = ImportMode::Upsert;
    s.key = Some("email".into());
    s.create_missing = true;
    s.columns[5] = Some("job_title".into()); // City → job title, on purpose
    t.import_configure(&o.admin, id, &s, Some("Trade fair list")).await.unwrap();
    let saved = t.import_mappings(&o.admin, "contact").await.unwrap();
    assert_eq!((saved.len(), saved[0].created_by), (1, o.admin.user_id), "replaced by name");
    let csv = "邮箱,City,Job title,职位,Name,Fax\r\na@example.cn,上海,CEO,CEO,甲,1\r\n";
    let third = t.import_upload(&o.manager_sales, "contact", "c.csv", csv.as_bytes(), None).await.unwrap();
    let applied = t.import_apply_mapping(&o.manager_sales, third, saved[0].id).await.unwrap();
    let cols: Vec<&str> = applied.columns.iter().map(|c| c.as_deref().unwrap_or("-")).collect();
    assert_eq!(cols, ["email", "job_title", "-", "-", "name", "-"]);
    assert_eq!(
        (applied.mode, applied.key.as_deref(), applied.create_missing),
        (ImportMode::Upsert, Some("email"), true)
    );
    assert_eq!(t.import_view(&o.manager_sales, third).await.unwrap().settings, None, "nothing stored yet");
    // Only its creator or an administrator deletes it; then it is gone.
    assert_eq!(
        t.delete_import_mapping(&o.manager_sales, "contact", saved[0].id).await.unwrap_err().code,
        "permission.denied"
    );
    assert_eq!(t.import_apply_mapping(&o.rep_east1, third, saved[0].id).await.unwrap_err().code, "import.not_found");
    t.delete_import_mapping(&o.admin, "contact", saved[0].id).await.unwrap();
    assert!(t.import_mappings(&o.admin, "contact").await.unwrap().is_empty());
    let gone = t.import_apply_mapping(&o.manager_sales, third, saved[0].id).await.unwrap_err();
    assert_eq!(gone.code, "import.mapping_not_found");
}
both!(saved_mappings);
