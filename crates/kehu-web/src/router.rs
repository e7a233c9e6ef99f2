//! Every route Kehu serves, in one place. API routes are registered through `OpenApiRouter`
//! from their `#[utoipa::path]` annotations, so a route cannot exist without its documentation.

use crate::api::{self, meta, records};
use crate::http::{account, admin, auth, custom, home, ops};
use crate::{assets, ctx, AppState, WebConfig};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use kehu_app::App;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The documented routes (API and operations) and their OpenAPI document.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(api::openapi::ApiDoc::openapi())
        .routes(routes!(records::list_records, records::create_record))
        .routes(routes!(records::search_records))
        .routes(routes!(records::aggregate_records))
        .routes(routes!(records::get_record, records::update_record, records::delete_record))
        .routes(routes!(records::restore_record))
        .routes(routes!(api::history::record_history))
        .routes(routes!(api::history::revert_change))
        .routes(routes!(api::history::purge_record))
        .routes(routes!(api::merge::merge_records))
        .routes(routes!(meta::list_objects, meta::create_object))
        .routes(routes!(meta::get_object))
        .routes(routes!(meta::add_field))
        .routes(routes!(meta::update_field))
        .routes(routes!(meta::me))
        .routes(routes!(api::custom::update_object, api::custom::delete_object))
        .routes(routes!(api::custom::restore_object))
        .routes(routes!(api::custom::reorder_fields))
        .routes(routes!(api::openapi::openapi_json))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics));
    crate::modules::WEB_MODULES.iter().fold(api, |r, m| (m.api)(r)).split_for_parts()
}

