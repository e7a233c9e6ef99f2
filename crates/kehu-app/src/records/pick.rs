//! What a relation or user picker offers: records of the target object the actor may read
//! (the best search matches, or the most recently changed when nothing is typed yet) and
//! active users by name or e-mail — always within the actor's scope, a page at a time, so a
//! picker works the same with 20 records or 2,000,000.

use super::{ListRequest, RecordView};
use crate::{App, Result};
use kehu_core::perm::Actor;
use kehu_core::{AppError, ErrorKind, Uuid};
use kehu_db::query::{ilike, like_escape};
use kehu_db::records::col;
use sea_query::{Alias, Cond, Order, Query};

/// Most choices a picker shows at once (typing narrows them).
pub const PICK_LIMIT: u32 = 20;

/// One choice of a picker.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pick {
    pub id: Uuid,
    pub title: String,
    /// A line under the title: other searchable values (masked), or a user's e-mail.
    pub detail: String,
}

impl App {
    /// Records of `object` the actor may read for a picker: the best matches of `q`, or the
    /// most recently updated when `q` is blank.
    pub async fn pick(&self, actor: &Actor, object: &str, q: &str) -> Result<Vec<Pick>> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        let q = q.trim();
        if q.chars().count() > 200 {
            return Err(AppError::field("q", "field.too_long"));
        }
        if q.is_empty() {
            let req = ListRequest {
                limit: Some(u64::from(PICK_LIMIT)),
                sort: Some(serde_json::json!("-updated_at")),
                ..Default::default()
            };
            let page = self.list(actor, object, &req).await?;
            return Ok(page
                .records
                .iter()
                .map(|r| Pick { id: r.id, title: title(&obj, r), detail: String::new() })
                .collect());
        }
        let hits = self.search(actor, q, Some(&[object]), PICK_LIMIT).await?;
        Ok(hits
            .into_iter()
            .map(|h| Pick { id: h.id, title: h.title.unwrap_or_else(|| "—".into()), detail: h.detail.join(" · ") })
            .collect())
    }

    /// The title of the record a picker holds, as the actor sees it; `None` when the actor may
    /// not read it (or it is gone) — the picker then keeps the value and says so.
    pub async fn pick_label(&self, actor: &Actor, object: &str, id: Uuid) -> Result<Option<String>> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?.clone();
        match self.get(actor, object, id).await {
            Ok(r) => Ok(Some(title(&obj, &r))),
            Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Forbidden) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Active users whose name or e-mail contains `q` (all of them, by name, when blank).
    pub async fn pick_users(&self, q: &str) -> Result<Vec<Pick>> {
        let q = q.trim();
        if q.chars().count() > 200 {
            return Err(AppError::field("q", "field.too_long"));
        }
        let mut sel = Query::select();
        sel.columns(["id", "name", "email"].map(Alias::new))
            .from(Alias::new("users"))
            .and_where(col("is_active").eq(true))
            .order_by(Alias::new("name"), Order::Asc)
            .order_by(Alias::new("id"), Order::Asc)
            .limit(u64::from(PICK_LIMIT));
        if !q.is_empty() {
            let b = self.db.backend();
            let p = format!("%{}%", like_escape(q));
            sel.cond_where(Cond::any().add(ilike(b, "name", p.clone())).add(ilike(b, "email", p)));
        }
        let rows = self.db.all(&sel).await?;
        Ok(rows
            .iter()
            .filter_map(|r| Some(Pick { id: r.uuid(0)?, title: r.string(1)?, detail: r.string(2).unwrap_or_default() }))
            .collect())
    }
}

fn title(obj: &kehu_core::meta::ObjectDef, r: &RecordView) -> String {
    Some(r.title(obj)).filter(|t| !t.is_empty()).unwrap_or("—").to_string()
}
