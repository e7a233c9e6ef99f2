//! Pages before sign-in: first-run setup, sign-in and the second factor, sign-out, forgotten
//! and reset passwords, and the language switch.

use crate::ctx::{cookie, redirect_for, Auth, Ctx, FLASH_COOKIE, LANG_COOKIE, SESSION_COOKIE};
use crate::error::WebResult;
use crate::i18n::Lang;
use crate::shell::{render, Form, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form as FormBody;
use kehu_app::auth::{NewSession, SetupRequest};
use serde::Deserialize;

/// Time zones offered at setup and in the profile (the common ones first).
pub fn time_zones() -> Vec<String> {
    let first = [
        "Asia/Shanghai",
        "Asia/Hong_Kong",
        "Asia/Taipei",
        "Asia/Singapore",
        "Asia/Tokyo",
        "Europe/London",
        "Europe/Berlin",
        "America/New_York",
        "America/Los_Angeles",
        "UTC",
    ];
    let mut zones: Vec<String> = first.iter().map(|s| s.to_string()).collect();
    for tz in chrono_tz::TZ_VARIANTS {
        let n = tz.name();
        if !first.contains(&n) && n.contains('/') && !n.starts_with("Etc/") {
            zones.push(n.to_string());
        }
    }
    zones
}

/// The address put into e-mailed links: `public_url` when configured, else the address the
/// administrator used at setup (or, after a command-line setup, the address a signed-in user
/// first made a link from) — never a `Host` header an anonymous caller chose: a forged `Host`
/// on "forgot password" would otherwise mail the victim a link to the attacker's site.
pub async fn link_base(st: &AppState, ctx: &Ctx) -> Option<String> {
    if let Some(u) = &st.cfg.public_url {
        return Some(u.trim_end_matches('/').to_string());
    }
    if let Ok(Some(u)) = st.app.setting("base_url").await {
        return Some(u);
    }
    if ctx.session().is_some() {
        let _ = st.app.remember_base_url(&ctx.base_url).await;
        return Some(ctx.base_url.clone());
    }
    None
}

/// Set the session cookie for a new session (and drop the pre-session CSRF cookie's role).
fn with_session(ctx: &Ctx, s: &NewSession, mut resp: Response) -> Response {
    resp.headers_mut().append(SET_COOKIE, cookie(SESSION_COOKIE, &s.token, None, ctx.secure, true));
    resp
}

fn flash(ctx: &Ctx, key: &str, mut resp: Response) -> Response {
    resp.headers_mut().append(SET_COOKIE, cookie(FLASH_COOKIE, key, Some(60), ctx.secure, true));
    resp
}

pub fn redirect_flash(ctx: &Ctx, to: &str, key: &str) -> Response {
    flash(ctx, key, redirect_for(ctx, to))
}

#[derive(Template)]
#[template(path = "auth/setup.html")]
struct SetupPage {
    shell: Shell,
    form: Form,
    zones: Vec<String>,
}

/// `GET /setup` — only while no administrator exists.
pub async fn setup_page(State(st): State<AppState>, ctx: Ctx) -> WebResult {
    if !st.app.needs_setup().await? {
        return Ok(Redirect::to("/login").into_response());
    }
    let form = Form::with(&[("locale", ctx.lang.code()), ("time_zone", "Asia/Shanghai")]);
    let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "setup-title", &[]));
    render(&SetupPage { shell, form, zones: time_zones() })
}

#[derive(Deserialize)]
pub struct SetupForm {
    org_name: String,
    name: String,
    email: String,
    password: String,
    locale: String,
    time_zone: String,
}

/// `POST /setup`
pub async fn setup(State(st): State<AppState>, ctx: Ctx, FormBody(f): FormBody<SetupForm>) -> WebResult {
    if !st.app.needs_setup().await? {
        return Ok(Redirect::to("/login").into_response());
    }
    let req = SetupRequest {
        org_name: f.org_name.clone(),
        name: f.name.clone(),
        email: f.email.clone(),
        password: f.password,
        locale: f.locale.clone(),
        time_zone: f.time_zone.clone(),
    };
    match st.app.setup(&req, &ctx.client(), &ctx.base_url).await {
        Ok(s) => Ok(with_session(&ctx, &s, redirect_flash(&ctx, "/", "flash-welcome"))),
        Err(e) => {
            let lang = Lang::parse(&f.locale).unwrap_or(ctx.lang);
            let form = Form::with(&[
                ("org_name", &f.org_name),
                ("name", &f.name),
                ("email", &f.email),
                ("locale", &f.locale),
                ("time_zone", &f.time_zone),
            ])
            .fail(&st.i18n, lang, &e);
            let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "setup-title", &[]));
            let mut r = render(&SetupPage { shell, form, zones: time_zones() })?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
    }
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    shell: Shell,
    form: Form,
}

/// `GET /login` (or setup on a fresh instance; home when already signed in).
pub async fn login_page(State(st): State<AppState>, ctx: Ctx) -> WebResult {
    if st.app.needs_setup().await? {
        return Ok(Redirect::to("/setup").into_response());
    }
    if matches!(ctx.auth, Auth::Session(..)) {
        return Ok(Redirect::to("/").into_response());
    }
    let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "login-title", &[]));
    render(&LoginPage { shell, form: Form::default() })
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
}

