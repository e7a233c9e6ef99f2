//! The board of a custom object in headless Chromium: drag a card to another column and see
//! the totals move; drag a card someone changed meanwhile and see it come back as it is now
//! (nothing overwritten); move a card from its menu (the keyboard way); a phone-width board
//! whose columns swipe. Screenshots at desktop and phone width.

use crate::board::deals;
use crate::browser::{first_admin, fresh_app, Driver};
use kehu_core::perm::Actor;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drag_stale_keyboard_and_phone() {
    let Some(d) = Driver::start().await else { return };
    let (app, base, _dir) = fresh_app().await;
    first_admin(&d, &base).await;
    deals(&app).await;
    let sys = Actor::system();
    let mut ids = Vec::new();
    for (i, stage) in ["lead", "lead", "lead", "lead", "quote", "quote"].iter().enumerate() {
        let input = json!({"name": format!("商机 {i}"), "stage": stage, "qty": 10 * (i + 1)});
        ids.push(app.create(&sys, "deal", input.as_object().unwrap()).await.unwrap().id);
    }
    let stage = |id| {
        let app = app.clone();
        async move { app.get(&Actor::system(), "deal", id).await.unwrap().get("stage").clone() }
    };
    d.size(1280, 900).await;
    d.go(&format!("{base}/o/deal?lay=board&bs=qty")).await;
    d.wait_for("id=\"board\"").await;
    // Lead: 4 cards, Σ 100; quote: 2 cards, Σ 110.
    assert!(d
        .source()
        .await
        .contains("<span class=\"badge board-count\">4</span><span class=\"board-sum small muted\">100</span>"));
    d.screenshot("board-desktop").await;

    // Drag 商机 0 from lead to quote: saved, and both headers change.
    d.drag(&format!(".board-card[data-id='{}']", ids[0]), ".board-cards[data-key='quote']").await;
    d.wait_for("<span class=\"badge board-count\">3</span><span class=\"board-sum small muted\">90</span>").await;
    d.wait_for("<span class=\"badge board-count\">3</span><span class=\"board-sum small muted\">120</span>").await;
    assert_eq!(stage(ids[0]).await, json!("quote"));

    // Someone else moves 商机 1 to won; dragging its old card to quote is refused, the card
    // goes to won as it is now, and their change stays.
    let v = app.get(&sys, "deal", ids[1]).await.unwrap().version;
    app.update(&sys, "deal", ids[1], v, json!({"stage": "won"}).as_object().unwrap()).await.unwrap();
    d.drag(&format!(".board-card[data-id='{}']", ids[1]), ".board-cards[data-key='quote']").await;
    d.wait_for("未覆盖任何数据").await;
    d.wait_for(&format!("data-id=\"{}\" data-version=\"2\"", ids[1])).await;
    let src = d.source().await;
    let won = &src[src.find("board-cards\" data-key=\"won\"").unwrap()..];
    assert!(won.contains(&ids[1].to_string()), "the card sits in its real column");
    assert_eq!(stage(ids[1]).await, json!("won"));

    // The keyboard way: the card's menu moves 商机 2 to won.
    d.click(&format!(".board-card[data-id='{}'] .card-move summary", ids[2])).await;
    d.click(&format!(".board-card[data-id='{}'] [data-move-to='won']", ids[2])).await;
    d.wait_for(&format!("data-id=\"{}\" data-version=\"2\"", ids[2])).await;
    assert_eq!(stage(ids[2]).await, json!("won"));
    d.wait_for("<span class=\"badge board-count\">2</span><span class=\"board-sum small muted\">50</span>").await;

    // A phone: columns side by side, swiped.
    d.size(390, 844).await;
    d.go(&format!("{base}/o/deal?lay=board&bs=qty")).await;
    d.wait_for("id=\"board\"").await;
    d.screenshot("board-phone").await;
    d.quit().await;
}
