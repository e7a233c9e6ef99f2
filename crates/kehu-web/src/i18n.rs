//! Translations (Fluent). Every user-facing string has a key in `locales/en/*.ftl` and
//! `locales/zh-CN/*.ftl`; a test fails when a key is missing in either. Error codes map to
//! `err-<code with '.' as '-'>`.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::borrow::Cow;

/// A language Kehu ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    ZhCn,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];
    pub fn code(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh-CN" | "zh" | "zh-cn" => Some(Lang::ZhCn),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
    /// The best language for an `Accept-Language` header (q-values honoured).
    pub fn negotiate(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok())).unwrap_or(1.0);
            let lang = if tag.starts_with("zh") {
                Some(Lang::ZhCn)
            } else if tag.starts_with("en") {
                Some(Lang::En)
            } else {
                None
            };
            if let Some(l) = lang {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, l));
                }
            }
        }
        best.map(|b| b.1)
    }
}

/// The `.ftl` files, per language, embedded in the binary.
pub const SOURCES: &[(&str, &str, &str)] = &[
    ("en", "shell", include_str!("../locales/en/shell.ftl")),
    ("en", "auth", include_str!("../locales/en/auth.ftl")),
    ("en", "admin", include_str!("../locales/en/admin.ftl")),
    ("en", "errors", include_str!("../locales/en/errors.ftl")),
    ("en", "record", include_str!("../locales/en/record.ftl")),
    ("en", "custom", include_str!("../locales/en/custom.ftl")),
    ("en", "lists", include_str!("../locales/en/lists.ftl")),
    ("zh-CN", "shell", include_str!("../locales/zh-CN/shell.ftl")),
    ("zh-CN", "auth", include_str!("../locales/zh-CN/auth.ftl")),
    ("zh-CN", "admin", include_str!("../locales/zh-CN/admin.ftl")),
    ("zh-CN", "errors", include_str!("../locales/zh-CN/errors.ftl")),
    ("zh-CN", "record", include_str!("../locales/zh-CN/record.ftl")),
    ("en", "merge", include_str!("../locales/en/merge.ftl")),
    ("zh-CN", "merge", include_str!("../locales/zh-CN/merge.ftl")),
    ("zh-CN", "custom", include_str!("../locales/zh-CN/custom.ftl")),
    ("zh-CN", "lists", include_str!("../locales/zh-CN/lists.ftl")),
    ("en", "recycle", include_str!("../locales/en/recycle.ftl")),
    ("zh-CN", "recycle", include_str!("../locales/zh-CN/recycle.ftl")),
    // archive and backup (issue #5)
    ("en", "backup", include_str!("../locales/en/backup.ftl")),
    ("zh-CN", "backup", include_str!("../locales/zh-CN/backup.ftl")),
    ("en", "import", include_str!("../locales/en/import.ftl")),
    ("zh-CN", "import", include_str!("../locales/zh-CN/import.ftl")),
];

/// Every translation file: the core's and every module's (`modules::WEB_MODULES`).
pub fn sources() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    SOURCES.iter().chain(crate::modules::WEB_MODULES.iter().flat_map(|m| m.locales.iter()))
}

pub struct I18n {
    zh: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

fn bundle(lang: Lang) -> FluentBundle<FluentResource> {
    let id: unic_langid::LanguageIdentifier = lang.code().parse().unwrap_or_default();
    let mut b = FluentBundle::new_concurrent(vec![id]);
    b.set_use_isolating(false);
    for (code, name, src) in sources() {
        if *code == lang.code() {
            // The files are compiled in; a broken one loses its broken entries (logged), and
            // the key tests fail on what is missing.
            let res = FluentResource::try_new(src.to_string()).unwrap_or_else(|(partial, errs)| {
                tracing::error!(file = %format!("locales/{code}/{name}.ftl"), ?errs, "translation file does not parse");
                partial
            });
            if let Err(errs) = b.add_resource(res) {
                tracing::error!(file = %format!("locales/{code}/{name}.ftl"), ?errs, "translation keys defined twice");
            }
        }
    }
    b
}

impl Default for I18n {
    fn default() -> Self {
        Self::new()
    }
}

impl I18n {
    /// Load both languages (a broken `.ftl` is logged; the key tests catch it first).
    pub fn new() -> Self {
        I18n { zh: bundle(Lang::ZhCn), en: bundle(Lang::En) }
    }

    fn bundle(&self, lang: Lang) -> &FluentBundle<FluentResource> {
        match lang {
            Lang::ZhCn => &self.zh,
            Lang::En => &self.en,
        }
    }

    pub fn has(&self, lang: Lang, key: &str) -> bool {
        self.bundle(lang).has_message(key)
    }

    /// The message for `key` with arguments; a missing key shows the key itself (and a test
    /// makes sure none is missing).
    pub fn get(&self, lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
        let b = self.bundle(lang);
        let Some(pattern) = b.get_message(key).and_then(|m| m.value()) else {
            tracing::warn!(key, lang = lang.code(), "missing translation");
            return key.to_string();
        };
        let mut fa = FluentArgs::new();
        for (k, v) in args {
            fa.set(*k, FluentValue::from(Cow::Borrowed(*v)));
        }
        let mut errs = Vec::new();
        let out = b.format_pattern(pattern, if args.is_empty() { None } else { Some(&fa) }, &mut errs);
        out.into_owned()
    }

    /// The message for an error: that of its first field error when it has one (the field
    /// says what is wrong), else that of its code.
    pub fn error_of(&self, lang: Lang, e: &kehu_core::AppError) -> String {
        self.error(lang, e.fields.first().map_or(e.code.as_str(), |f| f.code.as_str()))
    }

    /// The message for an error code (`field.invalid_email` → `err-field-invalid_email`).
    pub fn error(&self, lang: Lang, code: &str) -> String {
        let key = error_key(code);
        if self.has(lang, &key) {
            self.get(lang, &key, &[])
        } else {
            tracing::warn!(code, "error code without a translation");
            self.get(lang, "err-unknown", &[])
        }
    }
}

pub fn error_key(code: &str) -> String {
    format!("err-{}", code.replace('.', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(Lang::negotiate("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Lang::En));
        assert_eq!(Lang::negotiate("zh-CN,zh;q=0.9,en;q=0.8"), Some(Lang::ZhCn));
        assert_eq!(Lang::negotiate("fr-FR,en;q=0.5,zh;q=0.7"), Some(Lang::ZhCn));
        assert_eq!(Lang::negotiate("fr"), None);
    }
}
