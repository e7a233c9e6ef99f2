//! Server-side sessions. The browser holds a random token; the `sessions` table holds only its
//! SHA-256, the user, the CSRF secret, whether the second factor was passed, and the times
//! that bound it (idle and absolute timeouts). Signing in always creates a new token, so a
//! token planted before sign-in is worthless (no session fixation).

use super::{hash_token, random_token, Client, IDLE_TIMEOUT, SESSION_LIFETIME, TOUCH_EVERY};
use crate::{App, Result};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::records::col;
use kehu_db::Tx;
use sea_query::{Alias, Expr, Query};
use serde::Serialize;

/// A session just created: the token goes into the cookie and is never stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
    /// The user still has to enter a TOTP or recovery code.
    pub mfa_pending: bool,
}

/// The signed-in user as pages need them.
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub locale: String,
    pub time_zone: String,
    pub team_id: Option<Uuid>,
    pub role_id: Uuid,
    pub is_active: bool,
    pub totp_enabled: bool,
    pub has_password: bool,
    pub last_login_at: Option<i64>,
}

pub(crate) const USER_COLUMNS: [&str; 10] =
    ["id", "email", "name", "locale", "time_zone", "team_id", "role_id", "is_active", "totp_secret", "password_hash"];

pub(crate) fn user_select() -> sea_query::SelectStatement {
    let mut q = Query::select();
    q.columns(USER_COLUMNS.map(Alias::new)).column(Alias::new("last_login_at")).from(Alias::new("users"));
    q
}

/// A user row as `user_select` reads it: the user, and the password hash for sign-in.
pub(crate) struct UserRecord {
    pub info: UserInfo,
    pub password_hash: Option<String>,
}

impl kehu_db::FromRow for UserRecord {
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        let password_hash = r.string("password_hash").filter(|s| !s.is_empty());
        Ok(UserRecord {
            info: UserInfo {
                id: r.req_uuid("id")?,
                email: r.req_string("email")?,
                name: r.req_string("name")?,
                locale: r.string("locale").unwrap_or_else(|| "zh-CN".into()),
                time_zone: r.string("time_zone").unwrap_or_else(|| "Asia/Shanghai".into()),
                team_id: r.uuid("team_id"),
                role_id: r.req_uuid("role_id")?,
                is_active: r.bool("is_active").unwrap_or(false),
                totp_enabled: r.string("totp_secret").is_some_and(|s| !s.is_empty()),
                has_password: password_hash.is_some(),
                last_login_at: r.i64("last_login_at"),
            },
            password_hash,
        })
    }
}

/// A session row as `session` reads it.
struct SessionRecord {
    id: Uuid,
    user_id: Uuid,
    csrf: String,
    mfa_passed: bool,
    last_seen_at: i64,
    expires_at: i64,
}

impl kehu_db::FromRow for SessionRecord {
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(SessionRecord {
            id: r.req_uuid("id")?,
            user_id: r.req_uuid("user_id")?,
            csrf: r.req_string("csrf")?,
            mfa_passed: r.bool("mfa_passed").unwrap_or(false),
            last_seen_at: r.req_i64("last_seen_at")?,
            expires_at: r.req_i64("expires_at")?,
        })
    }
}

/// A live session found by its token.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: Uuid,
    pub user: UserInfo,
    pub csrf: String,
    pub mfa_passed: bool,
}

/// One row of "your sessions".
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub current: bool,
}

impl kehu_db::FromRow for SessionRow {
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(SessionRow {
            id: r.req_uuid("id")?,
            user_agent: r.string("user_agent"),
            ip: r.string("ip"),
            created_at: r.req_i64("created_at")?,
            last_seen_at: r.req_i64("last_seen_at")?,
            current: false,
        })
    }
}

const SESSION_COLUMNS: [&str; 6] = ["id", "user_id", "csrf", "mfa_passed", "last_seen_at", "expires_at"];

impl App {
    /// Create a session for a user inside `tx`.
    pub(crate) async fn new_session(
        &self,
        tx: &mut Tx,
        user: Uuid,
        mfa_passed: bool,
        client: &Client<'_>,
    ) -> Result<NewSession> {
        let token = random_token();
        let csrf = random_token();
        let now = now_micros();
        let q = Query::insert()
            .into_table(Alias::new("sessions"))
            .columns(
                [
                    "id",
                    "token_hash",
                    "user_id",
                    "csrf",
                    "mfa_passed",
                    "user_agent",
                    "ip",
                    "created_at",
                    "last_seen_at",
                    "expires_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                new_id().into(),
                hash_token(&token).into(),
                user.into(),
                csrf.clone().into(),
                mfa_passed.into(),
                client.user_agent.map(|s| s.chars().take(300).collect::<String>()).into(),
                client.ip.map(str::to_owned).into(),
                now.into(),
                now.into(),
                (now + SESSION_LIFETIME).into(),
            ])
            .to_owned();
        tx.exec(&q).await?;
        Ok(NewSession { token, csrf, mfa_pending: !mfa_passed })
    }

