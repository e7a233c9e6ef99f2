//! Sorting with a stable tiebreak and cursor pagination: no gaps, no repeats, even while rows
//! are being inserted between pages; NULL is the smallest value: first ascending, last descending.

use crate::support::*;
use kehu_app::{Count, ListRequest};
use serde_json::{json, Value as Json};
use std::collections::HashSet;

async fn walk(t: &TestApp, sort: Json, insert_between: bool) -> (Vec<kehu_core::Uuid>, HashSet<kehu_core::Uuid>) {
    let a = system();
    let mut seen = Vec::new();
    let mut inserted = HashSet::new();
    let mut cursor = None;
    let mut n = 0;
    loop {
        let req =
            ListRequest { sort: Some(sort.clone()), limit: Some(7), cursor: cursor.clone(), ..Default::default() };
        let page = t.list(&a, "contact", &req).await.unwrap();
        seen.extend(page.records.iter().map(|r| r.id));
        if insert_between {
            // New rows land before, inside and after the current position.
            for score in [Json::Null, json!(0), json!(25), json!(99)] {
                n += 1;
                let r =
                    t.create(&a, "contact", &obj(json!({"name": format!("new{n}"), "score": score}))).await.unwrap();
                inserted.insert(r.id);
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    (seen, inserted)
}

async fn cursor_pagination_has_no_gaps_or_repeats(t: TestApp) {
    let a = system();
    let mut rows = Vec::new();
    for i in 0..60 {
        // Many ties and some NULLs, so the id tiebreak and NULL handling matter.
        let score = if i % 7 == 0 { Json::Null } else { json!(i % 5 * 10) };
        rows.push(obj(json!({"name": format!("c{i:02}"), "score": score, "city": if i % 3 == 0 { Json::Null } else { json!(format!("城市{}", i % 4)) }})));
    }
    let ids: HashSet<_> = t.create_many(&a, "contact", &rows).await.unwrap().into_iter().collect();
    for sort in [json!("score"), json!("-score"), json!("city,-score"), json!("-city,name"), json!("-updated_at")] {
        let (seen, inserted) = walk(&t, sort.clone(), true).await;
        let unique: HashSet<_> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: a row was repeated");
        assert!(ids.is_subset(&unique), "{sort}: {} original rows missing", ids.difference(&unique).count());
        assert!(unique.iter().all(|id| ids.contains(id) || inserted.contains(id)));
        for id in inserted {
            t.delete(&a, "contact", id, None).await.unwrap();
        }
    }
    // Without concurrent inserts, the walk equals one big sorted page.
    let (seen, _) = walk(&t, json!("-score"), false).await;
    let one = t
        .list(&a, "contact", &ListRequest { sort: Some(json!("-score")), limit: Some(200), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(seen, one.records.iter().map(|r| r.id).collect::<Vec<_>>());
    // NULL is the smallest value: first ascending, last descending.
    let asc = t
        .list(&a, "contact", &ListRequest { sort: Some(json!("score")), limit: Some(200), ..Default::default() })
        .await
        .unwrap();
    assert!(asc.records[0].get("score").is_null() && !asc.records.last().unwrap().get("score").is_null());
    assert!(one.records.last().unwrap().get("score").is_null() && !one.records[0].get("score").is_null());
    let scores: Vec<i64> = asc.records.iter().filter_map(|r| r.get("score").as_i64()).collect();
    assert!(scores.windows(2).all(|w| w[0] <= w[1]));
    // A cursor from one sort is refused by another.
    let p = t
        .list(&a, "contact", &ListRequest { sort: Some(json!("score")), limit: Some(5), ..Default::default() })
        .await
        .unwrap();
    let e = t
        .list(&a, "contact", &ListRequest { sort: Some(json!("name")), cursor: p.next_cursor, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code, "query.invalid_cursor");
    // Exact and capped counts.
    let c = t
        .list(&a, "contact", &ListRequest { count: Count::Exact, limit: Some(1), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(c.total, Some(60));
    let c = t
        .list(&a, "contact", &ListRequest { count: Count::Capped, limit: Some(1), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((c.total, c.total_is_capped), (Some(60), false));
}
both!(cursor_pagination_has_no_gaps_or_repeats);

/// Filtered SQLite pages first walk a window of the sort index (`INDEXED BY`); the result
/// must be the same complete, ordered walk as with the planner's own plan — also when the
/// filtered field is the sort field.
async fn large_filtered_walk_uses_sort_index(t: TestApp) {
    let a = system();
    let rows: Vec<_> = (0..2600)
        .map(|i| {
            let score = if i % 11 == 0 { Json::Null } else { json!(i * 7 % 100) };
            obj(json!({"name": format!("L{i}"), "city": if i % 8 == 0 { "北京" } else { "上海" }, "score": score}))
        })
        .collect();
    t.create_many(&a, "contact", &rows).await.unwrap();
    let expected = rows.iter().filter(|r| r["city"] == json!("上海")).count();
    for (sort, count, on_score) in [
        ("score", Count::None, false),
        ("-score", Count::Capped, false),
        ("-updated_at", Count::None, false),
        ("-score", Count::Capped, true),
    ] {
        let filter = if on_score {
            json!({"and": [{"field": "city", "op": "eq", "value": "上海"}, {"or": [{"field": "score", "op": "gte", "value": 0}, {"field": "score", "op": "is_empty"}]}]})
        } else {
            json!({"field": "city", "op": "eq", "value": "上海"})
        };
        let mut seen: Vec<(Option<i64>, String)> = Vec::new();
        let mut ids = HashSet::new();
        let mut cursor = None;
        loop {
            let req = ListRequest {
                filter: Some(filter.clone()),
                sort: Some(json!(sort)),
                limit: Some(200),
                cursor,
                count,
                ..Default::default()
            };
            let page = t.list(&a, "contact", &req).await.unwrap();
            for r in &page.records {
                assert!(ids.insert(r.id), "{sort}: repeated row");
                assert_eq!(r.get("city"), &json!("上海"));
                seen.push((r.get("score").as_i64(), r.id.to_string()));
            }
            if count == Count::Capped {
                assert_eq!(page.total, Some(expected as u64));
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), expected, "{sort}: every match once");
        if sort != "-updated_at" {
            let mut sorted = seen.clone();
            // NULL smallest; ties by id in the key's direction.
            sorted.sort();
            if sort.starts_with('-') {
                sorted.reverse();
            }
            assert_eq!(seen, sorted, "{sort}: order");
        }
    }
}
both!(large_filtered_walk_uses_sort_index);

/// A later page seeks to its cursor on the sort index (a range on the first key) instead of
/// walking the index from the first row and skipping what came before — which made a streamed
/// export of a million records read half a trillion rows. SQLite's plan says so; PostgreSQL
/// pages through the same bounds (the walks above check the rows on both backends).
async fn later_pages_seek_to_their_cursor(t: TestApp) {
    use kehu_core::filter::{resolve_sort, ResolveCtx};
    use kehu_core::perm::ScopeFilter;
    use kehu_db::query::{list_query, ListSpec};
    let a = system();
    let rows: Vec<_> = (0..5).map(|i| obj(json!({"name": format!("S{i}"), "score": i}))).collect();
    t.create_many(&a, "contact", &rows).await.unwrap();
    let schema = t.schema().await.unwrap();
    let contact = schema.object("contact").unwrap();
    let can_read = |_: &kehu_core::meta::FieldDef| true;
    let ctx = ResolveCtx { me: None, can_read: &can_read };
    for (sort, range) in [
        ("-updated_at", "(updated_at<?)"),
        ("-created_at", "(created_at<?)"),
        ("name", "(f_name>?)"),
        ("score", "(f_score>?)"),
        ("-score", "(f_score<?)"),
    ] {
        let req = ListRequest { sort: Some(json!(sort)), limit: Some(2), ..Default::default() };
        let first = t.list(&a, "contact", &req).await.unwrap();
        let cursor = first.next_cursor.expect("a second page");
        let second = t.list(&a, "contact", &ListRequest { cursor: Some(cursor.clone()), ..req.clone() }).await.unwrap();
        assert_eq!(second.records.len(), 2, "{sort}");
        assert!(second.records.iter().all(|r| !first.records.iter().any(|f| f.id == r.id)), "{sort}");
        if t.db.backend() != kehu_db::Backend::Sqlite {
            continue;
        }
        let keys = resolve_sort(&json!(sort), contact, &ctx).unwrap();
        let spec = ListSpec {
            obj: contact,
            scope: &ScopeFilter::All,
            filter: None,
            sort: &keys,
            limit: 2,
            cursor: Some(&cursor),
            deleted: false,
        };
        let (q, _) = list_query(kehu_db::Backend::Sqlite, &spec).unwrap();
        let (sql, values) = q.build(sea_query::SqliteQueryBuilder);
        let plan = t.db.all(&kehu_db::Raw::new(format!("EXPLAIN QUERY PLAN {sql}"), values.0)).await.unwrap();
        let plan: Vec<String> = plan.iter().filter_map(|r| r.string(3)).collect();
        assert!(plan.iter().any(|p| p.starts_with("SEARCH") && p.contains(range)), "{sort}: {plan:?}");
    }
}
both!(later_pages_seek_to_their_cursor);
