//! The request context: who is asking (session cookie or API token), in which language, the
//! CSRF token, and the checks every request passes through — CSRF on every state-changing
//! request made with a cookie, security headers, the request id, error rendering, metrics.

use crate::error::{render_error, WebError};
use crate::i18n::Lang;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use kehu_app::auth::{same_secret, Client, SessionInfo, TokenAuth, TokenScope};
use kehu_core::perm::Actor;
use kehu_core::AppError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

pub const SESSION_COOKIE: &str = "kehu_session";
pub const CSRF_COOKIE: &str = "kehu_csrf";
pub const LANG_COOKIE: &str = "kehu_lang";
pub const FLASH_COOKIE: &str = "kehu_flash";
/// Largest form body read for the CSRF check.
const FORM_LIMIT: usize = 2 * 1024 * 1024;

/// Who is asking.
#[derive(Clone)]
pub enum Auth {
    Anonymous,
    /// Password accepted, second factor still owed.
    Pending(SessionInfo),
    Session(Box<SessionInfo>, Actor),
    Token(Box<TokenAuth>),
    /// An `Authorization` header that is not a live token.
    BadToken,
}

/// Everything a handler needs to know about the request.
#[derive(Clone)]
pub struct Ctx {
    pub lang: Lang,
    pub auth: Auth,
    /// The CSRF token to put into forms (the session's, or the pre-session cookie's).
    pub csrf: String,
    pub htmx: bool,
    pub api: bool,
    pub request_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub session_token: Option<String>,
    /// Served over TLS (directly or as configured `public_url`): cookies get `Secure`.
    pub secure: bool,
    /// `https://crm.example.com` — for links in e-mails.
    pub base_url: String,
    pub path: String,
    /// A one-shot message key from the previous redirect.
    pub flash: Option<String>,
}

impl Ctx {
    pub fn client(&self) -> Client<'_> {
        Client { ip: self.ip.as_deref(), user_agent: self.user_agent.as_deref() }
    }
    pub fn session(&self) -> Option<(&SessionInfo, &Actor)> {
        match &self.auth {
            Auth::Session(s, a) => Some((s, a)),
            _ => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Ctx>().cloned().ok_or_else(|| WebError(AppError::internal("context missing")))
    }
}

/// A signed-in user (session with the second factor passed) on a page; anyone else is sent to
/// the sign-in page (or setup on a fresh instance).
pub struct UserCtx {
    pub ctx: Ctx,
    pub session: SessionInfo,
    pub actor: Actor,
}

impl<S: Send + Sync> FromRequestParts<S> for UserCtx {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let ctx = Ctx::from_request_parts(parts, s).await.map_err(IntoResponse::into_response)?;
        match &ctx.auth {
            Auth::Session(sess, actor) => {
                Ok(UserCtx { session: (**sess).clone(), actor: actor.clone(), ctx: ctx.clone() })
            }
            Auth::Pending(_) => Err(redirect_for(&ctx, "/login/2fa")),
            _ => Err(redirect_for(&ctx, "/login")),
        }
    }
}

/// A redirect that also works for htmx requests (`HX-Redirect`).
pub fn redirect_for(ctx: &Ctx, to: &str) -> Response {
    if ctx.htmx {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(to) {
            r.headers_mut().insert(HeaderName::from_static("hx-redirect"), v);
        }
        r
    } else {
        Redirect::to(to).into_response()
    }
}

/// An API caller: an API token, or a browser session (which then needs the CSRF header on
/// writes, checked by the middleware).
pub struct ApiCaller {
    pub ctx: Ctx,
    pub actor: Actor,
    pub scopes: Vec<TokenScope>,
}

/// The scope a token needs for an API route (method and route template), decided here where
/// the caller is built, so no handler can forget it: webhooks, metadata changes and purges need
/// `admin`; reads (and the search and aggregate, POSTs that read) `read`; every other change `write`. The
/// caller's own identity (`/api/v1/me`) and the OpenAPI document need none.
pub fn required_scope(method: &axum::http::Method, route: &str) -> Option<TokenScope> {
    use axum::http::Method;
    if !route.starts_with("/api/v1/") || route == "/api/v1/me" {
        return None;
    }
    let reads = *method == Method::GET || *method == Method::HEAD;
    Some(if route.starts_with("/api/v1/webhooks") {
        TokenScope::Admin
    } else if route.starts_with("/api/v1/meta/") {
        if reads {
            TokenScope::Read
        } else {
            TokenScope::Admin
        }
    } else if route.ends_with("/purge") {
        TokenScope::Admin
    } else if reads || route == "/api/v1/{object}/search" || route == "/api/v1/{object}/aggregate" {
        TokenScope::Read
    } else {
        TokenScope::Write
    })
}