/// The whole application.
pub fn router(app: Arc<App>, cfg: WebConfig) -> Router {
    let (api, doc) = api_routes();
    let mut doc = serde_json::to_value(&doc).unwrap_or_default();
    doc["info"]["version"] = serde_json::json!(env!("CARGO_PKG_VERSION"));
    let state = AppState {
        app,
        i18n: Arc::new(crate::i18n::I18n::new()),
        cfg: Arc::new(cfg),
        metrics: Arc::new(Default::default()),
        assets: Arc::new(assets::Assets::new()),
        openapi: Arc::new(doc),
    };
    let pages = Router::new()
        .route("/", get(home::home))
        .route("/setup", get(auth::setup_page).post(auth::setup))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/login/2fa", get(auth::mfa_page).post(auth::mfa))
        .route("/logout", post(auth::logout))
        .route("/language", post(auth::language))
        .route("/password/forgot", get(auth::forgot_page).post(auth::forgot))
        .route("/password/reset/{token}", get(auth::reset_page).post(auth::reset))
        .route("/search", get(home::search))
        .route("/search/suggest", get(home::suggest))
        .route("/account", get(account::profile_page).post(account::profile))
        .route("/account/password", post(account::change_password))
        .route("/account/security", get(account::security_page))
        .route("/account/2fa/begin", post(account::totp_begin))
        .route("/account/2fa/confirm", post(account::totp_confirm))
        .route("/account/2fa/disable", post(account::totp_disable))
        .route("/account/sessions/{id}/revoke", post(account::revoke_session))
        .route("/account/sessions/revoke-others", post(account::revoke_others))
        .route("/account/tokens", get(account::tokens_page).post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/admin/users", get(admin::users).post(admin::invite))
        .route("/admin/users/{id}", get(admin::user_page).post(admin::user_update))
        .route("/admin/users/{id}/active", post(admin::user_active))
        .route("/admin/users/{id}/link", post(admin::user_link))
        .route("/admin/teams", get(admin::teams).post(admin::team_create))
        .route("/admin/teams/{id}", post(admin::team_update))
        .route("/admin/teams/{id}/delete", post(admin::team_delete))
        .route("/admin/roles", get(admin::roles).post(admin::role_create))
        .route("/admin/roles/{key}", get(admin::role_page).post(admin::role_update))
        .route("/admin/mail", get(admin::mail))
        // archive and backup (issue #5)
        .route("/admin/backup", get(crate::http::backup::page).post(crate::http::backup::save))
        .route("/admin/backup/run", post(crate::http::backup::run))
        .route("/o/{object}", get(crate::http::lists::list))
        .route("/o/{object}/filter-row", get(crate::http::lists::filter_row))
        .route("/o/{object}/bulk-value", get(crate::http::lists::value_input))
        .route("/o/{object}/bulk", post(crate::http::lists::bulk))
        .route("/o/{object}/count", get(crate::http::lists::count))
        .route("/o/{object}/export", get(crate::http::lists::export))
        .route("/o/{object}/views", post(crate::http::lists::save_view))
        .route("/o/{object}/views/{id}", post(crate::http::lists::update_view))
        .route("/o/{object}/views/{id}/delete", post(crate::http::lists::delete_view))
        .route("/jobs/{id}", get(crate::http::lists::job))
        // --- import (issue #5) ---
        .route(
            "/o/{object}/import",
            get(crate::http::import::upload_page)
                .post(crate::http::import::upload)
                .layer(axum::extract::DefaultBodyLimit::max(crate::http::import::MAX_UPLOAD + (1 << 20))),
        )
        .route("/o/{object}/imports", get(crate::http::import::history))
        .route("/imports/{id}", get(crate::http::import::show))
        .route("/imports/{id}/map", post(crate::http::import::map))
        .route("/imports/{id}/mappings/{mapping}/delete", post(crate::http::import::delete_mapping))
        .route("/imports/{id}/check", get(crate::http::import::check).post(crate::http::import::check_again))
        .route("/imports/{id}/check/progress", get(crate::http::import::check_progress))
        .route("/imports/{id}/start", post(crate::http::import::start))
        .route("/imports/{id}/progress", get(crate::http::import::progress))
        .route("/imports/{id}/failed.csv", get(crate::http::import::failed_csv))
        .route("/imports/{id}/undo", post(crate::http::import::undo))
        // --- end import ---
        .route("/pick/{object}", get(crate::http::picker::pick))
        .route("/o/{object}/board/column", get(crate::http::lists::board::column))
        .route("/o/{object}/{id}/move", post(crate::http::lists::board::move_card))
        .route("/o/{object}/new", get(crate::http::records::new_page).post(crate::http::records::create))
        .route("/o/{object}/{id}", get(crate::http::record::show))
        .route("/o/{object}/{id}/reveal", post(crate::http::record::reveal))
        .route("/o/{object}/{id}/fields", get(crate::http::record::fields))
        .route("/o/{object}/{id}/field/{field}", get(crate::http::record::edit).post(crate::http::record::save))
        .route("/o/{object}/{id}/delete", post(crate::http::record::delete))
        .route("/o/{object}/{id}/timeline", get(crate::http::record::timeline))
        .route("/o/{object}/{id}/history", get(crate::http::record::history))
        .route("/o/{object}/{id}/history/{change}/revert", post(crate::http::record::revert))
        .route("/recycle-bin", get(crate::http::recycle::bin))
        .route("/recycle-bin/restore", post(crate::http::recycle::restore))
        .route("/recycle-bin/purge", post(crate::http::recycle::purge))
        .route("/recycle-bin/retention", post(crate::http::recycle::retention))
        .route("/o/{object}/{id}/activities", post(crate::http::record::log_activity))
        .route("/activities/{id}/done", post(crate::http::record::task_done))
        .route("/notifications", get(crate::http::record::notifications))
        .route("/notifications/read", post(crate::http::record::read_all))
        .route("/notifications/{id}", get(crate::http::record::open_notification))
        .route("/o/{object}/duplicates", get(crate::http::merge::duplicates))
        .route("/o/{object}/duplicates/check", get(crate::http::merge::check))
        .route("/o/{object}/merge", get(crate::http::merge::merge_page).post(crate::http::merge::merge))
        .route("/settings/objects", get(custom::objects).post(custom::create_object))
        .route("/settings/objects/{object}", get(custom::object).post(custom::update_object))
        .route("/settings/objects/{object}/delete", post(custom::delete_object))
        .route("/settings/objects/{object}/restore", post(custom::restore_object))
        .route("/settings/objects/{object}/order", post(custom::reorder))
        .route("/settings/objects/{object}/fields", post(custom::add_field))
        .route("/settings/objects/{object}/fields/new", get(custom::new_field))
        .route("/settings/objects/{object}/fields/{field}", get(custom::edit_field).post(custom::save_field))
        .route("/settings/objects/{object}/fields/{field}/move", post(custom::move_field))
        .route("/settings/objects/{object}/fields/{field}/archive", post(custom::archive_field))
        .route("/api/docs", get(api::docs::docs))
        .route("/assets/{file}", get(assets::serve));
    let pages = crate::modules::WEB_MODULES.iter().fold(pages, |r, m| (m.pages)(r));
    pages.merge(api).fallback(not_found).layer(from_fn_with_state(state.clone(), ctx::context)).with_state(state)
}

async fn not_found() -> crate::error::WebError {
    crate::error::WebError(kehu_core::AppError::not_found("route.not_found"))
}