/// `POST /login` — a new session token every time (an old cookie is replaced, never reused).
pub async fn login(State(st): State<AppState>, ctx: Ctx, FormBody(f): FormBody<LoginForm>) -> WebResult {
    if let Some(old) = &ctx.session_token {
        st.app.logout(old).await?;
    }
    match st.app.login(&f.email, &f.password, &ctx.client()).await {
        Ok(out) => {
            let to = if out.session.mfa_pending { "/login/2fa" } else { "/" };
            Ok(with_session(&ctx, &out.session, Redirect::to(to).into_response()))
        }
        Err(e) => {
            let form = Form::with(&[("email", &f.email)]).fail(&st.i18n, ctx.lang, &e);
            let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "login-title", &[]));
            let mut r = render(&LoginPage { shell, form })?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
    }
}

#[derive(Template)]
#[template(path = "auth/second_factor.html")]
struct MfaPage {
    shell: Shell,
    form: Form,
}

/// `GET /login/2fa`
pub async fn mfa_page(State(st): State<AppState>, ctx: Ctx) -> WebResult {
    if !matches!(ctx.auth, Auth::Pending(_)) {
        return Ok(Redirect::to("/login").into_response());
    }
    let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "mfa-title", &[]));
    render(&MfaPage { shell, form: Form::default() })
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// `POST /login/2fa`
pub async fn mfa(State(st): State<AppState>, ctx: Ctx, FormBody(f): FormBody<CodeForm>) -> WebResult {
    let Some(token) = ctx.session_token.clone().filter(|_| matches!(ctx.auth, Auth::Pending(_))) else {
        return Ok(Redirect::to("/login").into_response());
    };
    match st.app.login_second_factor(&token, &f.code, &ctx.client()).await {
        Ok(s) => Ok(with_session(&ctx, &s, Redirect::to("/").into_response())),
        Err(e) => {
            let form = Form::default().fail(&st.i18n, ctx.lang, &e);
            let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "mfa-title", &[]));
            let mut r = render(&MfaPage { shell, form })?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
    }
}

/// `POST /logout`
pub async fn logout(State(st): State<AppState>, ctx: Ctx) -> WebResult {
    if let Some(t) = &ctx.session_token {
        st.app.logout(t).await?;
    }
    let mut r = redirect_flash(&ctx, "/login", "flash-signed-out");
    r.headers_mut().append(SET_COOKIE, cookie(SESSION_COOKIE, "", Some(0), ctx.secure, true));
    // The sign-in page keeps speaking the user's language.
    r.headers_mut().append(SET_COOKIE, cookie(LANG_COOKIE, ctx.lang.code(), Some(365 * 86400), ctx.secure, true));
    Ok(r)
}

#[derive(Template)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    shell: Shell,
    sent: bool,
}

/// `GET /password/forgot`
pub async fn forgot_page(State(st): State<AppState>, ctx: Ctx) -> WebResult {
    let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "forgot-title", &[]));
    render(&ForgotPage { shell, sent: false })
}

#[derive(Deserialize)]
pub struct EmailForm {
    email: String,
}

/// `POST /password/forgot` — the same answer whether or not the address is known.
pub async fn forgot(State(st): State<AppState>, ctx: Ctx, FormBody(f): FormBody<EmailForm>) -> WebResult {
    match link_base(&st, &ctx).await {
        Some(base) => st.app.request_password_reset(&f.email, &base).await?,
        None => tracing::warn!("password reset asked for, but no public URL is known yet (set KEHU_PUBLIC_URL)"),
    }
    let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "forgot-title", &[]));
    render(&ForgotPage { shell, sent: true })
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    shell: Shell,
    form: Form,
    valid: bool,
    action: String,
}

/// `GET /password/reset/{token}`
pub async fn reset_page(State(st): State<AppState>, ctx: Ctx, Path(token): Path<String>) -> WebResult {
    let valid = st.app.reset_token_valid(&token).await?;
    let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "reset-title", &[]));
    render(&ResetPage { shell, form: Form::default(), valid, action: format!("/password/reset/{token}") })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

/// `POST /password/reset/{token}` — then sign in (with the second factor if enabled).
pub async fn reset(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
    FormBody(f): FormBody<PasswordForm>,
) -> WebResult {
    match st.app.reset_password(&token, &f.password).await {
        Ok(_) => Ok(redirect_flash(&ctx, "/login", "flash-password-set")),
        Err(e) => {
            let valid = e.code != "auth.reset_link_invalid";
            let form = Form::default().fail(&st.i18n, ctx.lang, &e);
            let shell = Shell::bare(&st, &ctx, st.i18n.get(ctx.lang, "reset-title", &[]));
            let mut r = render(&ResetPage { shell, form, valid, action: format!("/password/reset/{token}") })?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
    }
}

#[derive(Deserialize)]
pub struct LanguageForm {
    locale: String,
    #[serde(default)]
    back: String,
}

/// `POST /language` — saved in the profile when signed in, else in a cookie.
pub async fn language(State(st): State<AppState>, ctx: Ctx, FormBody(f): FormBody<LanguageForm>) -> WebResult {
    let lang = Lang::parse(&f.locale).ok_or_else(|| kehu_core::AppError::field("locale", "field.invalid_choice"))?;
    let user = match &ctx.auth {
        Auth::Session(s, _) => Some(s.user.id),
        Auth::Pending(s) => Some(s.user.id),
        _ => None,
    };
    if let Some(id) = user {
        st.app.set_locale(id, lang.code()).await?;
    }
    let local = f.back.starts_with('/')
        && !f.back.starts_with("//")
        && !f.back.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    let back = if local { f.back.as_str() } else { "/" };
    let mut r = redirect_for(&ctx, back);
    r.headers_mut().append(SET_COOKIE, cookie(LANG_COOKIE, lang.code(), Some(365 * 86400), ctx.secure, true));
    Ok(r)
}
