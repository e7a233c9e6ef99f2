//! Administration of people: users (invite, change role or team, disable), teams (the
//! department tree) and roles (per-object permissions, record scope, field access, the right
//! to reveal contact details). Every change needs `manage_users` and is audited.

use crate::auth::UserInfo;
use crate::{App, Result};
use kehu_core::perm::{Actor, Grants};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::records::col;
use sea_query::{Alias, Expr, Query};
use serde::{Deserialize, Serialize};

/// A user row on the admin page.
#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub user: UserInfo,
    pub role_key: String,
    pub team_name: Option<String>,
}

/// A team in the department tree.
#[derive(Debug, Clone, Serialize)]
pub struct TeamRow {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub members: i64,
    /// Depth in the tree (0 for top-level teams), for indentation.
    pub depth: usize,
}

/// A role on the admin page.
#[derive(Debug, Clone, Serialize)]
pub struct RoleRow {
    pub id: Uuid,
    pub key: String,
    pub name_en: String,
    pub name_zh: String,
    pub is_system: bool,
    pub grants: Grants,
    pub users: i64,
}

/// An invitation: who, in which team, with which role and language.
#[derive(Debug, Clone)]
pub struct Invite {
    pub email: String,
    pub name: String,
    pub team: Option<Uuid>,
    pub role: String,
    pub locale: String,
}

/// The admin's changes to a user (absent = unchanged).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub team_id: Option<Option<Uuid>>,
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

/// A role someone may hand out or shape: never more than they hold themselves, so a user
/// manager cannot make anyone (themselves included) more powerful than they are.
fn within(actor: &Actor, g: &Grants) -> bool {
    if actor.is_admin() {
        return true;
    }
    let mine = &actor.role.grants;
    let flags = (!g.manage_metadata || mine.manage_metadata)
        && (!g.manage_users || mine.manage_users)
        && (!g.reveal_contact || mine.reveal_contact);
    let perm_ok = |p: &kehu_core::perm::ObjectPerm, m: &kehu_core::perm::ObjectPerm| {
        (!p.read || m.read)
            && (!p.create || m.create)
            && (!p.update || m.update)
            && (!p.delete || m.delete)
            && (!p.export || m.export)
            && p.scope <= m.scope
    };
    let objects_ok = g.objects.iter().all(|(o, p)| perm_ok(p, mine.objects.get(o).unwrap_or(&mine.default)));
    flags && perm_ok(&g.default, &mine.default) && objects_ok
}

fn need_admin(actor: &Actor) -> Result<()> {
    if actor.can_manage_users() {
        Ok(())
    } else {
        Err(AppError::forbidden("permission.denied"))
    }
}

impl App {
    /// Every user, by name.
    pub async fn users(&self, actor: &Actor) -> Result<Vec<UserRow>> {
        need_admin(actor)?;
        let q = crate::auth_user_select().order_by(Alias::new("name"), sea_query::Order::Asc).to_owned();
        let users: Vec<UserInfo> =
            self.db.rows::<crate::AuthUserRecord>(&q).await?.into_iter().map(|u| u.info).collect();
        let roles = self.roles(actor).await?;
        let teams = self.teams().await?;
        Ok(users
            .into_iter()
            .map(|u| UserRow {
                role_key: roles.iter().find(|r| r.id == u.role_id).map(|r| r.key.clone()).unwrap_or_default(),
                team_name: teams.iter().find(|t| Some(t.id) == u.team_id).map(|t| t.name.clone()),
                user: u,
            })
            .collect())
    }

    /// Invite a user: the account is created without a password and a link to set one is
    /// returned (and e-mailed).
    pub async fn invite_user(&self, actor: &Actor, inv: &Invite, base_url: &str) -> Result<(Uuid, String)> {
        need_admin(actor)?;
        let role = self.role_by_key(&inv.role).await.map_err(|_| AppError::field("role", "role.not_found"))?;
        if !within(actor, &role.grants) {
            return Err(AppError::field("role", "permission.role_too_strong"));
        }
        crate::auth::check_locale(&inv.locale)?;
        if let Some(t) = inv.team {
            self.teams()
                .await?
                .iter()
                .find(|x| x.id == t)
                .ok_or_else(|| AppError::field("team_id", "team.not_found"))?;
        }
        let mut tx = self.db.begin().await?;
        let id =
            self.insert_user(&mut tx, &inv.email, &inv.name, inv.team, &inv.role, &inv.locale, "Asia/Shanghai").await?;
        crate::auth::audit_user(&mut tx, actor.user_id, id, "user.invited", serde_json::json!({"role": inv.role}))
            .await?;
        tx.commit().await?;
        let link = self.password_link(actor, id, base_url).await?;
        Ok((id, link))
    }

