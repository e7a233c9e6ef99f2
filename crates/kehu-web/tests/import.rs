//! Import over HTTP: upload (multipart, CSRF) → mapping → dry run → start → progress →
//! report → failed rows CSV → undo, the history page, and who may see an import.

use crate::support::*;
use axum::body::Body;
use axum::http::{Method, StatusCode};

pub fn data(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kehu-app/tests/data/import").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A multipart body with one file part.
fn multipart(file: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "kehuTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"sheet\"\r\n\r\n\r\n--{boundary}--\r\n")
            .as_bytes(),
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Post a file as the page's htmx form does (CSRF header).
async fn post_file(b: &Browser, file: &str, bytes: &[u8]) -> Resp {
    let (ct, body) = multipart(file, bytes);
    let token = b.csrf.lock().unwrap().clone();
    b.send(
        Method::POST,
        "/o/contact/import",
        &[("content-type", &ct), ("x-csrf-token", &token), ("hx-request", "true")],
        Body::from(body),
    )
    .await
}

/// Upload as the page's htmx form does; returns the import's path.
pub async fn upload(b: &Browser, file: &str, bytes: &[u8]) -> String {
    let r = post_file(b, file, bytes).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    r.headers.get("hx-redirect").and_then(|v| v.to_str().ok()).expect("hx-redirect").to_string()
}

const COLUMNS: [(&str, &str); 10] = [
    ("col_0", "name"),
    ("col_1", "email"),
    ("col_2", "phone"),
    ("col_3", "company"),
    ("col_4", "job_title"),
    ("col_5", "city"),
    ("col_6", "lifecycle_stage"),
    ("col_7", "tags"),
    ("mode", "create"),
    ("key", "email"),
];

async fn upload_map_check_run_undo(t: TestWeb) {
    let admin = t.admin().await;
    let list = admin.get("/o/contact").await;
    assert!(list.body.contains("href=\"/o/contact/import\""), "import button on the list");
    let page = admin.get("/o/contact/import").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"upload-form\"") && page.body.contains("导入联系人"), "{}", page.body);
    // Without the CSRF token nothing is stored.
    let (ct, body) = multipart("bad_rows.csv", &data("bad_rows.csv"));
    let r = admin.send(Method::POST, "/o/contact/import", &[("content-type", &ct)], Body::from(body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&t, "imports").await, 0);
    // Garbage gets a translated message, not a crash.
    let r = post_file(&admin, "x.xlsx", b"PK\x03\x04 not a workbook").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let toast = r.headers.get("x-kehu-toast").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(!toast.is_empty(), "a toast explains it");
    // Upload → mapping page with the automatic matches.
    let path = upload(&admin, "bad_rows.csv", &data("bad_rows.csv")).await;
    let id = path.trim_start_matches("/imports/").to_string();
    let m = admin.get(&path).await;
    assert!(m.body.contains("id=\"mapping-form\""), "{}", m.body);
    assert!(m.body.contains("<option value=\"email\" selected>"), "e-mail matched: {}", m.body);
    // A field twice is refused on the page.
    let mut twice = COLUMNS.to_vec();
    twice[5] = ("col_5", "name");
    let r = admin.post_form(&format!("{path}/map"), &twice).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("id=\"mapping-error\""), "{}", r.body);
    // The mapping → the dry run.
    let r = admin.post_form(&format!("{path}/map"), &COLUMNS).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, format!("{path}/check").as_str()), "{}", r.body);
    let check = admin.get(&format!("{path}/check")).await;
    assert!(check.body.contains("id=\"count-created\">2<"), "{}", check.body);
    assert!(check.body.contains("id=\"count-failed\">3<"));
    assert!(check.body.contains("邮箱格式不正确"), "translated reason: {}", check.body);
    assert!(check.body.contains("与第 2 行的值相同"), "duplicate with its first row");
    assert_eq!(count(&t, "o_contact").await, 0, "the dry run wrote nothing");
    // Start: CSRF needed.
    let r = admin.post_raw(&format!("{path}/start"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = admin.post_form(&format!("{path}/start"), &[]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, path.as_str()));
    let p = admin.get(&path).await;
    assert!(p.body.contains(&format!("hx-get=\"{path}/progress\"")), "progress polling: {}", p.body);
    t.app.run_jobs().await.unwrap();
    let r = admin.send(Method::GET, &format!("{path}/progress"), &[("hx-request", "true")], Body::empty()).await;
    assert_eq!(r.headers.get("hx-redirect").and_then(|v| v.to_str().ok()), Some(path.as_str()));
    let report = admin.get(&path).await;
    assert!(report.body.contains("id=\"import-report\""), "{}", report.body);
    assert!(report.body.contains("id=\"count-created\">2<") && report.body.contains("id=\"download-failed\""));
    assert_eq!(count(&t, "o_contact WHERE deleted_at IS NULL").await, 2);
    let csv = admin.get(&format!("{path}/failed.csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with("\u{feff}姓名,邮箱,"), "{}", csv.body);
    assert!(csv.body.lines().next().unwrap().ends_with(",导入错误"));
    assert_eq!(csv.body.lines().count(), 4, "header + 3 failed rows");
    // Someone else cannot see it.
    t.user("rep@kehu.test", "sales_rep").await;
    let rep = t.login("rep@kehu.test").await;
    assert_eq!(rep.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rep.get(&format!("{path}/failed.csv")).await.status, StatusCode::NOT_FOUND);
    assert!(!rep.get("/o/contact/imports").await.body.contains(&id), "not in someone else's history");
    // History.
    let h = admin.get("/o/contact/imports").await;
    assert!(h.body.contains(&format!("href=\"{path}\"")) && h.body.contains("bad_rows.csv"), "{}", h.body);
    // Undo (with CSRF), as a job.
    assert_eq!(admin.post_raw(&format!("{path}/undo"), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&t, "o_contact WHERE deleted_at IS NULL").await, 2);
    let r = admin.post_form(&format!("{path}/undo"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    t.app.run_jobs().await.unwrap();
    let report = admin.get(&path).await;
    assert!(report.body.contains("id=\"undo-result\""), "{}", report.body);
    assert_eq!(count(&t, "o_contact WHERE deleted_at IS NULL").await, 0);
    // The downloaded failed rows, fixed, import as they are.
    let fixed = csv
        .body
        .replace("qian.duo@@example", "qian.duo@example.cn")
        .replace("大客户", "成交客户")
        .replace("郑好二,zheng.hao@example.cn", "郑好二,zheng.hao2@example.cn");
    let again = upload(&admin, "fixed.csv", fixed.as_bytes()).await;
    let r = admin.post_form(&format!("{again}/map"), &COLUMNS).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let check = admin.get(&format!("{again}/check")).await;
    assert!(
        check.body.contains("id=\"count-created\">3<") && check.body.contains("id=\"count-failed\">0<"),
        "{}",
        check.body
    );
}
both!(upload_map_check_run_undo);

/// A file of several batches is checked by a job: the page polls its progress, then shows
/// the answer with its time; "重新检查" queues a new check (CSRF needed); a failed check says
/// why and can be asked again.
async fn large_files_are_checked_in_the_background(t: TestWeb) {
    let admin = t.admin().await;
    t.app.set_import_batch_rows(100);
    let mut csv = String::from("姓名,邮箱,手机\r\n");
    for i in 0..250 {
        csv.push_str(&format!("客户{i},c{i}@example.cn,139{i:08}\r\n"));
    }
    csv.push_str("坏行,bad@,13900000000\r\n");
    let path = upload(&admin, "big.csv", csv.as_bytes()).await;
    let cols = [("col_0", "name"), ("col_1", "email"), ("col_2", "phone"), ("mode", "create"), ("key", "")];
    let r = admin.post_form(&format!("{path}/map"), &cols).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, format!("{path}/check").as_str()), "{}", r.body);
    let page = admin.get(&format!("{path}/check")).await;
    assert!(page.body.contains(&format!("hx-get=\"{path}/check/progress\"")), "{}", page.body);
    assert!(!page.body.contains("count-created") && !page.body.contains("id=\"start-import\""), "{}", page.body);
    let r = poll_check(&admin, &path).await;
    assert!(r.body.contains("id=\"check-progress\"") && r.body.contains("已检查 0 行"), "{}", r.body);
    while t.app.run_jobs().await.unwrap() > 0 {}
    let r = poll_check(&admin, &path).await;
    let check_url = format!("{path}/check");
    assert_eq!(r.headers.get("hx-redirect").and_then(|v| v.to_str().ok()), Some(check_url.as_str()));
    let page = admin.get(&check_url).await;
    assert!(
        page.body.contains("id=\"count-created\">250<") && page.body.contains("id=\"count-failed\">1<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"checked-at\"") && page.body.contains("id=\"start-import\""));
    assert!(page.body.contains("邮箱格式不正确"));
    assert_eq!(count(&t, "o_contact").await, 0, "the check wrote nothing");
    // Back on the mapping page (as from the history), the check is linked.
    let m = admin.get(&path).await;
    assert!(m.body.contains("id=\"check-link\"") && m.body.contains("此字段对应已于"), "{}", m.body);
    assert!(m.body.contains(&format!("href=\"{check_url}\"")));
    // Check again: CSRF needed; then a new job and its progress.
    assert_eq!(admin.post_raw(&check_url, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&t, "jobs WHERE kind = 'import_check'").await, 1);
    let r = admin.post_form(&check_url, &[]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, check_url.as_str()));
    assert_eq!(count(&t, "jobs WHERE kind = 'import_check'").await, 2);
    assert!(admin.get(&check_url).await.body.contains("id=\"check-progress\""));
    assert!(admin.get(&path).await.body.contains("正在按此字段对应检查（0%）"));
    // A check that failed says why, and can be asked again.
    t.app
        .db
        .write(&kehu_db::Raw::new(
            "UPDATE jobs SET state = 'failed', error = 'import.check_outdated' WHERE kind = 'import_check' AND state = 'pending'",
            vec![],
        ))
        .await
        .unwrap();
    let page = admin.get(&check_url).await;
    assert!(page.body.contains("id=\"check-error\"") && page.body.contains("请重新检查"), "{}", page.body);
    assert!(page.body.contains("id=\"check-again\"") && !page.body.contains("id=\"start-import\""));
    // Someone else sees none of it.
    t.user("rep@kehu.test", "sales_rep").await;
    let rep = t.login("rep@kehu.test").await;
    assert_eq!(rep.get(&check_url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(poll_check(&rep, &path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rep.post_form(&check_url, &[]).await.status, StatusCode::NOT_FOUND);
}
both!(large_files_are_checked_in_the_background);

/// A mapping saved by name is offered on the mapping page of a file with other columns,
/// applied by name (nothing stored until the user goes on), and deleted by its creator.
async fn saved_mappings_are_picked_by_name(t: TestWeb) {
    let admin = t.admin().await;
    let first = upload(&admin, "bad_rows.csv", &data("bad_rows.csv")).await;
    assert!(!admin.get(&first).await.body.contains("id=\"saved-mappings\""), "nothing saved yet");
    let mut cols = COLUMNS.to_vec();
    cols[5] = ("col_5", "");
    cols.push(("save_as", "展会名单"));
    let r = admin.post_form(&format!("{first}/map"), &cols).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id = t.app.db.one(&kehu_db::Raw::new("SELECT id FROM import_mappings", vec![])).await.unwrap().unwrap();
    let id = id.uuid(0).unwrap();
    // Another file: the city column first, the rest renamed or reordered.
    let csv = "城市,邮箱,姓名,备注\r\n广州,a@example.cn,甲,x\r\n";
    let second = upload(&admin, "other.csv", csv.as_bytes()).await;
    let page = admin.get(&second).await;
    assert!(page.body.contains("id=\"saved-mappings\"") && page.body.contains(">展会名单</option>"), "{}", page.body);
    assert!(page.body.contains("<option value=\"city\" selected>"), "automatic before applying");
    let applied = admin.get(&format!("{second}?mapping={id}")).await;
    assert_eq!(applied.status, StatusCode::OK);
    assert!(applied.body.contains(&format!("<option value=\"{id}\" selected>展会名单")), "{}", applied.body);
    assert!(applied.body.contains("id=\"applied-mapping\"") && applied.body.contains("id=\"delete-mapping\""));
    assert!(!applied.body.contains("<option value=\"city\" selected>"), "city skipped as saved: {}", applied.body);
    assert!(applied.body.contains("<input type=\"radio\" name=\"mode\" value=\"create\" checked>"));
    assert_eq!(admin.get(&format!("{second}?mapping=nonsense")).await.status, StatusCode::NOT_FOUND);
    // Someone else's import: not found; deleting needs CSRF.
    t.user("rep@kehu.test", "sales_rep").await;
    let rep = t.login("rep@kehu.test").await;
    assert_eq!(rep.get(&format!("{second}?mapping={id}")).await.status, StatusCode::NOT_FOUND);
    let delete = format!("{second}/mappings/{id}/delete");
    assert_eq!(rep.post_form(&delete, &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin.post_raw(&delete, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&t, "import_mappings").await, 1);
    let r = admin.post_form(&delete, &[]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, second.as_str()));
    assert_eq!(count(&t, "import_mappings").await, 0);
    assert!(!admin.get(&second).await.body.contains("id=\"saved-mappings\""));
}
both!(saved_mappings_are_picked_by_name);

/// The check's progress as the page's htmx poll asks for it.
async fn poll_check(b: &Browser, path: &str) -> Resp {
    b.send(Method::GET, &format!("{path}/check/progress"), &[("hx-request", "true")], Body::empty()).await
}

async fn read_only_users_cannot_import(t: TestWeb) {
    let _admin = t.admin().await;
    t.user("viewer@kehu.test", "read_only").await;
    let v = t.login("viewer@kehu.test").await;
    assert!(!v.get("/o/contact").await.body.contains("/o/contact/import"), "no button");
    assert_eq!(v.get("/o/contact/import").await.status, StatusCode::FORBIDDEN);
    let r = post_file(&v, "a.csv", &data("contacts_gbk.csv")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&t, "imports").await, 0);
}
both!(read_only_users_cannot_import);
