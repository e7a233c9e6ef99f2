//! The app shell every page is drawn in: sidebar of objects and modules, top bar (search,
//! create, user menu with the language switch), breadcrumbs and toasts. `Shell` also carries
//! translation helpers for the templates (`shell.t("nav-home")`).

use crate::ctx::Ctx;
use crate::i18n::{I18n, Lang};
use crate::AppState;
use kehu_app::auth::SessionInfo;
use kehu_core::perm::{Action, Actor};
use std::sync::Arc;

pub struct NavItem {
    pub label: String,
    pub href: String,
    pub icon: &'static str,
    pub active: bool,
}

pub struct Crumb {
    pub label: String,
    pub href: Option<String>,
}

pub struct Shell {
    pub lang: Lang,
    i18n: Arc<I18n>,
    pub title: String,
    pub css: String,
    pub js: String,
    pub htmx: String,
    pub favicon: String,
    pub csrf: String,
    pub user_name: String,
    pub user_email: String,
    pub user_initial: String,
    pub org_name: String,
    pub nav: Vec<NavItem>,
    pub admin_nav: Vec<NavItem>,
    pub create: Vec<NavItem>,
    pub crumbs: Vec<Crumb>,
    pub flash: Option<String>,
    pub time_zone: chrono_tz::Tz,
    /// Where the language switch returns to.
    pub back: String,
    /// Unread notifications (the bell's badge).
    pub unread: u64,
}

