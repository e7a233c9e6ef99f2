//! Every filter operator, on both backends, against a small known data set.

use crate::support::*;
use kehu_app::ListRequest;
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;

async fn names(t: &TestApp, filter: Json) -> BTreeSet<String> {
    let req = ListRequest { filter: Some(filter.clone()), limit: Some(200), ..Default::default() };
    let page = t.list(&system(), "contact", &req).await.unwrap_or_else(|e| panic!("{filter}: {e}"));
    page.records.iter().map(|r| r.get("name").as_str().unwrap_or_default().to_string()).collect()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

async fn each_operator(t: TestApp) {
    let a = system();
    let acme = t.create(&a, "company", &obj(json!({"name": "Acme"}))).await.unwrap();
    let rows = [
        json!({"name": "张伟", "email": "zhang.wei@acme.cn", "phone": "13800138000", "city": "上海", "score": 90, "birthday": "1990-05-01", "tags": ["vip", "老客户"], "lifecycle_stage": "customer", "company": acme.id.to_string(), "do_not_contact": true}),
        json!({"name": "李娜", "email": "lina@example.com", "phone": "13911112222", "city": "北京", "score": 70, "birthday": "1985-12-24", "tags": ["vip"], "lifecycle_stage": "prospect"}),
        json!({"name": "Wang Fang", "email": "wang.fang@example.com", "city": "上海", "score": 50, "lifecycle_stage": "lead"}),
        json!({"name": "Tom O'Neil", "city": "Shenzhen", "lifecycle_stage": "churned", "tags": ["50%_off"]}),
    ];
    for r in rows {
        t.create(&a, "contact", &obj(r)).await.unwrap();
    }
    let all = set(&["张伟", "李娜", "Wang Fang", "Tom O'Neil"]);
    let cases: Vec<(Json, BTreeSet<String>)> = vec![
        (json!({"field": "city", "op": "eq", "value": "上海"}), set(&["张伟", "Wang Fang"])),
        (json!({"field": "city", "op": "neq", "value": "上海"}), set(&["李娜", "Tom O'Neil"])),
        (json!({"field": "score", "op": "neq", "value": 90}), set(&["李娜", "Wang Fang", "Tom O'Neil"])),
        (json!({"field": "score", "op": "lt", "value": 70}), set(&["Wang Fang"])),
        (json!({"field": "score", "op": "lte", "value": 70}), set(&["李娜", "Wang Fang"])),
        (json!({"field": "score", "op": "gt", "value": 70}), set(&["张伟"])),
        (json!({"field": "score", "op": "gte", "value": 70}), set(&["张伟", "李娜"])),
        (json!({"field": "score", "op": "between", "value": [60, 95]}), set(&["张伟", "李娜"])),
        (json!({"field": "birthday", "op": "between", "value": ["1985-01-01", "1989-12-31"]}), set(&["李娜"])),
        (json!({"field": "created_at", "op": "gte", "value": "2000-01-01"}), all.clone()),
        (json!({"field": "created_at", "op": "lt", "value": "2000-01-01T00:00:00Z"}), set(&[])),
        (json!({"field": "name", "op": "contains", "value": "fang"}), set(&["Wang Fang"])),
        (json!({"field": "name", "op": "contains", "value": "'"}), set(&["Tom O'Neil"])),
        (json!({"field": "email", "op": "contains", "value": "EXAMPLE"}), set(&["李娜", "Wang Fang"])),
        (json!({"field": "phone", "op": "contains", "value": "8000"}), set(&["张伟"])),
        (json!({"field": "name", "op": "starts_with", "value": "wang"}), set(&["Wang Fang"])),
        (json!({"field": "email", "op": "starts_with", "value": "%"}), set(&[])),
        (json!({"field": "city", "op": "in", "value": ["北京", "Shenzhen"]}), set(&["李娜", "Tom O'Neil"])),
        (json!({"field": "lifecycle_stage", "op": "in", "value": ["customer", "lead"]}), set(&["张伟", "Wang Fang"])),
        (json!({"field": "lifecycle_stage", "op": "eq", "value": "意向客户"}), set(&["李娜"])),
        (json!({"field": "tags", "op": "contains", "value": "vip"}), set(&["张伟", "李娜"])),
        (json!({"field": "tags", "op": "contains", "value": "VIP"}), set(&[])),
        (json!({"field": "tags", "op": "in", "value": ["老客户", "50%_off"]}), set(&["张伟", "Tom O'Neil"])),
        (json!({"field": "tags", "op": "is_empty"}), set(&["Wang Fang"])),
        (json!({"field": "email", "op": "is_empty"}), set(&["Tom O'Neil"])),
        (json!({"field": "email", "op": "is_not_empty"}), set(&["张伟", "李娜", "Wang Fang"])),
        (json!({"field": "do_not_contact", "op": "eq", "value": true}), set(&["张伟"])),
        (json!({"field": "do_not_contact", "op": "eq", "value": false}), set(&["李娜", "Wang Fang", "Tom O'Neil"])),
        (json!({"field": "company", "op": "relation_is", "value": acme.id.to_string()}), set(&["张伟"])),
        (json!({"field": "company", "op": "is_empty"}), set(&["李娜", "Wang Fang", "Tom O'Neil"])),
        (
            json!({"and": [{"field": "city", "op": "eq", "value": "上海"}, {"field": "score", "op": "gt", "value": 60}]}),
            set(&["张伟"]),
        ),
        (
            json!({"or": [{"field": "city", "op": "eq", "value": "北京"}, {"and": [{"field": "city", "op": "eq", "value": "上海"}, {"field": "score", "op": "lt", "value": 60}]}]}),
            set(&["李娜", "Wang Fang"]),
        ),
        (json!({"and": []}), all.clone()),
    ];
    for (f, want) in cases {
        assert_eq!(names(&t, f.clone()).await, want, "{f}");
    }
    // Counts agree with the rows.
    assert_eq!(t.count(&a, "contact", Some(&json!({"field": "city", "op": "eq", "value": "上海"}))).await.unwrap(), 2);
}
both!(each_operator);
