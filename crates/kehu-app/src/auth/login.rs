//! First-run setup, sign-in (throttled per account and per client address, in the database),
//! the second factor, password change and reset.

use super::session::{user_select, NewSession, UserRecord};
use super::{audit, hash_token, password, random_token, Client, LOCKOUT, THROTTLE_WINDOW};
use super::{MAX_FAILURES_ACCOUNT, MAX_FAILURES_ADDRESS, RESET_LIFETIME};
use crate::{App, Result};
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::records::col;
use kehu_db::{DbError, Raw, Tx};
use sea_query::{Alias, Query};
use serde::Deserialize;

/// The "create the administrator" form.
#[derive(Debug, Clone, Deserialize)]
pub struct SetupRequest {
    pub org_name: String,
    pub name: String,
    pub email: String,
    pub password: String,
    pub locale: String,
    pub time_zone: String,
}

/// The result of a correct password: a session, which may still need the second factor.
#[derive(Debug)]
pub struct LoginOutcome {
    pub session: NewSession,
    pub user_id: Uuid,
}

pub const LOCALES: [&str; 2] = ["zh-CN", "en"];

pub(crate) fn check_locale(locale: &str) -> Result<()> {
    if LOCALES.contains(&locale) {
        Ok(())
    } else {
        Err(AppError::field("locale", "field.invalid_choice"))
    }
}

pub(crate) fn check_time_zone(tz: &str) -> Result<()> {
    if tz.parse::<chrono_tz::Tz>().is_ok() {
        Ok(())
    } else {
        Err(AppError::field("time_zone", "field.invalid_time_zone"))
    }
}

