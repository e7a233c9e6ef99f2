//! Saved list views: columns, filter and sort of an object's list, kept for one user
//! (personal) or shared with a team (its members see it). Only the owner, or someone who
//! manages metadata or users, may change or delete a shared view; personal views belong to
//! their owner alone. A view never widens what its reader sees: its filter runs under the
//! reader's own scope.

use crate::{App, Result};
use kehu_core::filter::{self, ResolveCtx};
use kehu_core::meta::FieldType;
use kehu_core::perm::{Action, Actor};
use kehu_core::{new_id, now_micros, AppError, FieldError, Uuid};
use kehu_db::records::col;
use kehu_db::Raw;
use sea_query::{Alias, Cond, Expr, Order, Query};
use serde::Serialize;
use serde_json::Value as Json;

/// Longest view name.
const MAX_NAME: usize = 80;
/// Most views one user may own per object.
const MAX_VIEWS: i64 = 100;

/// A saved view as its reader sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SavedView {
    pub id: Uuid,
    pub object: String,
    pub owner_id: Uuid,
    /// Shared with this team (None: personal).
    pub team_id: Option<Uuid>,
    pub name: String,
    pub columns: Vec<String>,
    pub filter: Option<Json>,
    /// `"-updated_at,name"` form.
    pub sort: String,
    /// List or board, with the board's settings.
    pub layout: Option<Layout>,
    /// The reader may change or delete it.
    pub editable: bool,
}

/// What a view stores.
#[derive(Debug, Clone, Default)]
pub struct ViewInput {
    pub name: String,
    pub team_id: Option<Uuid>,
    pub columns: Vec<String>,
    pub filter: Option<Json>,
    pub sort: String,
    pub layout: Option<Layout>,
}

/// A board instead of a list: columns by a single select, each with its count and the sum of
/// a number or money field, cards showing up to three fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// `board` (a list has no layout).
    pub kind: String,
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<String>,
}

const COLS: [&str; 10] =
    ["id", "object", "owner_id", "team_id", "name", "columns", "filter", "sort", "updated_at", "layout"];

fn layout_json(v: &ViewInput) -> Option<String> {
    v.layout.as_ref().map(|l| serde_json::to_string(l).unwrap_or_default())
}

fn can_manage(actor: &Actor) -> bool {
    actor.can_manage_metadata() || actor.can_manage_users()
}

fn may_edit(actor: &Actor, owner: Uuid, team: Option<Uuid>) -> bool {
    actor.user_id == Some(owner) || (team.is_some() && can_manage(actor))
}

/// The actor's own team (the first of its team and sub-teams).
fn own_team(actor: &Actor) -> Option<Uuid> {
    actor.teams.first().copied()
}

fn from_row(actor: &Actor, r: &kehu_db::DbRow) -> Option<SavedView> {
    let owner = r.uuid(2)?;
    let team = r.uuid(3);
    Some(SavedView {
        id: r.uuid(0)?,
        object: r.string(1)?,
        owner_id: owner,
        team_id: team,
        name: r.string(4)?,
        columns: serde_json::from_str(r.str(5)?).ok()?,
        filter: serde_json::from_str::<Json>(r.str(6)?).ok().filter(|j| !j.is_null()),
        sort: r.string(7)?,
        layout: r.str(9).and_then(|s| serde_json::from_str(s).ok()),
        editable: may_edit(actor, owner, team),
    })
}

