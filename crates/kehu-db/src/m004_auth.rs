//! Migration 4: what sign-in needs. Password and TOTP columns on `users`; server-side
//! `sessions` (only a hash of the token is stored); `login_throttle` counters shared by every
//! app server; `api_tokens` and single-use `auth_tokens` (password reset, invitation), both
//! hashed; instance `settings`; the outgoing `mails` queue. The system roles gain the
//! `manage_users` and `reveal_contact` grants.

use crate::conn::{DbResult, Tx};
use crate::migrate::{index, T};
use kehu_core::now_micros;
use sea_query::{Alias, ColumnDef, Query, Table};

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    // One column per ALTER: SQLite takes no more.
    for (name, text) in [
        ("password_hash", true),
        ("totp_secret", true),
        ("totp_pending", true),
        ("recovery_codes", true),
        ("last_login_at", false),
        ("totp_last_step", false),
        ("password_changed_at", false),
    ] {
        let mut c = ColumnDef::new(Alias::new(name));
        if text {
            c.text();
        } else {
            c.big_integer();
        }
        c.null();
        let sql = Table::alter().table(Alias::new("users")).add_column(c).to_owned().build_any(b.schema_builder());
        tx.ddl(&sql).await?;
    }
    let tables = [
        T::new(b, "sessions")
            .id()
            .text("token_hash")
            .uuid("user_id")
            .text("csrf")
            .bool("mfa_passed", false)
            .text_null("user_agent")
            .text_null("ip")
            .int("created_at")
            .int("last_seen_at")
            .int("expires_at"),
        T::new(b, "login_throttle").text("key").int("failures").int("window_start").int_null("locked_until"),
        T::new(b, "api_tokens")
            .id()
            .uuid("user_id")
            .text("name")
            .text("token_hash")
            .text("prefix")
            .text("scopes")
            .int_null("expires_at")
            .int_null("last_used_at")
            .int("created_at")
            .int_null("revoked_at"),
        T::new(b, "auth_tokens")
            .id()
            .text("token_hash")
            .uuid("user_id")
            .text("purpose")
            .int("expires_at")
            .int_null("used_at")
            .int("created_at"),
        T::new(b, "settings").text("key").text("value").int("updated_at"),
        T::new(b, "mails")
            .id()
            .text("to_addr")
            .text("subject")
            .text_null("body")
            .text("kind")
            .int("created_at")
            .int_null("sent_at")
            .int("attempts")
            .text_null("last_error"),
    ];
    for t in &tables {
        tx.ddl(&t.sql()).await?;
    }
    for sql in [
        index(b, "sessions", "token_hash", &["token_hash"], true),
        index(b, "sessions", "user_id", &["user_id"], false),
        index(b, "login_throttle", "key", &["key"], true),
        index(b, "api_tokens", "token_hash", &["token_hash"], true),
        index(b, "api_tokens", "user_id", &["user_id"], false),
        index(b, "auth_tokens", "token_hash", &["token_hash"], true),
        index(b, "settings", "key", &["key"], true),
        index(b, "mails", "pending", &["sent_at", "created_at"], false),
    ] {
        tx.ddl(&sql).await?;
    }
    let now = now_micros();
    for (key, _, _, grants) in kehu_core::perm::default_roles() {
        let grants = serde_json::to_string(&grants).map_err(|e| crate::DbError::Other(e.to_string()))?;
        let q = Query::update()
            .table(Alias::new("roles"))
            .values([(Alias::new("grants"), grants.into()), (Alias::new("updated_at"), now.into())])
            .and_where(crate::records::col("key").eq(key))
            .and_where(crate::records::col("is_system").eq(true))
            .to_owned();
        tx.exec(&q).await?;
    }
    Ok(())
}
