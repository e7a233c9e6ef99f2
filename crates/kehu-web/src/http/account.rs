//! The user's own settings: profile (name, language, time zone), password, two-factor
//! sign-in and recovery codes, "your sessions", and API tokens.

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::auth::{redirect_flash, time_zones};
use crate::shell::{render, Form, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::Form as FormBody;
use kehu_app::auth::{ApiTokenInfo, SessionRow, TokenScope};
use kehu_core::{AppError, Uuid};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "account/profile.html")]
struct ProfilePage {
    shell: Shell,
    form: Form,
    zones: Vec<String>,
}

async fn shell(st: &AppState, u: &UserCtx, key: &str) -> Shell {
    let title = st.i18n.get(u.ctx.lang, key, &[]);
    Shell::new(st, &u.ctx, &u.session, &u.actor, title.clone()).await.crumb(title, None)
}

/// `GET /account`
pub async fn profile_page(State(st): State<AppState>, u: UserCtx) -> WebResult {
    let user = &u.session.user;
    let form = Form::with(&[("name", &user.name), ("locale", &user.locale), ("time_zone", &user.time_zone)]);
    render(&ProfilePage { shell: shell(&st, &u, "nav-profile").await, form, zones: time_zones() })
}

#[derive(Deserialize)]
pub struct ProfileForm {
    name: String,
    locale: String,
    time_zone: String,
}

