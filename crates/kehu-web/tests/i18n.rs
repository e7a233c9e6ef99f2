//! Translations: both languages have every key; every key the code uses and every error code
//! the code can return has a message in both.

use kehu_web::i18n::{error_key, sources, I18n, Lang};
use std::collections::BTreeSet;
use std::path::Path;

fn keys(lang: &str) -> BTreeSet<String> {
    sources()
        .filter(|(l, _, _)| *l == lang)
        .flat_map(|(_, _, src)| src.lines())
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_string()))
        .filter(|k| !k.is_empty() && !k.starts_with('#') && !k.starts_with(' '))
        .collect()
}

fn files(dir: &Path, ext: &str, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// Quoted arguments of `t("…")`, `t1("…"`, `get(…, "…"`.
fn used_keys(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for pat in [".t(\"", ".t1(\"", ".lang, \""] {
        let mut rest = src;
        while let Some(i) = rest.find(pat) {
            rest = &rest[i + pat.len()..];
            if let Some(end) = rest.find('"') {
                let k = &rest[..end];
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                    out.push(k.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn both_languages_have_every_key() {
    let (en, zh) = (keys("en"), keys("zh-CN"));
    let missing_zh: Vec<_> = en.difference(&zh).collect();
    let missing_en: Vec<_> = zh.difference(&en).collect();
    assert!(
        missing_zh.is_empty() && missing_en.is_empty(),
        "missing in zh-CN: {missing_zh:?}; missing in en: {missing_en:?}"
    );
    let i18n = I18n::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut srcs = Vec::new();
    files(&root.join("templates"), "html", &mut srcs);
    files(&root.join("src"), "rs", &mut srcs);
    for src in &srcs {
        for k in used_keys(src) {
            for lang in Lang::ALL {
                assert!(i18n.has(lang, &k), "key {k} used but missing in {}", lang.code());
            }
        }
    }
    for lang in Lang::ALL {
        for key in
            ["home-company-title", "home-contact-body", "scope-record-own", "scope-record-team", "scope-record-all"]
        {
            assert!(i18n.has(lang, key), "{key} ({})", lang.code());
        }
    }
}

/// Codes that name audit actions or events, not errors.
const NOT_ERRORS: &[&str] = &[
    "auth.login",
    "auth.password_changed",
    "auth.password_reset",
    "auth.recovery_code_used",
    "auth.reset_requested",
    "auth.session_revoked",
    "auth.sessions_revoked",
    "auth.setup",
    "auth.totp_disabled",
    "auth.totp_enabled",
    "backup.settings",
    "record.created",
    "record.deleted",
    "record.restored",
    "record.revealed",
    "record.updated",
    "role.created",
    "role.updated",
    "team.deleted",
    "team.updated",
    "token.created",
    "token.revoked",
    "user.created",
    "user.invited",
    "user.password_link",
    "user.updated",
    "record.purged",
];
const PREFIXES: &[&str] = &[
    "archive",
    "auth",
    "backup",
    "bench",
    "csrf",
    "db",
    "export",
    "field",
    "filter",
    "history",
    "import",
    "job",
    "meta",
    "object",
    "password",
    "permission",
    "query",
    "record",
    "recycle",
    "request",
    "role",
    "route",
    "session",
    "setup",
    "sort",
    "team",
    "token",
    "totp",
    "user",
];

#[test]
fn every_error_code_has_a_message() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut srcs = Vec::new();
    for c in ["kehu-core", "kehu-db", "kehu-app", "kehu-web"] {
        files(&crates.join(c).join("src"), "rs", &mut srcs);
    }
    let i18n = I18n::new();
    let mut checked = 0;
    for src in &srcs {
        for lit in src.split('"').skip(1).step_by(2) {
            let Some((prefix, rest)) = lit.split_once('.') else { continue };
            if !PREFIXES.contains(&prefix)
                || rest.is_empty()
                || !rest.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                continue;
            }
            if NOT_ERRORS.contains(&lit) {
                continue;
            }
            for lang in Lang::ALL {
                assert!(i18n.has(lang, &error_key(lit)), "error code {lit} has no message in {}", lang.code());
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
    assert_eq!(i18n.error(Lang::En, "field.invalid_email"), "Not a valid e-mail address.");
    assert_eq!(i18n.error(Lang::ZhCn, "field.invalid_email"), "邮箱格式不正确。");
}