    /// Change a user's name, team, role or active flag. Disabling ends all their sessions
    /// (and their API tokens stop working). The last active administrator cannot be disabled
    /// or demoted, and nobody disables themselves.
    pub async fn update_user(&self, actor: &Actor, id: Uuid, patch: &UserPatch) -> Result<()> {
        need_admin(actor)?;
        let before = self.user_info(id).await?.ok_or_else(|| AppError::not_found("user.not_found"))?;
        let admin = self.role_by_key("admin").await?;
        if !actor.is_admin() && before.role_id == admin.id {
            return Err(AppError::forbidden("permission.admin_only"));
        }
        let mut values: Vec<(Alias, sea_query::SimpleExpr)> = Vec::new();
        if let Some(n) = &patch.name {
            let n = n.trim();
            if n.is_empty() || n.chars().count() > 100 {
                return Err(AppError::field("name", "field.required"));
            }
            values.push((Alias::new("name"), n.into()));
        }
        if let Some(team) = patch.team_id {
            if let Some(t) = team {
                self.teams()
                    .await?
                    .iter()
                    .find(|x| x.id == t)
                    .ok_or_else(|| AppError::field("team_id", "team.not_found"))?;
            }
            values.push((Alias::new("team_id"), sea_query::Value::from(team).into()));
        }
        let mut new_role = before.role_id;
        if let Some(r) = &patch.role {
            let role = self.role_by_key(r).await.map_err(|_| AppError::field("role", "role.not_found"))?;
            if !within(actor, &role.grants) {
                return Err(AppError::field("role", "permission.role_too_strong"));
            }
            new_role = role.id;
            values.push((Alias::new("role_id"), new_role.into()));
        }
        let active = patch.is_active.unwrap_or(before.is_active);
        if patch.is_active.is_some() {
            if !active && actor.user_id == Some(id) {
                return Err(AppError::invalid("user.cannot_disable_self"));
            }
            values.push((Alias::new("is_active"), active.into()));
        }
        if values.is_empty() {
            return Ok(());
        }
        values.push((Alias::new("updated_at"), now_micros().into()));
        let mut tx = self.db.begin().await?;
        let q = Query::update().table(Alias::new("users")).values(values).and_where(col("id").eq(id)).to_owned();
        tx.exec(&q).await?;
        if before.role_id == admin.id && before.is_active && (new_role != admin.id || !active) {
            let q = Query::select()
                .expr(Expr::col(Alias::new("id")).count())
                .from(Alias::new("users"))
                .and_where(col("role_id").eq(admin.id))
                .and_where(col("is_active").eq(true))
                .to_owned();
            if tx.one(&q).await?.and_then(|r| r.i64(0)).unwrap_or(0) == 0 {
                return Err(AppError::invalid("user.last_admin"));
            }
        }
        if !active {
            let del = Query::delete().from_table(Alias::new("sessions")).and_where(col("user_id").eq(id)).to_owned();
            tx.exec(&del).await?;
        }
        let details = serde_json::json!({
            "name": patch.name, "team_id": patch.team_id, "role": patch.role, "is_active": patch.is_active
        });
        crate::auth::audit_user(&mut tx, actor.user_id, id, "user.updated", details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One's own profile: display name, language, time zone.
    pub async fn update_profile(&self, user: Uuid, name: &str, locale: &str, time_zone: &str) -> Result<()> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::field("name", "field.required"));
        }
        crate::auth::check_locale(locale)?;
        crate::auth::check_time_zone(time_zone)?;
        let q = Query::update()
            .table(Alias::new("users"))
            .values([
                (Alias::new("name"), name.into()),
                (Alias::new("locale"), locale.into()),
                (Alias::new("time_zone"), time_zone.into()),
                (Alias::new("updated_at"), now_micros().into()),
            ])
            .and_where(col("id").eq(user))
            .to_owned();
        self.db.write(&q).await?;
        Ok(())
    }

    /// Only the language (the switch in the user menu).
    pub async fn set_locale(&self, user: Uuid, locale: &str) -> Result<()> {
        crate::auth::check_locale(locale)?;
        let q = Query::update()
            .table(Alias::new("users"))
            .value(Alias::new("locale"), locale)
            .and_where(col("id").eq(user))
            .to_owned();
        self.db.write(&q).await?;
        Ok(())
    }

    /// The department tree, depth-first, with member counts.
    pub async fn teams(&self) -> Result<Vec<TeamRow>> {
        let q = Query::select()
            .columns(["id", "name", "parent_id"].map(Alias::new))
            .from(Alias::new("teams"))
            .order_by(Alias::new("name"), sea_query::Order::Asc)
            .to_owned();
        let rows = self.db.all(&q).await?;
        let q = Query::select()
            .column(Alias::new("team_id"))
            .expr(Expr::col(Alias::new("id")).count())
            .from(Alias::new("users"))
            .and_where(col("is_active").eq(true))
            .group_by_col(Alias::new("team_id"))
            .to_owned();
        let counts: Vec<(Option<Uuid>, i64)> =
            self.db.all(&q).await?.iter().map(|r| (r.uuid(0), r.i64(1).unwrap_or(0))).collect();
        let flat: Vec<(Uuid, String, Option<Uuid>)> =
            rows.iter().filter_map(|r| Some((r.uuid(0)?, r.string(1)?, r.uuid(2)))).collect();
        let mut out = Vec::with_capacity(flat.len());
        fn walk(
            flat: &[(Uuid, String, Option<Uuid>)],
            counts: &[(Option<Uuid>, i64)],
            parent: Option<Uuid>,
            depth: usize,
            out: &mut Vec<TeamRow>,
        ) {
            for (id, name, p) in flat.iter().filter(|t| t.2 == parent) {
                if out.iter().any(|t: &TeamRow| t.id == *id) || depth > 32 {
                    continue;
                }
                let members = counts.iter().find(|c| c.0 == Some(*id)).map(|c| c.1).unwrap_or(0);
                out.push(TeamRow { id: *id, name: name.clone(), parent_id: *p, members, depth });
                walk(flat, counts, Some(*id), depth + 1, out);
            }
        }
        walk(&flat, &counts, None, 0, &mut out);
        Ok(out)
    }

    /// Create a team (admins).
    pub async fn add_team(&self, actor: &Actor, name: &str, parent: Option<Uuid>) -> Result<Uuid> {
        need_admin(actor)?;
        self.create_team(name, parent).await
    }

    /// Rename a team and/or move it under another parent (never under itself or a descendant).
    pub async fn update_team(&self, actor: &Actor, id: Uuid, name: &str, parent: Option<Uuid>) -> Result<()> {
        need_admin(actor)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::field("name", "field.required"));
        }
        let teams = self.teams().await?;
        teams.iter().find(|t| t.id == id).ok_or_else(|| AppError::not_found("team.not_found"))?;
        if let Some(p) = parent {
            teams.iter().find(|t| t.id == p).ok_or_else(|| AppError::field("parent_id", "team.not_found"))?;
            if self.team_subtree(id).await?.contains(&p) {
                return Err(AppError::field("parent_id", "team.cycle"));
            }
        }
        let q = Query::update()
            .table(Alias::new("teams"))
            .values([
                (Alias::new("name"), name.into()),
                (Alias::new("parent_id"), sea_query::Value::from(parent).into()),
            ])
            .and_where(col("id").eq(id))
            .to_owned();
        let mut tx = self.db.begin().await?;
        tx.exec(&q).await?;
        crate::auth::audit_user(
            &mut tx,
            actor.user_id,
            id,
            "team.updated",
            serde_json::json!({"name": name, "parent_id": parent}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Delete an empty team (no members, no sub-teams).
    pub async fn delete_team(&self, actor: &Actor, id: Uuid) -> Result<()> {
        need_admin(actor)?;
        let teams = self.teams().await?;
        let t = teams.iter().find(|t| t.id == id).ok_or_else(|| AppError::not_found("team.not_found"))?;
        let q = Query::select()
            .expr(Expr::col(Alias::new("id")).count())
            .from(Alias::new("users"))
            .and_where(col("team_id").eq(id))
            .to_owned();
        let anyone = self.db.one(&q).await?.and_then(|r| r.i64(0)).unwrap_or(0) > 0;
        if t.members > 0 || anyone || teams.iter().any(|x| x.parent_id == Some(id)) {
            return Err(AppError::conflict("team.not_empty"));
        }
        let mut tx = self.db.begin().await?;
        tx.exec(&Query::delete().from_table(Alias::new("teams")).and_where(col("id").eq(id)).to_owned()).await?;
        crate::auth::audit_user(&mut tx, actor.user_id, id, "team.deleted", serde_json::json!({"name": t.name}))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every role with the number of users holding it.
    pub async fn roles(&self, actor: &Actor) -> Result<Vec<RoleRow>> {
        need_admin(actor)?;
        let q = Query::select()
            .columns(["id", "key", "name_en", "name_zh", "is_system", "grants"].map(Alias::new))
            .from(Alias::new("roles"))
            .order_by(Alias::new("created_at"), sea_query::Order::Asc)
            .order_by(Alias::new("key"), sea_query::Order::Asc)
            .to_owned();
        let q2 = Query::select()
            .column(Alias::new("role_id"))
            .expr(Expr::col(Alias::new("id")).count())
            .from(Alias::new("users"))
            .group_by_col(Alias::new("role_id"))
            .to_owned();
        let counts: Vec<(Option<Uuid>, i64)> =
            self.db.all(&q2).await?.iter().map(|r| (r.uuid(0), r.i64(1).unwrap_or(0))).collect();
        let mut out = Vec::new();
        for r in self.db.all(&q).await? {
            let id = r.uuid(0).unwrap_or_default();
            out.push(RoleRow {
                id,
                key: r.string(1).unwrap_or_default(),
                name_en: r.string(2).unwrap_or_default(),
                name_zh: r.string(3).unwrap_or_default(),
                is_system: r.bool(4).unwrap_or(false),
                grants: serde_json::from_str(r.str(5).unwrap_or("")).map_err(|e| AppError::internal(e.to_string()))?,
                users: counts.iter().find(|c| c.0 == Some(id)).map(|c| c.1).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// A new role, starting from a copy of another role's grants.
    pub async fn create_role(&self, actor: &Actor, name_en: &str, name_zh: &str, copy_from: &str) -> Result<String> {
        need_admin(actor)?;
        let (en, zh) = (name_en.trim(), name_zh.trim());
        if en.is_empty() && zh.is_empty() {
            return Err(AppError::field("name_zh", "field.required"));
        }
        if en.chars().count() > 100 || zh.chars().count() > 100 {
            return Err(AppError::field("name_zh", "field.too_long"));
        }
        let base = self.role_by_key(copy_from).await.map_err(|_| AppError::field("copy_from", "role.not_found"))?;
        if !within(actor, &base.grants) {
            return Err(AppError::field("copy_from", "permission.role_too_strong"));
        }
        let key = format!("role_{}", &new_id().simple().to_string()[20..]);
        let now = now_micros();
        let q = Query::insert()
            .into_table(Alias::new("roles"))
            .columns(
                ["id", "key", "name_en", "name_zh", "is_system", "grants", "created_at", "updated_at"].map(Alias::new),
            )
            .values_panic([
                new_id().into(),
                key.clone().into(),
                (if en.is_empty() { zh } else { en }).into(),
                (if zh.is_empty() { en } else { zh }).into(),
                false.into(),
                serde_json::to_string(&base.grants).map_err(|e| AppError::internal(e.to_string()))?.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        let mut tx = self.db.begin().await?;
        tx.exec(&q).await?;
        crate::auth::audit_user(&mut tx, actor.user_id, base.id, "role.created", serde_json::json!({"key": key}))
            .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Replace a role's grants (the administrator role stays all-powerful and is not editable).
    pub async fn update_role(&self, actor: &Actor, key: &str, grants: &Grants) -> Result<()> {
        need_admin(actor)?;
        if key == "admin" {
            return Err(AppError::forbidden("role.admin_fixed"));
        }
        let before = self.role_by_key(key).await?;
        if !within(actor, grants) || !within(actor, &before.grants) {
            return Err(AppError::forbidden("permission.role_too_strong"));
        }
        let schema = self.schema().await?;
        for name in grants.objects.keys() {
            schema.object(name).map_err(|_| AppError::field(name.clone(), "field.unknown"))?;
        }
        for k in grants.fields.keys() {
            let ok = k.split_once('.').is_some_and(|(o, f)| schema.object(o).ok().and_then(|o| o.field(f)).is_some());
            if !ok {
                return Err(AppError::field(k.clone(), "field.unknown"));
            }
        }
        self.set_role_grants(key, grants).await?;
        let mut tx = self.db.begin().await?;
        crate::auth::audit_user(
            &mut tx,
            actor.user_id,
            before.id,
            "role.updated",
            serde_json::json!({"key": key, "before": before.grants, "after": grants}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
