//! Who you are: first-run setup, sign-in with throttling, server-side sessions, TOTP two-factor
//! with recovery codes, password change and reset, API tokens. Everything is stored in the
//! database (sessions, throttle counters, tokens), so several app servers share it.
//!
//! Must never: store a password, session token, API token or reset token in clear, or log one.

mod login;
pub mod password;
mod session;
mod tokens;
mod totp;

pub(crate) use audit as audit_user;
pub(crate) use login::{check_locale, check_time_zone};
pub use login::{LoginOutcome, SetupRequest, LOCALES};
pub(crate) use session::{user_select, UserRecord};
pub use session::{NewSession, SessionInfo, SessionRow, UserInfo};
pub use tokens::{ApiTokenInfo, MailRow, Scope as TokenScope, TokenAuth};
pub use totp::TotpEnrolment;
pub use totp::{totp_at, totp_matches, totp_now};

use crate::{App, Result};
use base64::Engine;
use kehu_core::{new_id, now_micros, Uuid};
use kehu_db::records::col;
use kehu_db::Tx;
use rand::RngCore;
use sea_query::{Alias, Query};
use sha2::{Digest, Sha256};

const MINUTE: i64 = 60 * 1_000_000;
/// A session unused this long ends.
pub const IDLE_TIMEOUT: i64 = 12 * 60 * MINUTE;
/// No session lives longer than this.
pub const SESSION_LIFETIME: i64 = 14 * 24 * 60 * MINUTE;
/// "Last seen" is written at most this often.
const TOUCH_EVERY: i64 = MINUTE;
/// Failed sign-ins per account, and per client address, within `THROTTLE_WINDOW`.
pub const MAX_FAILURES_ACCOUNT: i64 = 5;
pub const MAX_FAILURES_ADDRESS: i64 = 30;
const THROTTLE_WINDOW: i64 = 15 * MINUTE;
/// How long a throttled account or address waits.
pub const LOCKOUT: i64 = 15 * MINUTE;
/// A password-reset link works this long, an invitation this long.
const RESET_LIFETIME: i64 = 60 * MINUTE;
const INVITE_LIFETIME: i64 = 7 * 24 * 60 * MINUTE;

/// Where a request comes from (for sessions and throttling).
#[derive(Debug, Clone, Copy, Default)]
pub struct Client<'a> {
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// 32 random bytes, URL-safe base64: session, CSRF, reset and API token material.
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What the database keeps of a token: its SHA-256 (tokens are random, so no salt is needed).
pub(crate) fn hash_token(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compare secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An audit entry about a user (sign-in, password change, role change…); `details` never holds
/// a secret.
pub(crate) async fn audit(
    tx: &mut Tx,
    actor: Option<Uuid>,
    user: Uuid,
    action: &str,
    details: serde_json::Value,
) -> Result<()> {
    let q = Query::insert()
        .into_table(Alias::new("audit_log"))
        .columns(["id", "at", "actor_id", "object_id", "record_id", "action", "changes"].map(Alias::new))
        .values_panic([
            new_id().into(),
            now_micros().into(),
            sea_query::Value::from(actor).into(),
            sea_query::Value::from(None::<Uuid>).into(),
            user.into(),
            action.into(),
            details.to_string().into(),
        ])
        .to_owned();
    tx.exec(&q).await?;
    Ok(())
}

impl App {
    /// An instance setting (organisation name, …).
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let q = Query::select()
            .column(Alias::new("value"))
            .from(Alias::new("settings"))
            .and_where(col("key").eq(key))
            .to_owned();
        Ok(self.db.one(&q).await?.and_then(|r| r.string(0)))
    }

    pub(crate) async fn put_setting(tx: &mut Tx, key: &str, value: &str) -> Result<()> {
        let up = Query::update()
            .table(Alias::new("settings"))
            .values([(Alias::new("value"), value.into()), (Alias::new("updated_at"), now_micros().into())])
            .and_where(col("key").eq(key))
            .to_owned();
        if tx.exec(&up).await? == 0 {
            let ins = Query::insert()
                .into_table(Alias::new("settings"))
                .columns(["key", "value", "updated_at"].map(Alias::new))
                .values_panic([key.into(), value.into(), now_micros().into()])
                .to_owned();
            tx.exec(&ins).await?;
        }
        Ok(())
    }

    /// Keep the address Kehu is reached at, for links in e-mails, unless one is known already.
    pub async fn remember_base_url(&self, url: &str) -> Result<()> {
        if self.setting("base_url").await?.is_none() {
            let mut tx = self.db.begin().await?;
            Self::put_setting(&mut tx, "base_url", url.trim_end_matches('/')).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// True until the first administrator exists.
    pub async fn needs_setup(&self) -> Result<bool> {
        Ok(self.setting("setup_completed").await?.is_none())
    }
}