    /// The session a token belongs to, if it is live: not expired, not idle too long, its user
    /// active. Refreshes "last seen" at most once a minute.
    pub async fn session(&self, token: &str) -> Result<Option<SessionInfo>> {
        if token.is_empty() || token.len() > 200 {
            return Ok(None);
        }
        let q = Query::select()
            .columns(SESSION_COLUMNS.map(Alias::new))
            .from(Alias::new("sessions"))
            .and_where(col("token_hash").eq(hash_token(token)))
            .to_owned();
        let Some(s) = self.db.row::<SessionRecord>(&q).await? else { return Ok(None) };
        let (id, user_id) = (s.id, s.user_id);
        let now = now_micros();
        let last_seen = s.last_seen_at;
        if s.expires_at < now || last_seen + IDLE_TIMEOUT < now {
            self.delete_sessions(col("id").eq(id)).await?;
            return Ok(None);
        }
        let Some(user) = self.user_info(user_id).await? else { return Ok(None) };
        if !user.is_active {
            return Ok(None);
        }
        if now - last_seen > TOUCH_EVERY {
            let q = Query::update()
                .table(Alias::new("sessions"))
                .value(Alias::new("last_seen_at"), now)
                .and_where(col("id").eq(id))
                .to_owned();
            self.db.write(&q).await?;
        }
        Ok(Some(SessionInfo { id, user, csrf: s.csrf, mfa_passed: s.mfa_passed }))
    }

    pub async fn user_info(&self, id: Uuid) -> Result<Option<UserInfo>> {
        let q = user_select().and_where(col("id").eq(id)).to_owned();
        Ok(self.db.row::<UserRecord>(&q).await?.map(|u| u.info))
    }

    /// Sign out: the session's row is deleted.
    pub async fn logout(&self, token: &str) -> Result<()> {
        self.delete_sessions(col("token_hash").eq(hash_token(token))).await
    }

    pub(crate) async fn delete_sessions(&self, cond: sea_query::SimpleExpr) -> Result<()> {
        let q = Query::delete().from_table(Alias::new("sessions")).and_where(cond).to_owned();
        self.db.write(&q).await?;
        Ok(())
    }

    /// The user's live sessions, newest activity first; `current` marks the caller's.
    pub async fn sessions_of(&self, user: Uuid, current: Uuid) -> Result<Vec<SessionRow>> {
        let now = now_micros();
        let q = Query::select()
            .columns(["id", "user_agent", "ip", "created_at", "last_seen_at"].map(Alias::new))
            .from(Alias::new("sessions"))
            .and_where(col("user_id").eq(user))
            .and_where(col("expires_at").gt(now))
            .and_where(col("last_seen_at").gt(now - IDLE_TIMEOUT))
            .order_by(Alias::new("last_seen_at"), sea_query::Order::Desc)
            .to_owned();
        let mut rows: Vec<SessionRow> = self.db.rows(&q).await?;
        for r in &mut rows {
            r.current = r.id == current;
        }
        Ok(rows)
    }

    /// Sign out one of the user's own sessions (another device).
    pub async fn revoke_session(&self, user: Uuid, session: Uuid) -> Result<()> {
        let q = Query::delete()
            .from_table(Alias::new("sessions"))
            .and_where(col("id").eq(session))
            .and_where(col("user_id").eq(user))
            .to_owned();
        let mut tx = self.db.begin().await?;
        if tx.exec(&q).await? == 0 {
            return Err(AppError::not_found("session.not_found"));
        }
        super::audit(&mut tx, Some(user), user, "auth.session_revoked", serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sign out every other device of the user.
    pub async fn revoke_other_sessions(&self, user: Uuid, keep: Uuid) -> Result<u64> {
        let q = Query::delete()
            .from_table(Alias::new("sessions"))
            .and_where(col("user_id").eq(user))
            .and_where(Expr::col(Alias::new("id")).ne(keep))
            .to_owned();
        let mut tx = self.db.begin().await?;
        let n = tx.exec(&q).await?;
        super::audit(&mut tx, Some(user), user, "auth.sessions_revoked", serde_json::json!({"count": n})).await?;
        tx.commit().await?;
        Ok(n)
    }
}
