//! Passwords: argon2id hashes (PHC strings), a strength check (zxcvbn plus the passwords
//! Chinese users pick most often), and a dummy verification for unknown accounts so that a
//! failed sign-in takes as long whether or not the e-mail exists.

use kehu_core::AppError;
use std::sync::OnceLock;

/// Shortest accepted password.
pub const MIN_LEN: usize = 10;
/// Longest accepted password (characters); long passphrases are welcome.
pub const MAX_LEN: usize = 1024;

/// Frequent passwords from Chinese leaks that zxcvbn's English lists miss.
const COMMON_CN: &[&str] = &[
    "woaini1314",
    "woaini520",
    "5201314520",
    "1314520520",
    "qq123456789",
    "aa123456789",
    "a123456789",
    "zhang123456",
    "wang123456",
    "li12345678",
    "asd123456789",
    "qwe123456789",
    "abc123456789",
    "iloveyou1314",
    "woaiwojia123",
    "nihao123456",
    "1qaz2wsx3edc",
    "qwertyuiop123",
    "kehu123456",
    "admin123456",
    "password1234",
    "p@ssw0rd1234",
    "zxcvbnm123456",
    "147258369abc",
    "88888888888",
];

/// Check a new password; `context` are words the password must not be built from (e-mail,
/// name, organisation).
pub fn check(password: &str, context: &[&str]) -> Result<(), AppError> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(AppError::field("password", "password.too_short"));
    }
    if n > MAX_LEN {
        return Err(AppError::field("password", "password.too_long"));
    }
    let lower = password.to_lowercase();
    if COMMON_CN.contains(&lower.as_str()) {
        return Err(AppError::field("password", "password.too_common"));
    }
    // zxcvbn's cost grows with length; a long passphrase is strong anyway.
    let probe: String = password.chars().take(64).collect();
    let mut words: Vec<&str> = Vec::new();
    for c in context {
        words.push(c);
        if let Some((local, _)) = c.split_once('@') {
            words.push(local);
        }
    }
    let score = zxcvbn::zxcvbn(&probe, &words).score();
    if (score as u8) < 3 {
        return Err(AppError::field("password", "password.too_weak"));
    }
    Ok(())
}

fn hasher() -> argon2::Argon2<'static> {
    // OWASP's argon2id recommendation: m = 19 MiB, t = 2, p = 1.
    argon2::Argon2::default()
}

/// Hash a password (argon2id, random salt), off the async runtime.
pub async fn hash(password: &str) -> Result<String, AppError> {
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut OsRng);
        hasher().hash_password(pw.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()))?
    .map_err(|e| AppError::internal(format!("argon2: {e}")))
}

/// Verify a password against a stored hash; `None` (no such user, no password set) runs a
/// verification against a fixed hash so the timing is the same, and fails.
pub async fn verify(password: &str, stored: Option<String>) -> bool {
    let pw = password.to_owned();
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let Ok(parsed) = PasswordHash::new(&stored) else { return false };
        hasher().verify_password(pw.as_bytes(), &parsed).is_ok() && known
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        // A fixed salt when it parses (it does), else a random one: either way a real hash.
        let salt = SaltString::from_b64("a2VodWR1bW15c2FsdA").unwrap_or_else(|_| SaltString::generate(&mut OsRng));
        hasher().hash_password(b"kehu-dummy-password", &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength() {
        assert_eq!(check("short", &[]).unwrap_err().fields[0].code, "password.too_short");
        assert_eq!(check("woaini1314", &[]).unwrap_err().fields[0].code, "password.too_common");
        assert_eq!(check("password123", &[]).unwrap_err().fields[0].code, "password.too_weak");
        assert_eq!(check("zhangwei2024", &["zhangwei@acme.cn"]).unwrap_err().fields[0].code, "password.too_weak");
        assert!(check("correct horse battery staple 客户", &[]).is_ok());
        assert!(check(&"长密码也可以".repeat(30), &[]).is_ok(), "long passphrases are accepted");
        assert_eq!(check(&"x".repeat(MAX_LEN + 1), &[]).unwrap_err().fields[0].code, "password.too_long");
    }
}
