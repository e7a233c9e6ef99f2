//! The HTTP layer: pages (askama + htmx), the JSON API with its OpenAPI document, sign-in and
//! sessions, CSRF, translations, embedded assets and the operational endpoints.
//!
//! Must never: touch SQL, check a permission itself instead of letting the engine do it, or log
//! a password, token or session id.

pub mod api;
pub mod assets;
pub mod ctx;
pub mod error;
pub mod http;
pub mod i18n;
pub mod modules;
mod router;
pub mod shell;

pub use router::{api_routes, router};

use axum::http::HeaderMap;
use kehu_app::App;
use std::sync::Arc;

/// Web settings from the configuration.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// The address users reach Kehu at (`https://crm.example.com`); used for links in e-mails
    /// and to mark cookies `Secure`. Without it, links use the request's `Host`.
    pub public_url: Option<String>,
    /// Take the client address from `X-Forwarded-For` (behind a reverse proxy).
    pub trust_proxy: bool,
    /// A bearer token that opens `/metrics` to non-local scrapers.
    pub metrics_token: Option<String>,
    /// Whether outgoing mail can be delivered (SMTP configured).
    pub smtp_configured: bool,
}

impl WebConfig {
    pub fn secure(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
            .unwrap_or("localhost");
        format!("http://{host}")
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<App>,
    pub i18n: Arc<i18n::I18n>,
    pub cfg: Arc<WebConfig>,
    pub metrics: Arc<http::ops::Metrics>,
    pub assets: Arc<assets::Assets>,
    /// The static part of the OpenAPI document (from the handlers).
    pub openapi: Arc<serde_json::Value>,
}
