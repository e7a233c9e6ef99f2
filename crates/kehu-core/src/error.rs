//! One error type with stable codes. The web layer turns a code into a message in the user's
//! language; nothing here carries SQL, paths or stack traces.

use serde::Serialize;
use std::fmt;

/// The class of an error, which decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad input (400/422).
    Invalid,
    /// The actor may not do this (403).
    Forbidden,
    /// No such thing, or not visible to the actor (404).
    NotFound,
    /// A concurrent change or a duplicate (409).
    Conflict,
    /// Something on our side (500); details go to the log, never to the client.
    Internal,
}

/// A problem with one field of the input, e.g. `{field: "email", code: "field.invalid_email"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.into() }
    }
}

/// Every error Kehu returns: a stable code, a kind, optional field errors and a log-only detail.
#[derive(Debug, Clone, Serialize)]
pub struct AppError {
    pub code: String,
    pub kind: ErrorKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// Extra context for logs (never shown to clients).
    #[serde(skip)]
    pub detail: Option<String>,
}

impl AppError {
    pub fn new(kind: ErrorKind, code: impl Into<String>) -> Self {
        Self { code: code.into(), kind, fields: Vec::new(), detail: None }
    }
    pub fn invalid(code: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code)
    }
    pub fn forbidden(code: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code)
    }
    pub fn not_found(code: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code)
    }
    pub fn conflict(code: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self { detail: Some(detail.into()), ..Self::new(ErrorKind::Internal, "internal") }
    }
    /// A validation error carrying one or more field errors.
    pub fn fields(fields: Vec<FieldError>) -> Self {
        Self { fields, ..Self::invalid("record.invalid") }
    }
    pub fn field(field: impl Into<String>, code: impl Into<String>) -> Self {
        Self::fields(vec![FieldError::new(field, code)])
    }
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    /// The HTTP status this error maps to.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::Invalid => 422,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Internal => 500,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for fe in &self.fields {
            write!(f, " [{}: {}]", fe.field, fe.code)?;
        }
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

pub type Result<T, E = AppError> = std::result::Result<T, E>;