impl Shell {
    /// The shell for a signed-in user.
    pub async fn new(st: &AppState, ctx: &Ctx, session: &SessionInfo, actor: &Actor, title: String) -> Shell {
        let mut shell = Shell::bare(st, ctx, title);
        shell.user_name = session.user.name.clone();
        shell.user_email = session.user.email.clone();
        shell.user_initial = session.user.name.chars().next().map(|c| c.to_uppercase().to_string()).unwrap_or_default();
        shell.time_zone = session.user.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
        shell.unread = st.app.unread_notifications(session.user.id).await.unwrap_or(0);
        shell.org_name = st.app.setting("org_name").await.ok().flatten().unwrap_or_else(|| "Kehu".into());
        let path = ctx.path.as_str();
        let item = |label: String, href: String, icon: &'static str| {
            let active = if href == "/" { path == "/" } else { path == href || path.starts_with(&format!("{href}/")) };
            NavItem { label, href, icon, active }
        };
        shell.nav.push(item(shell.t("nav-home"), "/".into(), "home"));
        // The recycle bin shows records of the objects the user may delete.
        let mut deletes_any = false;
        if let Ok(schema) = st.app.schema().await {
            for o in schema.objects() {
                deletes_any |= actor.check(o, Action::Delete).is_ok();
                let Ok(_) = actor.check(o, Action::Read) else { continue };
                let label = o.plural.get(ctx.lang.code()).to_string();
                let icon = match o.api_name.as_str() {
                    "company" => "building",
                    "contact" => "user",
                    "activity" => "activity",
                    _ => kehu_app::metadata::ICONS.iter().copied().find(|i| *i == o.icon).unwrap_or("box"),
                };
                shell.nav.push(item(label, format!("/o/{}", o.api_name), icon));
                if actor.check(o, Action::Create).is_ok() {
                    shell.create.push(NavItem {
                        label: o.label.get(ctx.lang.code()).to_string(),
                        href: format!("/o/{}/new", o.api_name),
                        icon,
                        active: false,
                    });
                }
            }
        }
        if deletes_any {
            shell.nav.push(item(shell.t("nav-recycle-bin"), "/recycle-bin".into(), "trash"));
        }
        if actor.can_manage_users() {
            shell.admin_nav.push(item(shell.t("nav-users"), "/admin/users".into(), "users"));
            shell.admin_nav.push(item(shell.t("nav-teams"), "/admin/teams".into(), "tree"));
            shell.admin_nav.push(item(shell.t("nav-roles"), "/admin/roles".into(), "shield"));
            shell.admin_nav.push(item(shell.t("nav-mail"), "/admin/mail".into(), "mail"));
        }
        // archive and backup (issue #5)
        if actor.is_admin() {
            shell.admin_nav.push(item(shell.t("nav-backup"), "/admin/backup".into(), "clock"));
        }
        for e in crate::modules::WEB_MODULES.iter().flat_map(|m| m.admin_nav.iter()) {
            if (e.visible)(actor) {
                shell.admin_nav.push(item(shell.t(e.label), e.href.into(), e.icon));
            }
        }
        if actor.can_manage_metadata() {
            shell.admin_nav.push(item(shell.t("custom-nav"), "/settings/objects".into(), "settings"));
        }
        shell.admin_nav.push(item(shell.t("nav-api-docs"), "/api/docs".into(), "code"));
        shell
    }

    /// The shell without a user (sign-in, setup).
    pub fn bare(st: &AppState, ctx: &Ctx, title: String) -> Shell {
        Shell {
            lang: ctx.lang,
            i18n: st.i18n.clone(),
            title,
            css: st.assets.url("app.css"),
            js: st.assets.url("app.js"),
            htmx: st.assets.url("htmx.js"),
            favicon: st.assets.url("favicon.svg"),
            csrf: ctx.csrf.clone(),
            user_name: String::new(),
            user_email: String::new(),
            user_initial: String::new(),
            org_name: String::new(),
            nav: Vec::new(),
            admin_nav: Vec::new(),
            create: Vec::new(),
            crumbs: Vec::new(),
            flash: ctx.flash.as_deref().filter(|k| st.i18n.has(ctx.lang, k)).map(|k| st.i18n.get(ctx.lang, k, &[])),
            time_zone: chrono_tz::Asia::Shanghai,
            back: ctx.path.clone(),
            unread: 0,
        }
    }

    /// A bare shell (for partials) that shows times in the user's zone.
    pub fn with_user(mut self, session: &SessionInfo) -> Self {
        self.time_zone = session.user.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
        self
    }

    pub fn crumb(mut self, label: String, href: Option<&str>) -> Self {
        self.crumbs.push(Crumb { label, href: href.map(str::to_owned) });
        self
    }

    pub fn t(&self, key: &str) -> String {
        self.i18n.get(self.lang, key, &[])
    }
    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        self.i18n.get(self.lang, key, &[(name, value)])
    }
    pub fn err(&self, code: &str) -> String {
        self.i18n.error(self.lang, code)
    }
    pub fn lang_code(&self) -> &'static str {
        self.lang.code()
    }
    pub fn other_lang(&self) -> &'static str {
        match self.lang {
            Lang::ZhCn => "en",
            Lang::En => "zh-CN",
        }
    }
    pub fn other_lang_name(&self) -> &'static str {
        match self.lang {
            Lang::ZhCn => "English",
            Lang::En => "简体中文",
        }
    }
    /// A UTC-microsecond timestamp in the user's time zone.
    pub fn time(&self, micros: &i64) -> String {
        chrono::DateTime::from_timestamp_micros(*micros)
            .map(|d| d.with_timezone(&self.time_zone).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    }
    pub fn time_opt(&self, micros: &Option<i64>) -> String {
        micros.map(|m| self.time(&m)).unwrap_or_else(|| "—".into())
    }
}

/// Render a template into a page response.
pub fn render(t: &impl askama::Template) -> crate::error::WebResult {
    use axum::response::IntoResponse;
    t.render()
        .map(|h| axum::response::Html(h).into_response())
        .map_err(|e| kehu_core::AppError::internal(format!("template: {e}")).into())
}

/// A form being shown again: submitted values and messages per field.
#[derive(Default)]
pub struct Form {
    pub values: std::collections::HashMap<String, String>,
    pub errors: std::collections::HashMap<String, String>,
    pub general: Option<String>,
}

impl Form {
    pub fn with(values: &[(&str, &str)]) -> Form {
        Form { values: values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() }
    }
    pub fn v(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }
    pub fn e(&self, name: &str) -> &str {
        self.errors.get(name).map(String::as_str).unwrap_or("")
    }
    pub fn has(&self, name: &str) -> bool {
        self.errors.contains_key(name)
    }
    /// Spread an error over the form: field errors by field, the rest as the general message.
    pub fn fail(mut self, i18n: &I18n, lang: Lang, e: &kehu_core::AppError) -> Form {
        if e.fields.is_empty() {
            self.general = Some(i18n.error(lang, &e.code));
        }
        for f in &e.fields {
            self.errors.insert(f.field.clone(), i18n.error(lang, &f.code));
        }
        self
    }
}