impl App {
    /// Check a view's content against the object's metadata as the actor sees it: columns
    /// exist and are readable, the filter and sort resolve.
    async fn check_view(&self, actor: &Actor, object: &str, v: &ViewInput) -> Result<()> {
        let schema = self.schema().await?;
        let obj = schema.object(object)?;
        actor.check(obj, Action::Read)?;
        let name = v.name.trim();
        if name.is_empty() {
            return Err(AppError::field("name", "view.name_required"));
        }
        if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(AppError::field("name", "view.name_invalid"));
        }
        if v.columns.len() > 50 {
            return Err(AppError::fields(vec![FieldError::new("columns", "view.invalid_columns")]));
        }
        for c in &v.columns {
            match obj.field(c) {
                Some(f) if actor.can_read_field(obj, f) => {}
                _ => return Err(AppError::field("columns", "view.invalid_columns")),
            }
        }
        let can_read = |f: &kehu_core::meta::FieldDef| actor.can_read_field(obj, f);
        let ctx = ResolveCtx { me: actor.user_id, can_read: &can_read };
        if let Some(f) = &v.filter {
            filter::resolve(f, obj, &ctx)?;
        }
        filter::resolve_sort(&Json::String(v.sort.clone()), obj, &ctx)?;
        if let Some(l) = &v.layout {
            let readable = |name: &str, ok: fn(FieldType) -> bool| {
                obj.field(name).is_some_and(|f| ok(f.ftype) && actor.can_read_field(obj, f))
            };
            let numeric = |t: FieldType| {
                matches!(t, FieldType::Integer | FieldType::Decimal | FieldType::Percent | FieldType::Currency)
            };
            if l.kind != "board"
                || !readable(&l.field, |t| t == FieldType::Select)
                || l.sum.as_deref().is_some_and(|s| !readable(s, numeric))
                || l.cards.len() > 3
                || l.cards.iter().any(|c| !readable(c, |_| true))
            {
                return Err(AppError::field("layout", "view.invalid_layout"));
            }
        }
        if let Some(t) = v.team_id {
            if own_team(actor) != Some(t) && !can_manage(actor) {
                return Err(AppError::forbidden("view.team_denied"));
            }
        }
        Ok(())
    }

    /// Views of an object the actor may use: their own, and those shared with their team
    /// (people who manage metadata or users see every shared view).
    pub async fn views(&self, actor: &Actor, object: &str) -> Result<Vec<SavedView>> {
        let schema = self.schema().await?;
        actor.check(schema.object(object)?, Action::Read)?;
        let Some(me) = actor.user_id else { return Ok(Vec::new()) };
        let mut who = Cond::any().add(col("owner_id").eq(me));
        if can_manage(actor) {
            who = who.add(col("team_id").is_not_null());
        } else if let Some(t) = own_team(actor) {
            who = who.add(col("team_id").eq(t));
        }
        let q = Query::select()
            .columns(COLS.map(Alias::new))
            .from(Alias::new("saved_views"))
            .and_where(col("object").eq(object))
            .cond_where(who)
            .order_by(Alias::new("name"), Order::Asc)
            .to_owned();
        Ok(self.db.all(&q).await?.iter().filter_map(|r| from_row(actor, r)).collect())
    }

    /// One view the actor may use.
    pub async fn view_by_id(&self, actor: &Actor, object: &str, id: Uuid) -> Result<SavedView> {
        self.views(actor, object)
            .await?
            .into_iter()
            .find(|v| v.id == id)
            .ok_or_else(|| AppError::not_found("view.not_found"))
    }

    /// Save a new view.
    pub async fn create_view(&self, actor: &Actor, object: &str, v: &ViewInput) -> Result<SavedView> {
        self.check_view(actor, object, v).await?;
        let me = actor.user_id.ok_or_else(|| AppError::forbidden("permission.denied"))?;
        let n = self
            .db
            .one(&Raw::new(
                "SELECT COUNT(*) FROM saved_views WHERE object = $1 AND owner_id = $2",
                vec![object.into(), me.into()],
            ))
            .await?
            .and_then(|r| r.i64(0))
            .unwrap_or(0);
        if n >= MAX_VIEWS {
            return Err(AppError::invalid("view.too_many"));
        }
        let id = new_id();
        let now = now_micros();
        let q = Query::insert()
            .into_table(Alias::new("saved_views"))
            .columns(
                [
                    "id",
                    "object",
                    "owner_id",
                    "team_id",
                    "name",
                    "columns",
                    "filter",
                    "sort",
                    "layout",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                id.into(),
                object.into(),
                me.into(),
                sea_query::Value::from(v.team_id).into(),
                v.name.trim().into(),
                serde_json::to_string(&v.columns).unwrap_or_default().into(),
                v.filter.as_ref().unwrap_or(&Json::Null).to_string().into(),
                v.sort.clone().into(),
                layout_json(v).into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        self.db.write(&q).await?;
        self.view_by_id(actor, object, id).await
    }

    /// Replace a view's content (owner, or a metadata/user manager for shared views).
    pub async fn update_view(&self, actor: &Actor, object: &str, id: Uuid, v: &ViewInput) -> Result<SavedView> {
        let cur = self.view_by_id(actor, object, id).await?;
        if !cur.editable {
            return Err(AppError::forbidden("view.not_editable"));
        }
        self.check_view(actor, object, v).await?;
        let q = Query::update()
            .table(Alias::new("saved_views"))
            .values([
                (Alias::new("team_id"), sea_query::Value::from(v.team_id).into()),
                (Alias::new("name"), v.name.trim().into()),
                (Alias::new("columns"), serde_json::to_string(&v.columns).unwrap_or_default().into()),
                (Alias::new("filter"), v.filter.as_ref().unwrap_or(&Json::Null).to_string().into()),
                (Alias::new("sort"), v.sort.clone().into()),
                (Alias::new("layout"), layout_json(v).into()),
                (Alias::new("updated_at"), Expr::val(now_micros()).into()),
            ])
            .and_where(col("id").eq(id))
            .to_owned();
        self.db.write(&q).await?;
        self.view_by_id(actor, object, id).await
    }

    /// Delete a view (owner, or a metadata/user manager for shared views).
    pub async fn delete_view(&self, actor: &Actor, object: &str, id: Uuid) -> Result<()> {
        let cur = self.view_by_id(actor, object, id).await?;
        if !cur.editable {
            return Err(AppError::forbidden("view.not_editable"));
        }
        self.db
            .write(&Query::delete().from_table(Alias::new("saved_views")).and_where(col("id").eq(id)).to_owned())
            .await?;
        Ok(())
    }
}
