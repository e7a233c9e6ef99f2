//! The board over HTTP, on a custom object: columns in option order (archived hidden, "not
//! set" first when it holds records) with counts and sums from the aggregation, a column
//! paging on its own, a move saved through the write core, a stale move refused with the card
//! as it is now, a read-only user's move refused, a rep's board within their scope, a saved
//! view that remembers the board, and an object without a single select offering no board.

use crate::support::*;
use axum::http::StatusCode;
use kehu_core::meta::Label;
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use serde_json::{json, Map, Value as Json};

fn obj(v: Json) -> Map<String, Json> {
    v.as_object().cloned().unwrap()
}

/// A `deal` object: stage (lead, quote, won, and an archived `old`), qty, amount.
pub async fn deals(app: &kehu_app::App) {
    let a = Actor::system();
    let o = kehu_app::metadata::NewObject {
        api_name: "deal".into(),
        label: Label::new("Deal", "商机"),
        plural: Label::new("Deals", "商机"),
        icon: None,
    };
    app.create_object(&a, o).await.unwrap();
    let stage = json!({"api_name": "stage", "type": "select", "label": {"en": "Stage", "zh-CN": "阶段"}, "filterable": true,
        "options": {"choices": [
            {"key": "lead", "label": {"en": "Lead", "zh-CN": "线索"}, "color": "gray"},
            {"key": "quote", "label": {"en": "Quote", "zh-CN": "报价"}, "color": "blue"},
            {"key": "won", "label": {"en": "Won", "zh-CN": "成交"}, "color": "green"},
            {"key": "old", "label": {"en": "Old", "zh-CN": "旧阶段"}, "color": "red", "archived": true}]}});
    let qty = json!({"api_name": "qty", "type": "integer", "label": {"en": "Qty", "zh-CN": "数量"}});
    let amount = json!({"api_name": "amount", "type": "currency", "label": {"en": "Amount", "zh-CN": "金额"}});
    for f in [stage, qty, amount] {
        app.add_field(&a, "deal", serde_json::from_value(f).unwrap()).await.unwrap();
    }
}

async fn create(t: &TestWeb, name: &str, stage: Option<&str>, qty: i64, owner: Option<Uuid>) -> Uuid {
    let input = obj(
        json!({"name": name, "stage": stage, "qty": qty, "amount": {"amount": "100.50", "currency": "CNY"}, "owner": owner}),
    );
    t.app.create(&Actor::system(), "deal", &input).await.unwrap().id
}

