//! The web half of the module manifest (the app half is `kehu_app::modules`): what each module
//! adds to the web layer — its translations, its pages, its documented API routes and its
//! entries in the navigation. `router`, `i18n` and `shell` iterate `WEB_MODULES`, so adding a
//! module's web side is its folders (`http/<module>/`, `api/<module>.rs`,
//! `templates/<module>/`, `locales/{en,zh-CN}/<module>.ftl`) plus one entry here.

use crate::AppState;
use axum::routing::{get, post};
use axum::Router;
use kehu_core::perm::Actor;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An entry of the administration menu: label key, link, icon, who sees it.
pub struct NavEntry {
    pub label: &'static str,
    pub href: &'static str,
    pub icon: &'static str,
    pub visible: fn(&Actor) -> bool,
}

/// What a module adds to the web layer.
pub struct WebModule {
    pub name: &'static str,
    /// (language, file name, Fluent source) of its translations.
    pub locales: &'static [(&'static str, &'static str, &'static str)],
    /// Its pages.
    pub pages: fn(Router<AppState>) -> Router<AppState>,
    /// Its documented API routes (each with its `#[utoipa::path]`).
    pub api: fn(OpenApiRouter<AppState>) -> OpenApiRouter<AppState>,
    /// Its entries in the administration menu.
    pub admin_nav: &'static [NavEntry],
}

/// Every module's web side, in menu order.
pub const WEB_MODULES: &[WebModule] = &[WebModule {
    name: "webhooks",
    locales: &[
        ("en", "webhooks", include_str!("../locales/en/webhooks.ftl")),
        ("zh-CN", "webhooks", include_str!("../locales/zh-CN/webhooks.ftl")),
    ],
    pages: webhook_pages,
    api: webhook_api,
    admin_nav: &[NavEntry { label: "nav-webhooks", href: "/admin/webhooks", icon: "globe", visible: Actor::is_admin }],
}];

fn webhook_pages(r: Router<AppState>) -> Router<AppState> {
    use crate::http::webhooks as w;
    r.route("/admin/webhooks", get(w::page).post(w::create))
        .route("/admin/webhooks/allow", post(w::allow))
        .route("/admin/webhooks/{id}", get(w::detail).post(w::update))
        .route("/admin/webhooks/{id}/test", post(w::test))
        .route("/admin/webhooks/{id}/rotate", post(w::rotate))
        .route("/admin/webhooks/{id}/delete", post(w::delete))
        .route("/admin/webhooks/{id}/replay", post(w::replay))
}

fn webhook_api(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    use crate::api::webhooks as w;
    r.routes(routes!(w::list_webhooks, w::create_webhook))
        .routes(routes!(w::get_webhook, w::update_webhook, w::delete_webhook))
        .routes(routes!(w::rotate_webhook))
        .routes(routes!(w::test_webhook))
        .routes(routes!(w::list_deliveries))
        .routes(routes!(w::replay_webhook))
}
