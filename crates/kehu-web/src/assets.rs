//! Front-end files embedded in the binary (no CDN): our stylesheet and script and vendored
//! htmx. Each is served under a name carrying its content hash, with a year-long cache.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const FILES: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    ("htmx.js", "text/javascript; charset=utf-8", include_bytes!("../assets/vendor/htmx-2.0.11.min.js")),
    ("sortable.js", "text/javascript; charset=utf-8", include_bytes!("../assets/vendor/sortable-1.15.6.min.js")),
    ("favicon.svg", "image/svg+xml", include_bytes!("../assets/favicon.svg")),
];

pub struct Assets {
    /// (logical name, hashed name, content type, bytes)
    files: Vec<(&'static str, String, &'static str, &'static [u8])>,
}

impl Default for Assets {
    fn default() -> Self {
        Self::new()
    }
}

impl Assets {
    pub fn new() -> Self {
        let files = FILES
            .iter()
            .map(|(name, ct, bytes)| {
                let d = Sha256::digest(bytes);
                let hash: String = d.iter().take(5).map(|b| format!("{b:02x}")).collect();
                let hashed = match name.rsplit_once('.') {
                    Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
                    None => format!("{name}.{hash}"),
                };
                (*name, hashed, *ct, *bytes)
            })
            .collect();
        Assets { files }
    }

    /// The URL of an asset by its logical name (`app.css` → `/assets/app.1a2b3c4d5e.css`).
    pub fn url(&self, name: &str) -> String {
        self.files.iter().find(|f| f.0 == name).map(|f| format!("/assets/{}", f.1)).unwrap_or_default()
    }
}

/// `GET /assets/{file}`
pub async fn serve(State(st): State<crate::AppState>, Path(file): Path<String>) -> Response {
    match st.assets.files.iter().find(|f| f.1 == file) {
        Some((_, _, ct, bytes)) => {
            let mut r = (*bytes).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            r
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
