//! API tokens (bearer tokens for the REST API: created per user, shown once, stored hashed,
//! optional expiry and scopes), invitations, and the outgoing-mail queue as admins see it.

use super::{audit, hash_token, random_token, INVITE_LIFETIME};
use crate::{App, Result};
use kehu_core::perm::Actor;
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::records::col;
use sea_query::{Alias, Expr, Query};
use serde::{Deserialize, Serialize};

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Read records and metadata.
    #[serde(rename = "read")]
    Read,
    /// Create, change, delete and restore records.
    #[serde(rename = "write")]
    Write,
    /// Change metadata (objects and fields), when the user's role allows it.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];
    pub fn key(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.key() == s)
    }
}

/// A token as its owner sees it in the list (never the token itself).
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenInfo {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

/// A request authenticated by an API token.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    pub user: super::UserInfo,
    pub actor: Actor,
    pub scopes: Vec<Scope>,
}

/// One queued or sent e-mail (the body is dropped once sent).
#[derive(Debug, Clone, Serialize)]
pub struct MailRow {
    pub id: Uuid,
    pub to: String,
    pub subject: String,
    pub kind: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl kehu_db::FromRow for MailRow {
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(MailRow {
            id: r.req_uuid("id")?,
            to: r.req_string("to_addr")?,
            subject: r.req_string("subject")?,
            kind: r.req_string("kind")?,
            created_at: r.req_i64("created_at")?,
            sent_at: r.i64("sent_at"),
            attempts: r.req_i64("attempts")?,
            last_error: r.string("last_error"),
        })
    }
}

/// The visible start of a token, to tell tokens apart in the list.
const PREFIX_LEN: usize = 12;

