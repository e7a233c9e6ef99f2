//! One error type for handlers: `WebError` wraps an `AppError`. A handler's error becomes a
//! response marked with the error; the context middleware then renders it for whoever asked —
//! JSON `{"error": {code, message, fields}}` for the API, a toast for htmx, an error page for a
//! full page load — always in the caller's language, never with internals.

use crate::ctx::Ctx;
use crate::AppState;
use askama::Template;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Json, Response};
use kehu_core::AppError;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct WebError(pub AppError);

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        WebError(e)
    }
}

impl From<kehu_db::DbError> for WebError {
    fn from(e: kehu_db::DbError) -> Self {
        WebError(e.into())
    }
}

pub type WebResult<T = Response> = Result<T, WebError>;

/// The HTTP status for an error (a few codes are more precise than their kind).
pub fn status_of(e: &AppError) -> StatusCode {
    let code = match e.code.as_str() {
        "auth.required" | "auth.invalid_token" => 401,
        "record.precondition_failed" => 412,
        "request.precondition_required" => 428,
        "request.too_large" => 413,
        "auth.throttled" => 429,
        _ => e.status(),
    };
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if self.0.kind == kehu_core::ErrorKind::Internal {
            tracing::error!(error = %self.0, "internal error");
        }
        // A neutral body; the context middleware replaces it with a translated one.
        let mut r = (status_of(&self.0), Json(json!({"error": {"code": self.0.code}}))).into_response();
        r.extensions_mut().insert(self);
        r
    }
}

#[derive(Template)]
#[template(path = "error_page.html")]
struct ErrorPage<'a> {
    lang: &'a str,
    title: String,
    message: String,
    home: String,
    css: String,
}

/// Render an error for the caller.
pub fn render_error(st: &AppState, ctx: &Ctx, e: &AppError) -> Response {
    let status = status_of(e);
    let message = st.i18n.error(ctx.lang, &e.code);
    if ctx.api {
        let fields: Vec<_> = e
            .fields
            .iter()
            .map(|f| json!({"field": f.field, "code": f.code, "message": st.i18n.error(ctx.lang, &f.code)}))
            .collect();
        let mut body = json!({"error": {"code": e.code, "message": message}});
        if !fields.is_empty() {
            body["error"]["fields"] = json!(fields);
        }
        return (status, Json(body)).into_response();
    }
    let mut text = message.clone();
    for f in &e.fields {
        text.push_str(&format!(" {}: {}", f.field, st.i18n.error(ctx.lang, &f.code)));
    }
    if ctx.htmx {
        let mut r = (status, text).into_response();
        r.headers_mut().insert(HeaderName::from_static("x-kehu-toast"), HeaderValue::from_static("error"));
        return r;
    }
    let page = ErrorPage {
        lang: ctx.lang.code(),
        title: st.i18n.get(ctx.lang, "error-title", &[]),
        message: text,
        home: st.i18n.get(ctx.lang, "error-home", &[]),
        css: st.assets.url("app.css"),
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message).into_response(),
    }
}
