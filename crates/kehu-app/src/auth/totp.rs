//! TOTP two-factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s, ±1 step) with ten single-use
//! recovery codes (stored hashed). Enrolment is two steps: a pending secret shown as a QR code,
//! then confirmed by a first code, which also yields the recovery codes.

use super::{audit, hash_token, password};
use crate::{App, Result};
use hmac::{Hmac, Mac};
use kehu_core::{now_micros, AppError, Uuid};
use kehu_db::records::col;
use kehu_db::Tx;
use rand::RngCore;
use sea_query::{Alias, Query};

/// What the enrolment page shows: the secret (for typing in) and the `otpauth://` URL (for
/// the QR code).
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    pub secret: String,
    pub url: String,
}

const STEP: i64 = 30;
const RECOVERY_CODES: usize = 10;

/// RFC 4648 base32 without padding.
pub(crate) fn base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub(crate) fn unbase32(s: &str) -> Option<Vec<u8>> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// The code for a counter value (RFC 4226 dynamic truncation), `digits` long.
pub(crate) fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else { return String::new() };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!("{:0width$}", bin % 10u32.pow(digits), width = digits as usize)
}

/// Whether `code` is valid now for `secret_b32` (one step of clock drift either way).
pub fn totp_matches(secret_b32: &str, code: &str, unix_secs: i64) -> bool {
    totp_step(secret_b32, code, unix_secs).is_some()
}

/// The time step `code` belongs to, if it is valid now.
fn totp_step(secret_b32: &str, code: &str, unix_secs: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secret = unbase32(secret_b32)?;
    let step = unix_secs / STEP;
    (-1..=1).map(|d| step + d).find(|s| super::same_secret(&hotp(&secret, *s as u64, 6), &code))
}

/// The current code (for tests and for the CLI's own checks).
pub fn totp_now(secret_b32: &str) -> String {
    totp_at(secret_b32, now_micros() / 1_000_000)
}

/// The code at a moment (Unix seconds).
pub fn totp_at(secret_b32: &str, unix_secs: i64) -> String {
    let secret = unbase32(secret_b32).unwrap_or_default();
    hotp(&secret, (unix_secs / STEP) as u64, 6)
}

fn normalise_recovery(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase()
}

impl App {
    /// Start enrolment: a new pending secret (replacing an unconfirmed one).
    pub async fn totp_begin(&self, user: Uuid) -> Result<TotpEnrolment> {
        let info = self.user_info(user).await?.ok_or_else(|| AppError::not_found("user.not_found"))?;
        if info.totp_enabled {
            return Err(AppError::conflict("totp.already_enabled"));
        }
        let mut b = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let secret = base32(&b);
        let q = Query::update()
            .table(Alias::new("users"))
            .value(Alias::new("totp_pending"), secret.as_str())
            .and_where(col("id").eq(user))
            .to_owned();
        self.db.write(&q).await?;
        let org = self.setting("org_name").await?.unwrap_or_else(|| "Kehu".into());
        let issuer = url_escape(&format!("Kehu {org}"));
        let url = format!(
            "otpauth://totp/{issuer}:{}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period=30",
            url_escape(&info.email)
        );
        Ok(TotpEnrolment { secret, url })
    }

    /// Confirm enrolment with a first code; returns the recovery codes (shown once).
    pub async fn totp_confirm(&self, user: Uuid, code: &str) -> Result<Vec<String>> {
        let q = Query::select()
            .column(Alias::new("totp_pending"))
            .from(Alias::new("users"))
            .and_where(col("id").eq(user))
            .to_owned();
        let pending = self.db.one(&q).await?.and_then(|r| r.string(0)).filter(|s| !s.is_empty());
        let Some(secret) = pending else { return Err(AppError::conflict("totp.not_started")) };
        let Some(step) = totp_step(&secret, code, now_micros() / 1_000_000) else {
            return Err(AppError::field("code", "auth.invalid_code"));
        };
        let codes = new_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| hash_token(&normalise_recovery(c))).collect();
        let q = Query::update()
            .table(Alias::new("users"))
            .values([
                (Alias::new("totp_secret"), secret.into()),
                (Alias::new("totp_pending"), None::<String>.into()),
                (Alias::new("recovery_codes"), serde_json::to_string(&hashes).unwrap_or_default().into()),
                (Alias::new("totp_last_step"), step.into()),
            ])
            .and_where(col("id").eq(user))
            .to_owned();
        let mut tx = self.db.begin().await?;
        tx.exec(&q).await?;
        audit(&mut tx, Some(user), user, "auth.totp_enabled", serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(codes)
    }

