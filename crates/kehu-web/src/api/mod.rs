//! The REST API `/api/v1`: records of every object (standard and custom), metadata, and the
//! OpenAPI document generated from these handlers plus object metadata. Errors are JSON
//! `{"error": {"code", "message", "fields"?}}` in the caller's language.

pub mod custom;
pub mod docs;
pub mod history;
pub mod merge;
pub mod meta;
pub mod openapi;
pub mod records;
pub mod webhooks;

use crate::error::WebError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use kehu_core::AppError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// Largest JSON body accepted.
const JSON_LIMIT: usize = 4 * 1024 * 1024;

/// A JSON request body; malformed JSON, a wrong shape or unknown members are a 422 with a code
/// (no mass assignment).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = WebError;
    async fn from_request(req: Request, s: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(AppError::invalid("request.json_expected").into());
        }
        let bytes = Bytes::from_request(req, s).await.map_err(|_| AppError::invalid("request.too_large"))?;
        if bytes.len() > JSON_LIMIT {
            return Err(AppError::invalid("request.too_large").into());
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            let code = if e.to_string().starts_with("unknown field") {
                "request.unknown_field"
            } else {
                "request.invalid_json"
            };
            WebError(AppError::invalid(code).with_detail(e.to_string()))
        })
    }
}

/// The error body every API error has.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `field.invalid_email`.
    pub code: String,
    /// The message in the caller's language.
    pub message: String,
    /// Problems with single fields of the input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldErrorBody>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub code: String,
    pub message: String,
}
