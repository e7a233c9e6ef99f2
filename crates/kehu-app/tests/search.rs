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