impl<S: Send + Sync> FromRequestParts<S> for ApiCaller {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let ctx = Ctx::from_request_parts(parts, s).await?;
        match &ctx.auth {
            Auth::Token(t) => {
                let route = parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str()).unwrap_or("");
                if let Some(scope) = required_scope(&parts.method, route) {
                    if !t.scopes.contains(&scope) {
                        return Err(WebError(AppError::forbidden("token.scope_missing")));
                    }
                }
                Ok(ApiCaller { actor: t.actor.clone(), scopes: t.scopes.clone(), ctx: ctx.clone() })
            }
            Auth::Session(_, a) => {
                Ok(ApiCaller { actor: a.clone(), scopes: TokenScope::ALL.to_vec(), ctx: ctx.clone() })
            }
            _ => Err(WebError(AppError::new(kehu_core::ErrorKind::Forbidden, "auth.required"))),
        }
    }
}

pub fn cookies(headers: &HeaderMap) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for v in headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for pair in s.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                out.entry(k.trim().to_string()).or_insert_with(|| v.trim().to_string());
            }
        }
    }
    out
}

/// A `Set-Cookie` value: Path=/, SameSite=Lax, HttpOnly unless `script` may read it.
pub fn cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool, http_only: bool) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; SameSite=Lax");
    if let Some(a) = max_age {
        s.push_str(&format!("; Max-Age={a}"));
    }
    if http_only {
        s.push_str("; HttpOnly");
    }
    if secure {
        s.push_str("; Secure");
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Build the context, check CSRF, run the handler, then render errors and add headers.
pub async fn context(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let method = req.method().clone();
    let request_id = header_str(req.headers(), "x-request-id")
        .filter(|s| s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let span = tracing::info_span!("request", id = %request_id);
    let (resp, ctx) = {
        use tracing::Instrument;
        build_and_run(&st, req, &request_id, next).instrument(span.clone()).await
    };
    let mut resp = match ctx {
        Some(ctx) => finish(&st, &ctx, resp),
        None => resp,
    };
    security_headers(resp.headers_mut(), st.cfg.secure());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }
    let elapsed = started.elapsed();
    let route = route.as_deref().unwrap_or("(unmatched)");
    let status = resp.status().as_u16();
    st.metrics.observe(method.as_str(), route, status, elapsed);
    // Only the route template is logged: paths can carry reset tokens, queries anything.
    span.in_scope(|| tracing::info!(method = %method, route, status, ms = elapsed.as_secs_f64() * 1000.0, "request"));
    resp
}

async fn build_and_run(st: &AppState, req: Request, request_id: &str, next: Next) -> (Response, Option<Ctx>) {
    let (mut parts, body) = req.into_parts();
    let jar = cookies(&parts.headers);
    let path = parts.uri.path().to_string();
    let api = path.starts_with("/api/");
    let htmx = parts.headers.contains_key("hx-request");
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    // The proxy appends the address it saw: the last entry is the one to trust, the first is
    // whatever the client wrote.
    let forwarded = header_str(&parts.headers, "x-forwarded-for")
        .and_then(|s| s.rsplit(',').next().map(|x| x.trim().to_string()))
        .filter(|x| st.cfg.trust_proxy && x.parse::<std::net::IpAddr>().is_ok());
    let ip = forwarded.or(peer);
    let user_agent = header_str(&parts.headers, "user-agent");
    // Only the Bearer scheme is ours; other schemes (a proxy's Basic auth) are ignored.
    let bearer = header_str(&parts.headers, "authorization")
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).map(|t| t.trim().to_string()));
    let session_token = jar.get(SESSION_COOKIE).cloned().filter(|s| !s.is_empty());
    let mut auth = Auth::Anonymous;
    let mut lang = None;
    if let Some(tok) = &bearer {
        auth = match st.app.token_auth(tok).await {
            Ok(Some(t)) => {
                lang = Lang::parse(&t.user.locale);
                Auth::Token(Box::new(t))
            }
            Ok(None) => Auth::BadToken,
            Err(e) => return (WebError(e).into_response(), None),
        };
        if matches!(auth, Auth::BadToken) {
            // A wrong token never falls back to the cookie, and never reaches a handler.
            let ctx_lang = accept_lang(&parts.headers);
            let ctx = bare_ctx(st, &parts, request_id, ctx_lang);
            return (
                WebError(AppError::new(kehu_core::ErrorKind::Forbidden, "auth.invalid_token")).into_response(),
                Some(ctx),
            );
        }
    } else if let Some(tok) = &session_token {
        match st.app.session(tok).await {
            Ok(Some(s)) if s.mfa_passed => match st.app.actor_of(&s.user).await {
                Ok(a) => {
                    lang = Lang::parse(&s.user.locale);
                    auth = Auth::Session(Box::new(s), a);
                }
                Err(e) => tracing::warn!(error = %e, "session user has no actor"),
            },
            Ok(Some(s)) => {
                lang = Lang::parse(&s.user.locale);
                auth = Auth::Pending(s);
            }
            Ok(None) => {}
            Err(e) => return (WebError(e).into_response(), None),
        }
    }
    let accept = header_str(&parts.headers, "accept-language");
    let lang = lang
        .or_else(|| if api { None } else { jar.get(LANG_COOKIE).and_then(|l| Lang::parse(l)) })
        .or_else(|| accept.as_deref().and_then(Lang::negotiate))
        .unwrap_or_default();
    let pre_csrf = jar.get(CSRF_COOKIE).cloned().filter(|s| s.len() >= 32);
    let (csrf, new_csrf_cookie) = match &auth {
        Auth::Session(s, _) => (s.csrf.clone(), None),
        Auth::Pending(s) => (s.csrf.clone(), None),
        _ => match &pre_csrf {
            Some(c) => (c.clone(), None),
            None => {
                let t = new_csrf();
                (t.clone(), Some(t))
            }
        },
    };
    let ctx = Ctx {
        lang,
        auth,
        csrf,
        htmx,
        api,
        request_id: request_id.to_string(),
        ip,
        user_agent,
        session_token,
        secure: st.cfg.secure(),
        base_url: st.cfg.base_url(&parts.headers),
        path,
        flash: jar.get(FLASH_COOKIE).cloned().filter(|f| f.starts_with("flash-") && f.len() < 64),
    };
    // CSRF: every state-changing request that relies on a cookie carries the token.
    let body = if !is_safe(&parts.method) && !matches!(ctx.auth, Auth::Token(_)) {
        let cross_site = header_str(&parts.headers, "sec-fetch-site").is_some_and(|v| v == "cross-site");
        let (given, body) = match header_str(&parts.headers, "x-csrf-token") {
            Some(h) => (Some(h), body),
            None => {
                let is_form = header_str(&parts.headers, "content-type")
                    .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
                if is_form {
                    let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
                        Ok(b) => b,
                        Err(_) => return (WebError(AppError::invalid("request.too_large")).into_response(), Some(ctx)),
                    };
                    (form_value(&bytes, "_csrf"), Body::from(bytes))
                } else {
                    (None, body)
                }
            }
        };
        let expected = match &ctx.auth {
            Auth::Session(..) | Auth::Pending(_) => Some(ctx.csrf.clone()),
            _ => pre_csrf.clone(),
        };
        let ok = !cross_site && matches!((&given, &expected), (Some(g), Some(e)) if same_secret(g, e));
        if !ok {
            tracing::warn!(route = %ctx.path.split('/').take(3).collect::<Vec<_>>().join("/"), "csrf check failed");
            return (WebError(AppError::forbidden("csrf.invalid")).into_response(), Some(ctx));
        }
        body
    } else {
        body
    };
    parts.extensions.insert(ctx.clone());
    let mut resp = next.run(Request::from_parts(parts, body)).await;
    if let Some(t) = new_csrf_cookie {
        resp.headers_mut().append(header::SET_COOKIE, cookie(CSRF_COOKIE, &t, None, ctx.secure, true));
    }
    (resp, Some(ctx))
}