    /// Turn two-factor off: needs the password and a current code (or a recovery code), and is
    /// throttled like a password change.
    pub async fn totp_disable(&self, user: Uuid, pw: &str, code: &str) -> Result<()> {
        let keys = vec![(format!("pw:{user}"), super::MAX_FAILURES_ACCOUNT)];
        self.attempt(&keys).await?;
        if !password::verify(pw, self.password_hash(user).await?).await {
            return Err(AppError::field("password", "auth.wrong_password"));
        }
        // The code is used up and two-factor turned off in one transaction.
        let mut tx = self.db.begin().await?;
        if !self.check_second_factor(&mut tx, user, code).await? {
            tx.rollback().await?;
            return Err(AppError::field("code", "auth.invalid_code"));
        }
        let q = Query::update()
            .table(Alias::new("users"))
            .values([
                (Alias::new("totp_secret"), None::<String>.into()),
                (Alias::new("totp_pending"), None::<String>.into()),
                (Alias::new("recovery_codes"), None::<String>.into()),
            ])
            .and_where(col("id").eq(user))
            .to_owned();
        tx.exec(&q).await?;
        audit(&mut tx, Some(user), user, "auth.totp_disabled", serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many recovery codes are left.
    pub async fn recovery_codes_left(&self, user: Uuid) -> Result<usize> {
        let q = Query::select()
            .column(Alias::new("recovery_codes"))
            .from(Alias::new("users"))
            .and_where(col("id").eq(user))
            .to_owned();
        let raw = self.db.one(&q).await?.and_then(|r| r.string(0)).unwrap_or_default();
        Ok(serde_json::from_str::<Vec<String>>(&raw).map(|v| v.len()).unwrap_or(0))
    }

    /// A TOTP code, or a recovery code (which is then used up), within `tx`.
    pub(crate) async fn check_second_factor(&self, tx: &mut Tx, user: Uuid, code: &str) -> Result<bool> {
        let q = Query::select()
            .columns(["totp_secret", "recovery_codes", "totp_last_step"].map(Alias::new))
            .from(Alias::new("users"))
            .and_where(col("id").eq(user))
            .to_owned();
        let Some(r) = tx.one(&q).await? else { return Ok(false) };
        let Some(secret) = r.string(0).filter(|s| !s.is_empty()) else { return Ok(false) };
        if let Some(step) = totp_step(&secret, code, now_micros() / 1_000_000) {
            // A code is good once: a replayed or older code is refused, also when two requests
            // race (the conditional update lets only one of them through).
            if r.i64(2).is_some_and(|last| step <= last) {
                return Ok(false);
            }
            let q = kehu_db::Raw::new(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
                vec![step.into(), user.into()],
            );
            return Ok(tx.exec(&q).await? == 1);
        }
        let old = r.string(1).unwrap_or_else(|| "[]".into());
        let mut hashes: Vec<String> = serde_json::from_str(&old).unwrap_or_default();
        let h = hash_token(&normalise_recovery(code));
        let Some(pos) = hashes.iter().position(|x| super::same_secret(x, &h)) else { return Ok(false) };
        hashes.remove(pos);
        let q = Query::update()
            .table(Alias::new("users"))
            .value(Alias::new("recovery_codes"), serde_json::to_string(&hashes).unwrap_or_default())
            .and_where(col("id").eq(user))
            .and_where(col("recovery_codes").eq(old))
            .to_owned();
        if tx.exec(&q).await? != 1 {
            return Ok(false);
        }
        audit(tx, Some(user), user, "auth.recovery_code_used", serde_json::json!({"left": hashes.len()})).await?;
        Ok(true)
    }
}

fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut b = [0u8; 5];
            rand::rngs::OsRng.fill_bytes(&mut b);
            let s = base32(&b).to_lowercase();
            format!("{}-{}", &s[..4], &s[4..8])
        })
        .collect()
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890".
        let secret = b"12345678901234567890";
        assert_eq!(hotp(secret, 59 / 30, 8), "94287082");
        assert_eq!(hotp(secret, 1111111109 / 30, 8), "07081804");
        assert_eq!(hotp(secret, 20000000000 / 30, 8), "65353130");
        let b32 = base32(secret);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(unbase32(&b32).unwrap(), secret);
        assert!(totp_matches(&b32, "287082", 59));
        assert!(totp_matches(&b32, "287 082", 59 + 30), "one step of drift");
        assert!(!totp_matches(&b32, "287082", 59 + 90));
        assert!(!totp_matches(&b32, "28708", 59));
    }
}