impl App {
    /// Create the first administrator and sign them in. Refused once setup is done, also when
    /// two browsers race (the `setup_completed` setting is unique).
    /// `base_url` is where the administrator reached Kehu; e-mailed links use it unless a public
    /// URL is configured.
    pub async fn setup(&self, req: &SetupRequest, client: &Client<'_>, base_url: &str) -> Result<NewSession> {
        let org = req.org_name.trim();
        if org.is_empty() || org.chars().count() > 200 {
            return Err(AppError::field("org_name", "field.required"));
        }
        check_locale(&req.locale)?;
        check_time_zone(&req.time_zone)?;
        if !self.needs_setup().await? {
            return Err(AppError::conflict("setup.already_done"));
        }
        let hash = self.check_new_password(&req.password, &[&req.email, &req.name, org]).await?;
        let mut tx = self.db.begin().await?;
        let ins = Query::insert()
            .into_table(Alias::new("settings"))
            .columns(["key", "value", "updated_at"].map(Alias::new))
            .values_panic(["setup_completed".into(), now_micros().to_string().into(), now_micros().into()])
            .to_owned();
        tx.exec(&ins).await.map_err(|e| match e {
            DbError::Unique { .. } => AppError::conflict("setup.already_done"),
            other => other.into(),
        })?;
        Self::put_setting(&mut tx, "org_name", org).await?;
        Self::put_setting(&mut tx, "base_url", base_url.trim_end_matches('/')).await?;
        Self::put_setting(&mut tx, "org_time_zone", &req.time_zone).await?;
        let id = self.insert_user(&mut tx, &req.email, &req.name, None, "admin", &req.locale, &req.time_zone).await?;
        set_password_in(&mut tx, id, &hash).await?;
        audit(&mut tx, Some(id), id, "auth.setup", serde_json::json!({"org_name": org})).await?;
        let s = self.new_session(&mut tx, id, true, client).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// `kehu user create`: a user with a password (an administrator with `admin`). Completes
    /// setup when it is the first administrator.
    pub async fn create_user_with_password(&self, email: &str, name: &str, password: &str, role: &str) -> Result<Uuid> {
        let hash = self.check_new_password(password, &[email, name]).await?;
        let mut tx = self.db.begin().await?;
        let id = self.insert_user(&mut tx, email, name, None, role, "zh-CN", "Asia/Shanghai").await?;
        set_password_in(&mut tx, id, &hash).await?;
        if role == "admin" {
            Self::put_setting(&mut tx, "setup_completed", &now_micros().to_string()).await?;
        }
        audit(&mut tx, None, id, "user.created", serde_json::json!({"role": role, "via": "cli"})).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub(crate) async fn check_new_password(&self, pw: &str, context: &[&str]) -> Result<String> {
        let org = self.setting("org_name").await?.unwrap_or_default();
        let mut words: Vec<&str> = context.to_vec();
        words.push(&org);
        password::check(pw, &words)?;
        password::hash(pw).await
    }

    /// Sign in with e-mail and password. Errors are generic (`auth.invalid_credentials`) so
    /// they do not tell whether the account exists; too many failures per account or per
    /// address give `auth.throttled` until the lockout passes.
    pub async fn login(&self, email: &str, password: &str, client: &Client<'_>) -> Result<LoginOutcome> {
        let email = email.trim().to_lowercase();
        let keys = throttle_keys(&email, client);
        self.attempt(&keys).await?;
        let q = user_select().and_where(col("email").eq(email.as_str())).to_owned();
        let user = self.db.row::<UserRecord>(&q).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = password::verify(password, stored).await;
        let user = user.map(|u| u.info).filter(|u| ok && u.is_active);
        let Some(user) = user else {
            return Err(AppError::invalid("auth.invalid_credentials"));
        };
        let mut tx = self.db.begin().await?;
        Self::succeeded(&mut tx, &keys).await?;
        let s = self.new_session(&mut tx, user.id, !user.totp_enabled, client).await?;
        if !user.totp_enabled {
            mark_login(&mut tx, user.id).await?;
            audit(&mut tx, Some(user.id), user.id, "auth.login", serde_json::json!({"ip": client.ip})).await?;
        }
        tx.commit().await?;
        Ok(LoginOutcome { session: s, user_id: user.id })
    }

    /// Second step of a sign-in with TOTP: a code from the authenticator app or an unused
    /// recovery code. The half-signed-in session is replaced by a new one.
    pub async fn login_second_factor(&self, token: &str, code: &str, client: &Client<'_>) -> Result<NewSession> {
        let Some(s) = self.session(token).await? else {
            return Err(AppError::forbidden("auth.session_expired"));
        };
        if s.mfa_passed {
            return Err(AppError::conflict("auth.already_signed_in"));
        }
        let keys = vec![(format!("mfa:{}", s.user.id), MAX_FAILURES_ACCOUNT)];
        self.attempt(&keys).await?;
        let mut tx = self.db.begin().await?;
        if !self.check_second_factor(&mut tx, s.user.id, code).await? {
            tx.rollback().await?;
            return Err(AppError::field("code", "auth.invalid_code"));
        }
        Self::succeeded(&mut tx, &keys).await?;
        let del = Query::delete().from_table(Alias::new("sessions")).and_where(col("id").eq(s.id)).to_owned();
        tx.exec(&del).await?;
        let new = self.new_session(&mut tx, s.user.id, true, client).await?;
        mark_login(&mut tx, s.user.id).await?;
        audit(&mut tx, Some(s.user.id), s.user.id, "auth.login", serde_json::json!({"ip": client.ip, "mfa": true}))
            .await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Count an attempt against each key *before* checking the secret, in one statement per
    /// key, so parallel guesses are all counted; refuse while a key is over its limit.
    pub(crate) async fn attempt(&self, keys: &[(String, i64)]) -> Result<()> {
        let now = now_micros();
        let mut over = false;
        let mut tx = self.db.begin().await?;
        for (key, max) in keys {
            // A failure outside the window starts a new one; reaching the limit locks the key.
            let sql = "INSERT INTO login_throttle (key, failures, window_start, locked_until)
                 VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $4 ELSE NULL END)
                 ON CONFLICT (key) DO UPDATE SET
                   failures = CASE WHEN login_throttle.window_start < $5 THEN 1 ELSE login_throttle.failures + 1 END,
                   window_start = CASE WHEN login_throttle.window_start < $5 THEN $2 ELSE login_throttle.window_start END,
                   locked_until = CASE
                     WHEN login_throttle.window_start >= $5 AND login_throttle.failures + 1 >= $3 THEN $4
                     ELSE login_throttle.locked_until END
                 RETURNING failures, locked_until";
            let values = vec![
                key.as_str().into(),
                now.into(),
                (*max).into(),
                (now + LOCKOUT).into(),
                (now - THROTTLE_WINDOW).into(),
            ];
            if let Some(r) = tx.one(&Raw::new(sql, values)).await? {
                if r.i64(0).unwrap_or(0) > *max && r.i64(1).is_some_and(|u| u > now) {
                    over = true;
                }
            }
        }
        tx.commit().await?;
        if over {
            Err(AppError::forbidden("auth.throttled"))
        } else {
            Ok(())
        }
    }

    /// After a success: the first key (the account) starts afresh; the others (the address)
    /// give the attempt back.
    async fn succeeded(tx: &mut Tx, keys: &[(String, i64)]) -> Result<()> {
        if let Some((first, _)) = keys.first() {
            clear_throttle(tx, first).await?;
        }
        for (key, _) in keys.iter().skip(1) {
            let q = Raw::new(
                "UPDATE login_throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0",
                vec![key.as_str().into()],
            );
            tx.exec(&q).await?;
        }
        Ok(())
    }

    /// Change one's own password (the current one is required); other sessions end.
    pub async fn change_password(&self, user: Uuid, current: &str, new: &str, keep_session: Uuid) -> Result<()> {
        let info = self.user_info(user).await?.ok_or_else(|| AppError::not_found("user.not_found"))?;
        let keys = vec![(format!("pw:{user}"), MAX_FAILURES_ACCOUNT)];
        self.attempt(&keys).await?;
        if !password::verify(current, self.password_hash(user).await?).await {
            return Err(AppError::field("current_password", "auth.wrong_password"));
        }
        let hash = self.check_new_password(new, &[&info.email, &info.name]).await?;
        let mut tx = self.db.begin().await?;
        set_password_in(&mut tx, user, &hash).await?;
        let del = Query::delete()
            .from_table(Alias::new("sessions"))
            .and_where(col("user_id").eq(user))
            .and_where(sea_query::Expr::col(Alias::new("id")).ne(keep_session))
            .to_owned();
        tx.exec(&del).await?;
        Self::succeeded(&mut tx, &keys).await?;
        revoke_links(&mut tx, user).await?;
        audit(&mut tx, Some(user), user, "auth.password_changed", serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn password_hash(&self, user: Uuid) -> Result<Option<String>> {
        let q = Query::select()
            .column(Alias::new("password_hash"))
            .from(Alias::new("users"))
            .and_where(col("id").eq(user))
            .to_owned();
        Ok(self.db.one(&q).await?.and_then(|r| r.string(0)).filter(|s| !s.is_empty()))
    }

    /// "Forgot password": e-mails a single-use link valid for an hour when the address belongs
    /// to an active user; says nothing either way. Requests are throttled per address.
    pub async fn request_password_reset(&self, email: &str, base_url: &str) -> Result<()> {
        let email = email.trim().to_lowercase();
        let keys = vec![(format!("reset:{email}"), MAX_FAILURES_ACCOUNT)];
        if self.attempt(&keys).await.is_err() {
            return Ok(());
        }
        if !self.mail_enabled() {
            tracing::warn!("password reset asked for, but no mail server is configured");
            return Ok(());
        }
        let q = user_select().and_where(col("email").eq(email.as_str())).to_owned();
        let Some(user) = self.db.row::<UserRecord>(&q).await?.map(|u| u.info) else { return Ok(()) };
        if !user.is_active {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        let token = new_auth_token(&mut tx, user.id, "reset", RESET_LIFETIME).await?;
        let link = format!("{}/password/reset/{token}", base_url.trim_end_matches('/'));
        let (subject, body) = crate::mail::reset_mail(&user.locale, &user.name, &link);
        crate::mail::queue(&mut tx, &user.email, &subject, &body, "password_reset").await?;
        audit(&mut tx, None, user.id, "auth.reset_requested", serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a reset or invitation link is still usable (for showing the form).
    pub async fn reset_token_valid(&self, token: &str) -> Result<bool> {
        Ok(self.auth_token_user(token).await?.is_some())
    }

    async fn auth_token_user(&self, token: &str) -> Result<Option<(Uuid, Uuid)>> {
        let q = Query::select()
            .columns(["id", "user_id", "expires_at", "used_at"].map(Alias::new))
            .from(Alias::new("auth_tokens"))
            .and_where(col("token_hash").eq(hash_token(token)))
            .to_owned();
        let Some(r) = self.db.one(&q).await? else { return Ok(None) };
        if r.i64(3).is_some() || r.i64(2).unwrap_or(0) < now_micros() {
            return Ok(None);
        }
        Ok(r.uuid(0).zip(r.uuid(1)))
    }

    /// Set a new password from a reset or invitation link: the link is used up, every session
    /// of the user ends, and TOTP stays on (the next sign-in still asks for the code).
    pub async fn reset_password(&self, token: &str, new: &str) -> Result<Uuid> {
        let Some((token_id, user)) = self.auth_token_user(token).await? else {
            return Err(AppError::invalid("auth.reset_link_invalid"));
        };
        let info = self.user_info(user).await?.ok_or_else(|| AppError::invalid("auth.reset_link_invalid"))?;
        let hash = self.check_new_password(new, &[&info.email, &info.name]).await?;
        let mut tx = self.db.begin().await?;
        let used = Query::update()
            .table(Alias::new("auth_tokens"))
            .value(Alias::new("used_at"), now_micros())
            .and_where(col("id").eq(token_id))
            .and_where(sea_query::Expr::col(Alias::new("used_at")).is_null())
            .to_owned();
        if tx.exec(&used).await? == 0 {
            return Err(AppError::invalid("auth.reset_link_invalid"));
        }
        set_password_in(&mut tx, user, &hash).await?;
        let del = Query::delete().from_table(Alias::new("sessions")).and_where(col("user_id").eq(user)).to_owned();
        tx.exec(&del).await?;
        // Account recovery: whatever someone else may have minted stops working.
        revoke_links(&mut tx, user).await?;
        let revoke = Raw::new(
            "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            vec![now_micros().into(), user.into()],
        );
        tx.exec(&revoke).await?;
        clear_throttle(&mut tx, &format!("acct:{}", info.email)).await?;
        audit(&mut tx, None, user, "auth.password_reset", serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(user)
    }
}

fn throttle_keys(email: &str, client: &Client<'_>) -> Vec<(String, i64)> {
    let mut keys = vec![(format!("acct:{email}"), MAX_FAILURES_ACCOUNT)];
    if let Some(ip) = client.ip {
        keys.push((format!("ip:{ip}"), MAX_FAILURES_ADDRESS));
    }
    keys
}

/// Use up every outstanding reset or invitation link of a user.
async fn revoke_links(tx: &mut Tx, user: Uuid) -> Result<()> {
    let q = Raw::new(
        "UPDATE auth_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        vec![now_micros().into(), user.into()],
    );
    tx.exec(&q).await?;
    Ok(())
}

async fn clear_throttle(tx: &mut Tx, key: &str) -> Result<()> {
    let q = Query::delete().from_table(Alias::new("login_throttle")).and_where(col("key").eq(key)).to_owned();
    tx.exec(&q).await?;
    Ok(())
}

async fn mark_login(tx: &mut Tx, user: Uuid) -> Result<()> {
    let q = Query::update()
        .table(Alias::new("users"))
        .value(Alias::new("last_login_at"), now_micros())
        .and_where(col("id").eq(user))
        .to_owned();
    tx.exec(&q).await?;
    Ok(())
}

pub(crate) async fn set_password_in(tx: &mut Tx, user: Uuid, hash: &str) -> Result<()> {
    let now = now_micros();
    let q = Query::update()
        .table(Alias::new("users"))
        .values([
            (Alias::new("password_hash"), hash.into()),
            (Alias::new("password_changed_at"), now.into()),
            (Alias::new("updated_at"), now.into()),
        ])
        .and_where(col("id").eq(user))
        .to_owned();
    tx.exec(&q).await?;
    Ok(())
}

/// A single-use link token (`reset`, `invite`); returns the token, stores its hash.
pub(crate) async fn new_auth_token(tx: &mut Tx, user: Uuid, purpose: &str, lifetime: i64) -> Result<String> {
    let token = random_token();
    let now = now_micros();
    let q = Query::insert()
        .into_table(Alias::new("auth_tokens"))
        .columns(["id", "token_hash", "user_id", "purpose", "expires_at", "created_at"].map(Alias::new))
        .values_panic([
            new_id().into(),
            hash_token(&token).into(),
            user.into(),
            purpose.into(),
            (now + lifetime).into(),
            now.into(),
        ])
        .to_owned();
    tx.exec(&q).await?;
    Ok(token)
}