fn finish(st: &AppState, ctx: &Ctx, mut resp: Response) -> Response {
    if let Some(err) = resp.extensions_mut().remove::<WebError>() {
        resp = render_error(st, ctx, &err.0);
    }
    let is_page = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if ctx.flash.is_some() && is_page && resp.status().is_success() && !ctx.htmx {
        resp.headers_mut().append(header::SET_COOKIE, cookie(FLASH_COOKIE, "", Some(0), ctx.secure, true));
    }
    resp
}

fn accept_lang(h: &HeaderMap) -> Lang {
    header_str(h, "accept-language").as_deref().and_then(Lang::negotiate).unwrap_or_default()
}

/// A context for a request refused before it was understood (to render its error).
fn bare_ctx(st: &AppState, parts: &Parts, request_id: &str, lang: Lang) -> Ctx {
    Ctx {
        lang,
        auth: Auth::BadToken,
        csrf: String::new(),
        htmx: false,
        api: parts.uri.path().starts_with("/api/"),
        request_id: request_id.to_string(),
        ip: None,
        user_agent: None,
        session_token: None,
        secure: st.cfg.secure(),
        base_url: String::new(),
        path: parts.uri.path().to_string(),
        flash: None,
    }
}

pub fn new_csrf() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// One value of an url-encoded form body.
pub fn form_value(body: &Bytes, key: &str) -> Option<String> {
    url::form_urlencoded::parse(body).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

fn security_headers(h: &mut HeaderMap, secure: bool) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; \
         connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()");
    if secure {
        set(h, "strict-transport-security", "max-age=31536000; includeSubDomains");
    }
    // Pages can show secrets (a new API token, recovery codes, set-password links): never cache
    // them. Assets carry their own long-lived header.
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
}