/// The `(count, sum)` a column header shows.
fn header(body: &str, key: &str) -> (String, String) {
    let at =
        body.find(&format!("class=\"board-col\" data-key=\"{key}\"")).unwrap_or_else(|| panic!("column {key}: {body}"));
    let rest = &body[at..];
    let count = rest.split("board-count\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let sum = rest.split("board-sum small muted\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    (count, sum)
}

async fn board_over_http(t: TestWeb) {
    let admin = t.admin().await;
    deals(&t.app).await;
    let rep = t.user("rep@kehu.test", "sales_rep").await;
    t.user("viewer@kehu.test", "read_only").await;
    let mut leads = Vec::new();
    for i in 0..27 {
        leads
            .push(create(&t, &format!("线索商机 {i:02}"), Some("lead"), 2, if i < 5 { Some(rep) } else { None }).await);
    }
    for i in 0..4 {
        create(&t, &format!("报价商机 {i}"), Some("quote"), 10, None).await;
    }
    create(&t, "无阶段商机", None, 1, None).await;

    // Columns in option order, "not set" first, the archived option hidden; counts and sums.
    let page = admin.get("/o/deal?lay=board&bs=qty").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let b = &page.body;
    let order: Vec<usize> = ["_none", "lead", "quote", "won"]
        .iter()
        .map(|k| b.find(&format!("board-col\" data-key=\"{k}\"")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "column order");
    assert!(!b.contains("data-key=\"old\""), "archived option hidden");
    assert_eq!(header(b, "lead"), ("27".into(), "54".into()));
    assert_eq!(header(b, "quote"), ("4".into(), "40".into()));
    assert_eq!(header(b, "won"), ("0".into(), String::new()));
    assert_eq!(header(b, "_none").0, "1");
    assert!(b.contains("id=\"layout-board\"") && b.contains("sortable."), "{b}");
    // The lead column shows 20 cards and pages on its own.
    let lead_col =
        &b[b.find("board-cards\" data-key=\"lead\"").unwrap()..b.find("board-col\" data-key=\"quote\"").unwrap()];
    assert_eq!(lead_col.matches("class=\"card board-card\"").count(), 20);
    let more = lead_col
        .split("hx-get=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let next = admin.get(&more).await;
    assert_eq!(next.status, StatusCode::OK, "{more}: {}", next.body);
    assert_eq!(next.body.matches("class=\"card board-card\"").count(), 7);
    assert!(!next.body.contains("board-more"));
    // Money sums per currency.
    let money = admin.get("/o/deal?lay=board&bs=amount").await.body;
    assert_eq!(header(&money, "quote").1, "CNY 402.00");

    // A move saves through the write core with the version the card was read at.
    let id = leads[20];
    let moved = admin
        .post_form(
            &format!("/o/deal/{id}/move"),
            &[("lay", "board"), ("bs", "qty"), ("value", "quote"), ("_version", "1")],
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let j = moved.json();
    assert_eq!(
        (j["ok"].as_bool(), j["outcome"].as_str(), j["column"].as_str()),
        (Some(true), Some("moved"), Some("quote"))
    );
    let totals = j["totals"].as_array().unwrap();
    let of = |k: &str| {
        totals
            .iter()
            .find(|x| x["key"] == k)
            .map(|x| (x["count"].as_i64().unwrap(), x["sum"].as_str().unwrap().to_string()))
    };
    assert_eq!(of("lead"), Some((26, "52".into())));
    assert_eq!(of("quote"), Some((5, "42".into())));
    assert!(j["card"].as_str().unwrap().contains("data-version=\"2\""));
    let r = t.app.get(&Actor::system(), "deal", id).await.unwrap();
    assert_eq!((r.get("stage"), r.version), (&json!("quote"), 2));
    let hist = t.app.field_history(&Actor::system(), "deal", id, None, None, 10).await.unwrap();
    assert_eq!(hist.changes.len(), 1, "the move is in the record's history");

    // A stale card: refused, the card comes back as it is now, nothing overwritten.
    let stale = admin.post_form(&format!("/o/deal/{id}/move"), &[("value", "won"), ("_version", "1")]).await;
    let j = stale.json();
    assert_eq!((j["outcome"].as_str(), j["status"].as_i64()), (Some("stale"), Some(409)), "{}", stale.body);
    assert_eq!((j["ok"].as_bool(), j["column"].as_str()), (Some(false), Some("quote")));
    assert!(j["message"].as_str().unwrap().contains("未覆盖"), "{}", stale.body);
    assert!(j["card"].as_str().unwrap().contains("data-version=\"2\""));
    assert_eq!(t.app.get(&Actor::system(), "deal", id).await.unwrap().get("stage"), &json!("quote"));

    // A read-only user sees the board without moving; a move is refused and changes nothing.
    let viewer = t.login("viewer@kehu.test").await;
    let vb = viewer.get("/o/deal?lay=board").await.body;
    assert!(vb.contains("id=\"board\"") && !vb.contains("data-can-move") && !vb.contains("data-move-to"), "{vb}");
    let refused = viewer.post_form(&format!("/o/deal/{}/move", leads[0]), &[("value", "won"), ("_version", "1")]).await;
    let j = refused.json();
    assert_eq!(
        (j["outcome"].as_str(), j["status"].as_i64(), j["ok"].as_bool()),
        (Some("refused"), Some(403), Some(false))
    );
    assert_eq!(j["column"], json!("lead"), "the card goes back to its column");
    assert_eq!(t.app.get(&Actor::system(), "deal", leads[0]).await.unwrap().get("stage"), &json!("lead"));
    // Bad input: a version that is no number.
    let bad = admin.post_form(&format!("/o/deal/{id}/move"), &[("value", "won"), ("_version", "x")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A rep's board counts only their records.
    let rb = t.login("rep@kehu.test").await.get("/o/deal?lay=board").await.body;
    assert_eq!(header(&rb, "lead").0, "5");
    assert_eq!(header(&rb, "quote").0, "0");

    // A saved view remembers the board, its field, sum and card fields.
    let saved = admin
        .post_form("/o/deal/views", &[("name", "商机看板"), ("state", "st=1&lay=board&bf=stage&bs=qty&bc=amount")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let view = admin.get(saved.location()).await.body;
    assert!(view.contains("id=\"board\"") && view.contains("Σ 数量"), "{view}");
    assert_eq!(header(&view, "quote").1, "42");
    let card = view.split("class=\"card board-card\"").nth(1).unwrap();
    assert!(card.contains("金额") && card.contains("100.5"), "the card shows the amount: {card}");

    // An object without a single select offers no board.
    let plain = kehu_app::metadata::NewObject {
        api_name: "note2".into(),
        label: Label::new("Memo", "备忘"),
        plural: Label::new("Memos", "备忘"),
        icon: None,
    };
    t.app.create_object(&Actor::system(), plain).await.unwrap();
    let memo = admin.get("/o/note2?lay=board").await.body;
    assert!(!memo.contains("id=\"board\"") && !memo.contains("layout-board"), "{memo}");
}
both!(board_over_http);
