//! Search: two-character Chinese words, English words and prefixes, e-mail fragments and the
//! last digits of a phone number; results limited to what the actor may see.

use crate::support::*;
use serde_json::json;

async fn finds_chinese_words_phones_and_emails(t: TestApp) {
    let a = system();
    let zw = t
        .create(
            &a,
            "contact",
            &obj(json!({"name": "张伟", "email": "zw.sales@huaxia-tech.cn", "phone": "+86 138 0013 8000"})),
        )
        .await
        .unwrap();
    let zwm = t.create(&a, "contact", &obj(json!({"name": "张伟明", "job_title": "采购经理"}))).await.unwrap();
    let other = t
        .create(&a, "contact", &obj(json!({"name": "张明伟", "phone": "13912345678", "email": "mingwei@example.com"})))
        .await
        .unwrap();
    let co = t.create(&a, "company", &obj(json!({"name": "上海合同管理有限公司"}))).await.unwrap();
    let en =
        t.create(&a, "contact", &obj(json!({"name": "Jonathan Smith", "email": "jsmith@contoso.com"}))).await.unwrap();
    let ids = |hits: Vec<kehu_app::SearchResult>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
    let found = ids(t.search(&a, "张伟", None, 20).await.unwrap());
    assert!(found.contains(&zw.id) && found.contains(&zwm.id), "{found:?}");
    assert!(!found.contains(&other.id), "张明伟 does not contain 张伟");
    assert_eq!(ids(t.search(&a, "合同", None, 20).await.unwrap()), vec![co.id]);
    assert_eq!(ids(t.search(&a, "8000", None, 20).await.unwrap()), vec![zw.id], "last 4 digits");
    assert_eq!(ids(t.search(&a, "5678", None, 20).await.unwrap()), vec![other.id]);
    assert_eq!(ids(t.search(&a, "huaxia", None, 20).await.unwrap()), vec![zw.id], "e-mail domain word");
    assert_eq!(ids(t.search(&a, "ales@huax", None, 20).await.unwrap()), vec![zw.id], "e-mail fragment");
    assert_eq!(ids(t.search(&a, "jonat", None, 20).await.unwrap()), vec![en.id], "English prefix");
    assert_eq!(ids(t.search(&a, "SMITH jon", None, 20).await.unwrap()), vec![en.id], "two words, any case");
    assert_eq!(ids(t.search(&a, "采购", Some(&["contact"]), 20).await.unwrap()), vec![zwm.id]);
    assert!(t.search(&a, "采购", Some(&["company"]), 20).await.unwrap().is_empty());
    let hit = &t.search(&a, "合同", None, 20).await.unwrap()[0];
    assert_eq!((hit.object.as_str(), hit.title.as_deref()), ("company", Some("上海合同管理有限公司")));
    // Updates re-index; syntax characters are harmless.
    t.update(&a, "contact", en.id, en.version, &obj(json!({"name": "Jon Doe"}))).await.unwrap();
    assert!(t.search(&a, "jonathan", None, 20).await.unwrap().is_empty());
    assert_eq!(ids(t.search(&a, "doe", None, 20).await.unwrap()), vec![en.id]);
    for q in ["\"", "*", "NEAR(", "'; --", "a OR b", ":*", "%", "_", "\\", ""] {
        t.search(&a, q, None, 20).await.unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    assert!(t.search(&a, "x", Some(&["nope"]), 5).await.is_err());
}
both!(finds_chinese_words_phones_and_emails);

/// Migration 11 rebuilds SQLite's FTS5 indexes (no per-document sizes, merging at 8) from the
/// documents already there: a database indexed the old way still finds everything after it.
async fn search_tuning_migration_keeps_existing_documents(t: TestApp) {
    let a = system();
    let zw = t
        .create(&a, "contact", &obj(json!({"name": "张伟", "email": "zw@huaxia.cn", "phone": "13800138000"})))
        .await
        .unwrap();
    let ids = |hits: Vec<kehu_app::SearchResult>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
    let sqlite = t.db.backend() == kehu_db::Backend::Sqlite;
    let tables = || async {
        let q = kehu_db::Raw::new("SELECT name FROM sqlite_master WHERE name LIKE 'search_%' ORDER BY name", vec![]);
        t.db.all(&q).await.unwrap().iter().filter_map(|r| r.string(0)).collect::<Vec<_>>()
    };
    if sqlite {
        assert!(!tables().await.iter().any(|n| n.ends_with("_docsize")), "fresh databases start tuned");
        // Back to the index as migration 2 made it, filled from the documents.
        t.db.exec_raw(
            "DROP TABLE search_words; DROP TABLE search_ident;
             CREATE VIRTUAL TABLE search_words USING fts5(words, content='search_docs', content_rowid='rid',
                 tokenize='unicode61 remove_diacritics 0', prefix='2 3');
             CREATE VIRTUAL TABLE search_ident USING fts5(ident, content='search_docs', content_rowid='rid',
                 tokenize='trigram');
             INSERT INTO search_words(search_words) VALUES ('rebuild');
             INSERT INTO search_ident(search_ident) VALUES ('rebuild');",
        )
        .await
        .unwrap();
        assert!(tables().await.contains(&"search_words_docsize".to_string()));
    }
    t.db.write(&kehu_db::Raw::new("DELETE FROM schema_migrations WHERE version = 11", vec![])).await.unwrap();
    assert_eq!(kehu_db::migrate::run(&t.db).await.unwrap(), vec![11]);
    if sqlite {
        assert!(!tables().await.iter().any(|n| n.ends_with("_docsize")), "{:?}", tables().await);
        let am =
            t.db.one(&kehu_db::Raw::new("SELECT v FROM search_words_config WHERE k = 'automerge'", vec![]))
                .await
                .unwrap()
                .and_then(|r| r.i64(0));
        assert_eq!(am, Some(8));
    }
    assert_eq!(ids(t.search(&a, "张伟", None, 20).await.unwrap()), vec![zw.id]);
    assert_eq!(ids(t.search(&a, "8000", None, 20).await.unwrap()), vec![zw.id]);
    assert_eq!(ids(t.search(&a, "w@huax", None, 20).await.unwrap()), vec![zw.id]);
    // New and changed records are indexed as before.
    let li = t.create(&a, "contact", &obj(json!({"name": "李娜", "phone": "13912345678"}))).await.unwrap();
    assert_eq!(ids(t.search(&a, "李娜", None, 20).await.unwrap()), vec![li.id]);
    t.update(&a, "contact", li.id, 1, &obj(json!({"name": "李娜娜"}))).await.unwrap();
    assert_eq!(ids(t.search(&a, "5678", None, 20).await.unwrap()), vec![li.id]);
}
both!(search_tuning_migration_keeps_existing_documents);

/// E-mails and phones are searched as substrings: in order, in any case. On SQLite the trigram
/// index (no positions) only proposes documents holding all the pattern's trigrams; one with
/// them all but not in a row ("abca.cab" has abc, bca and cab) is not a hit for "abcabc".
async fn substrings_are_matched_exactly(t: TestApp) {
    let a = system();
    let whole = t.create(&a, "contact", &obj(json!({"name": "甲", "email": "zz.abcabc@kehu-test.cn"}))).await.unwrap();
    let split = t.create(&a, "contact", &obj(json!({"name": "乙", "email": "abca.cab@kehu-test.cn"}))).await.unwrap();
    let ids = |hits: Vec<kehu_app::SearchResult>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(ids(t.search(&a, "bcabc", None, 20).await.unwrap()), vec![whole.id], "trigrams out of order");
    assert_eq!(ids(t.search(&a, "Z.ABCABC@KEHU", None, 20).await.unwrap()), vec![whole.id], "any case");
    assert_eq!(ids(t.search(&a, "a.cab@k", None, 20).await.unwrap()), vec![split.id]);
    assert!(t.search(&a, "cabcab", None, 20).await.unwrap().is_empty());
}
both!(substrings_are_matched_exactly);

/// Migration 13 lower-cases the e-mails and phones of existing documents and (SQLite) rebuilds
/// their trigram index without positions: what was found before is found after.
async fn search_ident_migration_keeps_substring_search(t: TestApp) {
    let a = system();
    let zw = t.create(&a, "contact", &obj(json!({"name": "张伟", "email": "zw@huaxia.cn"}))).await.unwrap();
    let sqlite = t.db.backend() == kehu_db::Backend::Sqlite;
    let ident_sql = || async {
        let q = kehu_db::Raw::new("SELECT sql FROM sqlite_master WHERE name = 'search_ident'", vec![]);
        t.db.one(&q).await.unwrap().and_then(|r| r.string(0)).unwrap_or_default()
    };
    if sqlite {
        assert!(ident_sql().await.contains("detail=none"), "fresh databases start without positions");
        t.db.exec_raw(
            "DROP TABLE search_ident;
             CREATE VIRTUAL TABLE search_ident USING fts5(ident, content='search_docs', content_rowid='rid',
                 tokenize='trigram', columnsize=0);
             INSERT INTO search_ident(search_ident) VALUES ('rebuild');",
        )
        .await
        .unwrap();
    }
    // A document written before idents were lower-cased.
    t.db.write(&kehu_db::Raw::new(
        "UPDATE search_docs SET ident = 'ZW@HuaXia.cn' WHERE record_id = $1",
        vec![zw.id.into()],
    ))
    .await
    .unwrap();
    t.db.write(&kehu_db::Raw::new("DELETE FROM schema_migrations WHERE version = 13", vec![])).await.unwrap();
    assert_eq!(kehu_db::migrate::run(&t.db).await.unwrap(), vec![13]);
    let ident =
        t.db.one(&kehu_db::Raw::new("SELECT ident FROM search_docs WHERE record_id = $1", vec![zw.id.into()]))
            .await
            .unwrap()
            .and_then(|r| r.string(0));
    assert_eq!(ident.as_deref(), Some("zw@huaxia.cn"));
    if sqlite {
        assert!(ident_sql().await.contains("detail=none"), "{}", ident_sql().await);
    }
    let ids = |hits: Vec<kehu_app::SearchResult>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(ids(t.search(&a, "w@huaX", None, 20).await.unwrap()), vec![zw.id]);
    let li = t.create(&a, "contact", &obj(json!({"name": "李娜", "phone": "13912345678"}))).await.unwrap();
    assert_eq!(ids(t.search(&a, "9123", None, 20).await.unwrap()), vec![li.id], "middle digits");
}
both!(search_ident_migration_keeps_substring_search);

/// Search built for sales: a phone in any format; a 3–4 digit query ranks numbers that end
/// with it first and says which field matched (masked for a rep); traditional and simplified
/// Chinese find each other; pinyin full spelling and initials find names; a manager's team
/// scope holds; documents written before pinyin are rebuilt by the resumable reindex.
async fn search_built_for_sales(t: TestApp) {
    let o = org(&t).await;
    let a = system();
    let e1 = o.rep_east1.user_id.unwrap();
    let n1 = o.rep_north.user_id.unwrap();
    let mk = |name: &str, phone: &str, email: &str, owner: kehu_core::Uuid| {
        obj(json!({"name": name, "phone": phone, "email": email, "owner": owner}))
    };
    // The number in its middle digits is created last (newest), so recency alone would rank it first.
    let ends = t.create(&a, "contact", &mk("郑敏", "176 7226 3394", "zm@huaxia.cn", e1)).await.unwrap();
    let trad = t.create(&a, "contact", &mk("張學友", "13912340000", "xy@huaxia.cn", e1)).await.unwrap();
    let north = t.create(&a, "contact", &mk("郑明", "13800009999", "zheng.ming@north.cn", n1)).await.unwrap();
    let middle = t.create(&a, "contact", &mk("李娜", "13933941234", "lina@huaxia.cn", e1)).await.unwrap();
    let ids = |hits: &[kehu_app::SearchResult]| hits.iter().map(|h| h.id).collect::<Vec<_>>();
    for q in ["176-7226-3394", "+86 176 7226 3394", "17672263394", "(176) 7226 3394"] {
        assert_eq!(ids(&t.search(&a, q, None, 20).await.unwrap()), vec![ends.id], "{q}");
    }
    let hits = t.search(&o.rep_east1, "3394", None, 20).await.unwrap();
    assert_eq!(ids(&hits), vec![ends.id], "the number ending in 3394, not one with 3394 inside");
    assert_eq!(
        ids(&t.search(&o.rep_east1, "3941", None, 20).await.unwrap()),
        vec![middle.id],
        "no number ends in 3941: digits inside one"
    );
    assert_eq!(hits[0].matched[0].field, "phone");
    assert!(
        hits[0].matched[0].value.contains('*') && hits[0].matched[0].value.ends_with("3394"),
        "{:?}",
        hits[0].matched
    );
    // Simplified and traditional find each other.
    assert_eq!(ids(&t.search(&a, "张学友", None, 20).await.unwrap()), vec![trad.id]);
    assert_eq!(ids(&t.search(&a, "張學友", None, 20).await.unwrap()), vec![trad.id]);
    // Pinyin: full spelling, initials, a prefix; the match names the field.
    for q in ["zhengmin", "zm", "zhengm"] {
        let hits = t.search(&a, q, Some(&["contact"]), 20).await.unwrap();
        assert!(ids(&hits).contains(&ends.id), "{q}: {hits:?}");
        assert!(hits.iter().find(|h| h.id == ends.id).unwrap().matched.iter().any(|m| m.field == "name"));
    }
    assert_eq!(
        ids(&t.search(&a, "zhang xueyou", None, 20).await.unwrap()),
        Vec::<kehu_core::Uuid>::new(),
        "words are per run"
    );
    assert_eq!(ids(&t.search(&a, "zhangxueyou", None, 20).await.unwrap()), vec![trad.id]);
    // Scopes: the east rep never sees the north record; the sales manager (team) does.
    assert!(!ids(&t.search(&o.rep_east1, "zheng", None, 20).await.unwrap()).contains(&north.id));
    assert!(ids(&t.search(&o.manager_sales, "zheng", None, 20).await.unwrap()).contains(&north.id));
    assert!(ids(&t.search(&o.manager_other, "zheng", None, 20).await.unwrap()).is_empty());

    // A document written before pinyin: the rebuild adds it, in resumable steps.
    let mut tx = t.db.begin().await.unwrap();
    let old =
        kehu_db::Raw::new("UPDATE search_docs SET words = $1 WHERE record_id = $2", vec!["".into(), ends.id.into()]);
    tx.exec(&old).await.unwrap();
    tx.exec(&kehu_db::Raw::new("DELETE FROM settings WHERE key = 'search_index_version'", vec![])).await.unwrap();
    tx.commit().await.unwrap();
    let old = ids(&t.search(&a, "zhengmin", None, 20).await.unwrap());
    assert!(!old.contains(&ends.id) && old.contains(&north.id), "the old document has no pinyin (郑明 zhengming has)");
    let mut steps = 0;
    while !t.reindex_search_step(std::time::Duration::ZERO).await.unwrap() {
        steps += 1;
        assert!(steps < 100, "the rebuild finishes");
    }
    assert!(steps > 1, "one batch per step");
    assert!(ids(&t.search(&a, "zhengmin", None, 20).await.unwrap()).contains(&ends.id));
    assert!(t.reindex_search_step(std::time::Duration::ZERO).await.unwrap(), "current now");
}
both!(search_built_for_sales);

/// A substring that thousands of e-mails contain (more than the search window): a rep gets
/// exactly their own matches, newest first, and an administrator the newest of everyone's —
/// through the owners' documents and the ordered index respectively.
async fn dense_substrings_by_scope(t: TestApp) {
    let o = org(&t).await;
    let a = system();
    let e1 = o.rep_east1.user_id.unwrap();
    let n1 = o.rep_north.user_id.unwrap();
    let rows: Vec<_> = (0..2100)
        .map(|i| obj(json!({"name": format!("客户{i}"), "email": format!("aqzvb{i}@d.cn"), "owner": if i % 700 == 5 { e1 } else { n1 }})))
        .collect();
    let mut ids = Vec::new();
    for chunk in rows.chunks(500) {
        ids.extend(t.create_many(&a, "contact", chunk).await.unwrap());
    }
    let mine: Vec<kehu_core::Uuid> = [1405, 705, 5].iter().map(|i| ids[*i]).collect();
    let found = |hits: Vec<kehu_app::SearchResult>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(found(t.search(&o.rep_east1, "qzvb", None, 20).await.unwrap()), mine, "the rep's three, newest first");
    let all = found(t.search(&a, "qzvb", None, 20).await.unwrap());
    assert_eq!(all, ids.iter().rev().take(20).copied().collect::<Vec<_>>(), "the newest twenty of everyone's");
    assert!(found(t.search(&o.manager_other, "qzvb", None, 20).await.unwrap()).is_empty());
}
both!(dense_substrings_by_scope);