impl App {
    /// Create an API token for a user; returns the token (shown once) and its row.
    pub async fn create_api_token(
        &self,
        user: Uuid,
        name: &str,
        scopes: &[Scope],
        expires_in_days: Option<u32>,
    ) -> Result<(String, ApiTokenInfo)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::field("name", "field.required"));
        }
        if scopes.is_empty() {
            return Err(AppError::field("scopes", "token.scope_required"));
        }
        if expires_in_days.is_some_and(|d| d == 0 || d > 3650) {
            return Err(AppError::field("expires_in_days", "field.out_of_range"));
        }
        self.user_info(user).await?.filter(|u| u.is_active).ok_or_else(|| AppError::not_found("user.not_found"))?;
        let token = format!("kehu_{}", random_token());
        let now = now_micros();
        let info = ApiTokenInfo {
            id: new_id(),
            name: name.to_string(),
            prefix: token[..PREFIX_LEN].to_string(),
            scopes: scopes.to_vec(),
            expires_at: expires_in_days.map(|d| now + d as i64 * 86_400_000_000),
            last_used_at: None,
            created_at: now,
        };
        let q = Query::insert()
            .into_table(Alias::new("api_tokens"))
            .columns(
                ["id", "user_id", "name", "token_hash", "prefix", "scopes", "expires_at", "created_at"].map(Alias::new),
            )
            .values_panic([
                info.id.into(),
                user.into(),
                info.name.clone().into(),
                hash_token(&token).into(),
                info.prefix.clone().into(),
                serde_json::to_string(&info.scopes).unwrap_or_default().into(),
                info.expires_at.into(),
                now.into(),
            ])
            .to_owned();
        let mut tx = self.db.begin().await?;
        tx.exec(&q).await?;
        audit(
            &mut tx,
            Some(user),
            user,
            "token.created",
            serde_json::json!({"name": info.name, "prefix": info.prefix}),
        )
        .await?;
        tx.commit().await?;
        Ok((token, info))
    }

    /// The user's tokens that are not revoked.
    pub async fn api_tokens(&self, user: Uuid) -> Result<Vec<ApiTokenInfo>> {
        let q = Query::select()
            .columns(["id", "name", "prefix", "scopes", "expires_at", "last_used_at", "created_at"].map(Alias::new))
            .from(Alias::new("api_tokens"))
            .and_where(col("user_id").eq(user))
            .and_where(Expr::col(Alias::new("revoked_at")).is_null())
            .order_by(Alias::new("created_at"), sea_query::Order::Desc)
            .to_owned();
        Ok(self
            .db
            .all(&q)
            .await?
            .iter()
            .map(|r| ApiTokenInfo {
                id: r.uuid(0).unwrap_or_default(),
                name: r.string(1).unwrap_or_default(),
                prefix: r.string(2).unwrap_or_default(),
                scopes: serde_json::from_str(r.str(3).unwrap_or("[]")).unwrap_or_default(),
                expires_at: r.i64(4),
                last_used_at: r.i64(5),
                created_at: r.i64(6).unwrap_or(0),
            })
            .collect())
    }

    /// Revoke one of the user's tokens.
    pub async fn revoke_api_token(&self, user: Uuid, id: Uuid) -> Result<()> {
        let q = Query::update()
            .table(Alias::new("api_tokens"))
            .value(Alias::new("revoked_at"), now_micros())
            .and_where(col("id").eq(id))
            .and_where(col("user_id").eq(user))
            .and_where(Expr::col(Alias::new("revoked_at")).is_null())
            .to_owned();
        let mut tx = self.db.begin().await?;
        if tx.exec(&q).await? == 0 {
            return Err(AppError::not_found("token.not_found"));
        }
        audit(&mut tx, Some(user), user, "token.revoked", serde_json::json!({"id": id})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Authenticate a bearer token: live, not expired, its user active.
    pub async fn token_auth(&self, token: &str) -> Result<Option<TokenAuth>> {
        if !token.starts_with("kehu_") || token.len() > 200 {
            return Ok(None);
        }
        let q = Query::select()
            .columns(["id", "user_id", "scopes", "expires_at", "last_used_at", "revoked_at"].map(Alias::new))
            .from(Alias::new("api_tokens"))
            .and_where(col("token_hash").eq(hash_token(token)))
            .to_owned();
        let Some(r) = self.db.one(&q).await? else { return Ok(None) };
        let now = now_micros();
        if r.i64(5).is_some() || r.i64(3).is_some_and(|e| e < now) {
            return Ok(None);
        }
        let (Some(id), Some(user_id)) = (r.uuid(0), r.uuid(1)) else { return Ok(None) };
        let Some(user) = self.user_info(user_id).await?.filter(|u| u.is_active) else { return Ok(None) };
        let actor = self.actor_of(&user).await?;
        if r.i64(4).is_none_or(|t| now - t > 60_000_000) {
            let q = Query::update()
                .table(Alias::new("api_tokens"))
                .value(Alias::new("last_used_at"), now)
                .and_where(col("id").eq(id))
                .to_owned();
            self.db.write(&q).await?;
        }
        let scopes = serde_json::from_str(r.str(2).unwrap_or("[]")).unwrap_or_default();
        Ok(Some(TokenAuth { user, actor, scopes }))
    }

    /// A new single-use link for a user to set a password (invitation or admin reset), valid
    /// seven days; also queued as an e-mail.
    pub async fn password_link(&self, actor: &Actor, user: Uuid, base_url: &str) -> Result<String> {
        if !actor.can_manage_users() {
            return Err(AppError::forbidden("permission.denied"));
        }
        let info = self.user_info(user).await?.ok_or_else(|| AppError::not_found("user.not_found"))?;
        // Only an administrator may hand out a way into an administrator's account.
        let target_admin = self.role_by_key("admin").await?.id == info.role_id;
        if target_admin && !actor.is_admin() {
            return Err(AppError::forbidden("permission.admin_only"));
        }
        let mut tx = self.db.begin().await?;
        let token = super::login::new_auth_token(&mut tx, user, "invite", INVITE_LIFETIME).await?;
        let link = format!("{}/password/reset/{token}", base_url.trim_end_matches('/'));
        let org = self.setting("org_name").await?.unwrap_or_default();
        if self.mail_enabled() {
            let (subject, body) = crate::mail::invite_mail(&info.locale, &info.name, &org, &link);
            crate::mail::queue(&mut tx, &info.email, &subject, &body, "invite").await?;
        }
        audit(&mut tx, actor.user_id, user, "user.password_link", serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(link)
    }

    /// The newest outgoing mails (admins).
    pub async fn mails(&self, actor: &Actor, limit: u64) -> Result<Vec<MailRow>> {
        if !actor.can_manage_users() {
            return Err(AppError::forbidden("permission.denied"));
        }
        let q = Query::select()
            .columns(
                ["id", "to_addr", "subject", "kind", "created_at", "sent_at", "attempts", "last_error"].map(Alias::new),
            )
            .from(Alias::new("mails"))
            .order_by(Alias::new("created_at"), sea_query::Order::Desc)
            .limit(limit)
            .to_owned();
        Ok(self.db.rows(&q).await?)
    }
}