/// `POST /account`
pub async fn profile(State(st): State<AppState>, u: UserCtx, FormBody(f): FormBody<ProfileForm>) -> WebResult {
    match st.app.update_profile(u.session.user.id, &f.name, &f.locale, &f.time_zone).await {
        Ok(()) => Ok(redirect_flash(&u.ctx, "/account", "flash-saved")),
        Err(e) => {
            let form = Form::with(&[("name", &f.name), ("locale", &f.locale), ("time_zone", &f.time_zone)])
                .fail(&st.i18n, u.ctx.lang, &e);
            let mut r = render(&ProfilePage { shell: shell(&st, &u, "nav-profile").await, form, zones: time_zones() })?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
    }
}

#[derive(Template)]
#[template(path = "account/security.html")]
struct SecurityPage {
    shell: Shell,
    totp_enabled: bool,
    codes_left: usize,
    sessions: Vec<SessionRow>,
    pw_form: Form,
    totp_form: Form,
}

async fn security_page_with(st: &AppState, u: &UserCtx, pw_form: Form, totp_form: Form) -> WebResult {
    let user = st.app.user_info(u.session.user.id).await?.ok_or_else(|| AppError::not_found("user.not_found"))?;
    let sessions = st.app.sessions_of(user.id, u.session.id).await?;
    let codes_left = st.app.recovery_codes_left(user.id).await?;
    render(&SecurityPage {
        shell: shell(st, u, "nav-security").await,
        totp_enabled: user.totp_enabled,
        codes_left,
        sessions,
        pw_form,
        totp_form,
    })
}

/// `GET /account/security`
pub async fn security_page(State(st): State<AppState>, u: UserCtx) -> WebResult {
    security_page_with(&st, &u, Form::default(), Form::default()).await
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /account/password`
pub async fn change_password(
    State(st): State<AppState>,
    u: UserCtx,
    FormBody(f): FormBody<PasswordChange>,
) -> WebResult {
    let r = st.app.change_password(u.session.user.id, &f.current_password, &f.new_password, u.session.id).await;
    match r {
        Ok(()) => Ok(redirect_flash(&u.ctx, "/account/security", "flash-password-changed")),
        Err(mut e) => {
            for fe in &mut e.fields {
                if fe.field == "password" {
                    fe.field = "new_password".into();
                }
            }
            let form = Form::default().fail(&st.i18n, u.ctx.lang, &e);
            let mut r = security_page_with(&st, &u, form, Form::default()).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
    }
}

#[derive(Template)]
#[template(path = "account/totp_enrol.html")]
struct EnrolPage {
    shell: Shell,
    secret: String,
    qr_svg: String,
    form: Form,
}

fn qr_svg(url: &str) -> String {
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build(),
        Err(_) => String::new(),
    }
}

/// `POST /account/2fa/begin` — a new secret with its QR code.
pub async fn totp_begin(State(st): State<AppState>, u: UserCtx) -> WebResult {
    let e = st.app.totp_begin(u.session.user.id).await?;
    render(&EnrolPage {
        shell: shell(&st, &u, "totp-title").await,
        qr_svg: qr_svg(&e.url),
        secret: e.secret,
        form: Form::default(),
    })
}

#[derive(Deserialize)]
pub struct TotpConfirm {
    code: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "account/recovery_codes.html")]
struct CodesPage {
    shell: Shell,
    codes: Vec<String>,
}

/// `POST /account/2fa/confirm` — shows the recovery codes once.
pub async fn totp_confirm(State(st): State<AppState>, u: UserCtx, FormBody(f): FormBody<TotpConfirm>) -> WebResult {
    match st.app.totp_confirm(u.session.user.id, &f.code).await {
        Ok(codes) => render(&CodesPage { shell: shell(&st, &u, "totp-codes-title").await, codes }),
        Err(e) => {
            let form = Form::default().fail(&st.i18n, u.ctx.lang, &e);
            let url = format!("otpauth://totp/Kehu?secret={}", f.secret);
            let mut r = render(&EnrolPage {
                shell: shell(&st, &u, "totp-title").await,
                qr_svg: qr_svg(&url),
                secret: f.secret,
                form,
            })?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
    }
}

#[derive(Deserialize)]
pub struct DisableTotp {
    password: String,
    code: String,
}

/// `POST /account/2fa/disable`
pub async fn totp_disable(State(st): State<AppState>, u: UserCtx, FormBody(f): FormBody<DisableTotp>) -> WebResult {
    match st.app.totp_disable(u.session.user.id, &f.password, &f.code).await {
        Ok(()) => Ok(redirect_flash(&u.ctx, "/account/security", "flash-2fa-off")),
        Err(e) => {
            let form = Form::default().fail(&st.i18n, u.ctx.lang, &e);
            let mut r = security_page_with(&st, &u, Form::default(), form).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
    }
}

/// `POST /account/sessions/{id}/revoke`
pub async fn revoke_session(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    st.app.revoke_session(u.session.user.id, id).await?;
    Ok(redirect_flash(&u.ctx, "/account/security", "flash-session-ended"))
}

/// `POST /account/sessions/revoke-others`
pub async fn revoke_others(State(st): State<AppState>, u: UserCtx) -> WebResult {
    st.app.revoke_other_sessions(u.session.user.id, u.session.id).await?;
    Ok(redirect_flash(&u.ctx, "/account/security", "flash-session-ended"))
}

#[derive(Template)]
#[template(path = "account/tokens.html")]
struct TokensPage {
    shell: Shell,
    tokens: Vec<ApiTokenInfo>,
    created: Option<String>,
    form: Form,
}

impl TokensPage {
    fn scope_names(&self, t: &ApiTokenInfo) -> String {
        t.scopes.iter().map(|s| self.shell.t(&format!("scope-{}", s.key()))).collect::<Vec<_>>().join(", ")
    }
}

/// `GET /account/tokens`
pub async fn tokens_page(State(st): State<AppState>, u: UserCtx) -> WebResult {
    let tokens = st.app.api_tokens(u.session.user.id).await?;
    render(&TokensPage { shell: shell(&st, &u, "nav-tokens").await, tokens, created: None, form: Form::default() })
}

/// `POST /account/tokens` — the token is shown once on the returned page.
pub async fn create_token(
    State(st): State<AppState>,
    u: UserCtx,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let scopes: Vec<TokenScope> =
        pairs.iter().filter(|(k, _)| k == "scope").filter_map(|(_, v)| TokenScope::parse(v)).collect();
    let days = get("expires_in_days");
    let days = if days.trim().is_empty() { None } else { days.trim().parse::<u32>().ok().or(Some(0)) };
    let res = st.app.create_api_token(u.session.user.id, &get("name"), &scopes, days).await;
    let tokens = st.app.api_tokens(u.session.user.id).await?;
    match res {
        Ok((token, _)) => render(&TokensPage {
            shell: shell(&st, &u, "nav-tokens").await,
            tokens,
            created: Some(token),
            form: Form::default(),
        }),
        Err(e) => {
            let form = Form::with(&[("name", &get("name"))]).fail(&st.i18n, u.ctx.lang, &e);
            let mut r = render(&TokensPage { shell: shell(&st, &u, "nav-tokens").await, tokens, created: None, form })?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
    }
}

/// `POST /account/tokens/{id}/revoke`
pub async fn revoke_token(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    st.app.revoke_api_token(u.session.user.id, id).await?;
    Ok(redirect_flash(&u.ctx, "/account/tokens", "flash-token-revoked"))
}
