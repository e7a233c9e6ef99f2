//! Users, teams (a department tree) and roles, as far as the record engine needs them: who an
//! actor is, which team subtree a manager sees. Sign-in and administration build on this.

use crate::{App, Result};
use kehu_core::perm::{Actor, Grants, Role};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::records::col;
use sea_query::{Alias, Query};
use std::collections::HashMap;
use std::sync::Arc;

impl App {
    /// Create a team, optionally under a parent team.
    pub async fn create_team(&self, name: &str, parent: Option<Uuid>) -> Result<Uuid> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::field("name", "field.required"));
        }
        let id = new_id();
        let mut tx = self.db.begin().await?;
        if let Some(p) = parent {
            let q = Query::select()
                .column(Alias::new("id"))
                .from(Alias::new("teams"))
                .and_where(col("id").eq(p))
                .to_owned();
            if tx.one(&q).await?.is_none() {
                return Err(AppError::field("parent", "field.invalid_reference"));
            }
        }
        let q = Query::insert()
            .into_table(Alias::new("teams"))
            .columns(["id", "name", "parent_id", "created_at"].map(Alias::new))
            .values_panic([id.into(), name.into(), sea_query::Value::from(parent).into(), now_micros().into()])
            .to_owned();
        tx.exec(&q).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Create a user with a role (by key) in a team (no password: they sign in after an
    /// invitation link or `kehu user create`).
    pub async fn create_user(&self, email: &str, name: &str, team: Option<Uuid>, role_key: &str) -> Result<Uuid> {
        let mut tx = self.db.begin().await?;
        let id = self.insert_user(&mut tx, email, name, team, role_key, "zh-CN", "Asia/Shanghai").await?;
        tx.commit().await?;
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_user(
        &self,
        tx: &mut kehu_db::Tx,
        email: &str,
        name: &str,
        team: Option<Uuid>,
        role_key: &str,
        locale: &str,
        time_zone: &str,
    ) -> Result<Uuid> {
        let email = email.trim().to_lowercase();
        if !kehu_core::value::is_email(&email) {
            return Err(AppError::field("email", "field.invalid_email"));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::field("name", "field.required"));
        }
        let role = self.role_by_key(role_key).await.map_err(|_| AppError::field("role", "role.not_found"))?;
        let id = new_id();
        let now = now_micros();
        let q = Query::insert()
            .into_table(Alias::new("users"))
            .columns(
                [
                    "id",
                    "email",
                    "name",
                    "team_id",
                    "role_id",
                    "is_active",
                    "locale",
                    "time_zone",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                id.into(),
                email.into(),
                name.into(),
                sea_query::Value::from(team).into(),
                role.id.into(),
                true.into(),
                locale.into(),
                time_zone.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        tx.exec(&q).await.map_err(|e| match e {
            kehu_db::DbError::Unique { .. } => AppError::field("email", "user.email_taken"),
            other => other.into(),
        })?;
        Ok(id)
    }

    pub async fn role_by_key(&self, key: &str) -> Result<Role> {
        let q = Query::select()
            .columns(["id", "key", "grants"].map(Alias::new))
            .from(Alias::new("roles"))
            .and_where(col("key").eq(key))
            .to_owned();
        let r = self.db.one(&q).await?.ok_or_else(|| AppError::not_found("role.not_found"))?;
        parse_role(&r)
    }

    /// Replace a role's grants (admins edit roles through this).
    pub async fn set_role_grants(&self, key: &str, grants: &Grants) -> Result<()> {
        let json = serde_json::to_string(grants).map_err(|e| AppError::internal(e.to_string()))?;
        let q = Query::update()
            .table(Alias::new("roles"))
            .values([(Alias::new("grants"), json.into()), (Alias::new("updated_at"), now_micros().into())])
            .and_where(col("key").eq(key))
            .to_owned();
        let mut tx = self.db.begin().await?;
        if tx.exec(&q).await? == 0 {
            return Err(AppError::not_found("role.not_found"));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The actor for a user: role grants and the user's team with all its sub-teams.
    pub async fn actor(&self, user_id: Uuid) -> Result<Actor> {
        let q = Query::select()
            .columns(["team_id", "role_id", "is_active"].map(Alias::new))
            .from(Alias::new("users"))
            .and_where(col("id").eq(user_id))
            .to_owned();
        let u = self.db.one(&q).await?.ok_or_else(|| AppError::not_found("user.not_found"))?;
        if !u.bool(2).unwrap_or(false) {
            return Err(AppError::forbidden("user.disabled"));
        }
        let role_id = u.uuid(1).ok_or_else(|| AppError::internal("user without role"))?;
        self.actor_with(user_id, u.uuid(0), role_id).await
    }

    /// The actor for a user already read (a session's or token's), without reading it again.
    pub async fn actor_of(&self, user: &crate::auth::UserInfo) -> Result<Actor> {
        if !user.is_active {
            return Err(AppError::forbidden("user.disabled"));
        }
        self.actor_with(user.id, user.team_id, user.role_id).await
    }

    async fn actor_with(&self, user_id: Uuid, team: Option<Uuid>, role_id: Uuid) -> Result<Actor> {
        let q = Query::select()
            .columns(["id", "key", "grants"].map(Alias::new))
            .from(Alias::new("roles"))
            .and_where(col("id").eq(role_id))
            .to_owned();
        let role = parse_role(&self.db.one(&q).await?.ok_or_else(|| AppError::internal("missing role"))?)?;
        let teams = match team {
            Some(t) => self.team_subtree(t).await?,
            None => Vec::new(),
        };
        Ok(Actor::user(user_id, teams, Arc::new(role)))
    }

    /// A team and all teams below it.
    pub async fn team_subtree(&self, root: Uuid) -> Result<Vec<Uuid>> {
        let q = Query::select().columns(["id", "parent_id"].map(Alias::new)).from(Alias::new("teams")).to_owned();
        let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for r in self.db.all(&q).await? {
            if let (Some(id), Some(p)) = (r.uuid(0), r.uuid(1)) {
                children.entry(p).or_default().push(id);
            }
        }
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            if let Some(kids) = children.get(&out[i]) {
                for k in kids {
                    if !out.contains(k) {
                        out.push(*k);
                    }
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// Teams of the given users (for checking a new owner against a team scope).
    pub(crate) async fn user_teams(&self, tx: &mut kehu_db::Tx, users: &[Uuid]) -> Result<HashMap<Uuid, Option<Uuid>>> {
        let mut out = HashMap::new();
        if users.is_empty() {
            return Ok(out);
        }
        let q = Query::select()
            .columns(["id", "team_id", "is_active"].map(Alias::new))
            .from(Alias::new("users"))
            .and_where(col("id").is_in(users.iter().copied()))
            .to_owned();
        for r in tx.all(&q).await? {
            if let (Some(id), true) = (r.uuid(0), r.bool(2).unwrap_or(false)) {
                out.insert(id, r.uuid(1));
            }
        }
        Ok(out)
    }
}

fn parse_role(r: &kehu_db::DbRow) -> Result<Role> {
    let grants: Grants = serde_json::from_str(r.str(2).unwrap_or(""))
        .map_err(|e| AppError::internal(format!("bad role grants: {e}")))?;
    Ok(Role { id: r.uuid(0).unwrap_or_default(), key: r.string(1).unwrap_or_default(), grants })
}

impl App {
    /// Display names of users (colleagues' names are visible to every user).
    pub async fn user_names(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, String>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        let q = Query::select()
            .columns(["id", "name"].map(Alias::new))
            .from(Alias::new("users"))
            .and_where(col("id").is_in(ids))
            .to_owned();
        Ok(self.db.all(&q).await?.iter().filter_map(|r| Some((r.uuid(0)?, r.string(1)?))).collect())
    }

    /// Active users by name, for choosing an owner or a user field.
    pub async fn user_choices(&self) -> Result<Vec<(Uuid, String)>> {
        let q = Query::select()
            .columns(["id", "name"].map(Alias::new))
            .from(Alias::new("users"))
            .and_where(col("is_active").eq(true))
            .order_by(Alias::new("name"), sea_query::Order::Asc)
            .limit(500)
            .to_owned();
        Ok(self.db.all(&q).await?.iter().filter_map(|r| Some((r.uuid(0)?, r.string(1)?))).collect())
    }
}
