//! The webhooks pages (administrators): endpoints with their state, add one (the secret is
//! shown once), the allow-list of intranet hosts, and per endpoint its settings, "send a test
//! event", secret rotation, the delivery log with each attempt, and replays. The work is
//! `kehu_app::webhooks`.

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::auth::redirect_flash;
use crate::shell::{render, Form, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::Form as FormBody;
use kehu_app::webhooks::{Attempt, Delivery, Endpoint, EndpointInput, EVENTS};
use kehu_core::{AppError, Uuid};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "webhooks/webhooks_page.html")]
struct ListPage {
    shell: Shell,
    endpoints: Vec<Endpoint>,
    objects: Vec<(String, String)>,
    events: Vec<(String, String)>,
    allow: String,
    form: Form,
    /// The secret of the endpoint just added (shown once).
    secret: Option<(Uuid, String)>,
}

#[derive(Template)]
#[template(path = "webhooks/webhook_page.html")]
struct DetailPage {
    shell: Shell,
    ep: Endpoint,
    objects: Vec<(String, String)>,
    events: Vec<(String, String)>,
    deliveries: Vec<Delivery>,
    /// The attempts of the delivery opened (`?delivery=`).
    open: Option<(Delivery, Vec<Attempt>)>,
    state: String,
    form: Form,
    secret: Option<String>,
}

trait Labels {
    fn shell(&self) -> &Shell;
    fn state_label(&self, s: &str) -> String {
        self.shell().t(&format!("webhook-state-{s}"))
    }
    fn error_label(&self, e: &Option<String>) -> String {
        match e.as_deref() {
            Some(c) if c.starts_with("webhook.") => self.shell().err(c),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}
impl Labels for ListPage {
    fn shell(&self) -> &Shell {
        &self.shell
    }
}
impl Labels for DetailPage {
    fn shell(&self) -> &Shell {
        &self.shell
    }
}

impl ListPage {
    fn summary(&self, e: &Endpoint) -> String {
        let objs = if e.objects.is_empty() { self.shell.t("webhook-all-objects") } else { e.objects.join(", ") };
        let evs = if e.events.is_empty() { self.shell.t("webhook-all-events") } else { e.events.join(", ") };
        format!("{objs} · {evs}")
    }
}

impl DetailPage {
    fn is_state(&self, s: &str) -> bool {
        self.state == s
    }
    fn checked_object(&self, o: &str) -> bool {
        self.ep.objects.iter().any(|x| x == o)
    }
    fn checked_event(&self, e: &str) -> bool {
        self.ep.events.iter().any(|x| x == e)
    }
    fn status(&self, s: &Option<i64>) -> String {
        s.map(|s| s.to_string()).unwrap_or_else(|| "—".into())
    }
    fn ms(&self, s: &Option<i64>) -> String {
        s.map(|s| format!("{s} ms")).unwrap_or_else(|| "—".into())
    }
}

async fn choices(st: &AppState, u: &UserCtx) -> WebResult<(Vec<(String, String)>, Vec<(String, String)>)> {
    let schema = st.app.schema().await?;
    let zh = u.ctx.lang == crate::i18n::Lang::ZhCn;
    let objects = schema
        .objects()
        .iter()
        .map(|o| (o.api_name.clone(), if zh { o.plural.zh.clone() } else { o.plural.en.clone() }))
        .collect();
    let events = EVENTS
        .iter()
        .map(|e| (e.to_string(), st.i18n.get(u.ctx.lang, &format!("webhook-event-{}", e.replace('.', "-")), &[])))
        .collect();
    Ok((objects, events))
}

async fn list_with(st: &AppState, u: &UserCtx, form: Form, secret: Option<(Uuid, String)>) -> WebResult {
    if !u.actor.is_admin() {
        return Err(AppError::forbidden("permission.denied").into());
    }
    let title = st.i18n.get(u.ctx.lang, "nav-webhooks", &[]);
    let shell = Shell::new(st, &u.ctx, &u.session, &u.actor, title.clone()).await.crumb(title, None);
    let (objects, events) = choices(st, u).await?;
    render(&ListPage {
        shell,
        endpoints: st.app.webhooks(&u.actor).await?,
        objects,
        events,
        allow: st.app.webhook_allow_hosts().await?.join("\n"),
        form,
        secret,
    })
}

/// `GET /admin/webhooks`
pub async fn page(State(st): State<AppState>, u: UserCtx) -> WebResult {
    list_with(&st, &u, Form::default(), None).await
}

/// The endpoint form: checkboxes repeat their names (`objects`, `events`).
fn input_of(pairs: &[(String, String)]) -> (EndpointInput, Form) {
    let mut input = EndpointInput { enabled: false, ..Default::default() };
    let mut form = Form::default();
    for (k, v) in pairs {
        match k.as_str() {
            "url" => input.url = v.clone(),
            "description" => input.description = v.clone(),
            "objects" => input.objects.push(v.clone()),
            "events" => input.events.push(v.clone()),
            "enabled" => input.enabled = true,
            _ => {}
        }
        form.values.insert(k.clone(), v.clone());
    }
    (input, form)
}

/// `POST /admin/webhooks` — add an endpoint; the page shows its secret once.
pub async fn create(State(st): State<AppState>, u: UserCtx, FormBody(f): FormBody<Vec<(String, String)>>) -> WebResult {
    let (mut input, form) = input_of(&f);
    input.enabled = true;
    match st.app.create_webhook(&u.actor, &input).await {
        Ok((ep, secret)) => list_with(&st, &u, Form::default(), Some((ep.id, secret))).await,
        Err(e) if e.kind != kehu_core::ErrorKind::Forbidden => {
            let form = form.fail(&st.i18n, u.ctx.lang, &e);
            let mut r = list_with(&st, &u, form, None).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct AllowForm {
    hosts: String,
}

/// `POST /admin/webhooks/allow` — the hosts allowed on private addresses.
pub async fn allow(State(st): State<AppState>, u: UserCtx, FormBody(f): FormBody<AllowForm>) -> WebResult {
    let hosts: Vec<String> = f.hosts.lines().map(str::to_string).collect();
    match st.app.set_webhook_allow_hosts(&u.actor, &hosts).await {
        Ok(()) => Ok(redirect_flash(&u.ctx, "/admin/webhooks", "flash-saved")),
        Err(e) if e.kind != kehu_core::ErrorKind::Forbidden => {
            let form = Form::with(&[("hosts", &f.hosts)]).fail(&st.i18n, u.ctx.lang, &e);
            let mut r = list_with(&st, &u, form, None).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    delivery: Option<Uuid>,
}

async fn detail_with(
    st: &AppState,
    u: &UserCtx,
    id: Uuid,
    q: &DetailQuery,
    form: Form,
    secret: Option<String>,
) -> WebResult {
    let ep = st.app.webhook(&u.actor, id).await?;
    let list_title = st.i18n.get(u.ctx.lang, "nav-webhooks", &[]);
    let name = if ep.description.is_empty() { ep.url.clone() } else { ep.description.clone() };
    let shell = Shell::new(st, &u.ctx, &u.session, &u.actor, name.clone())
        .await
        .crumb(list_title, Some("/admin/webhooks"))
        .crumb(name, None);
    let (objects, events) = choices(st, u).await?;
    let state = q.state.clone().filter(|s| ["pending", "delivered", "failed", "cancelled"].contains(&s.as_str()));
    let deliveries = st.app.webhook_deliveries(&u.actor, id, state.as_deref(), 100).await?;
    let open = match q.delivery {
        Some(d) => {
            let del = st.app.webhook_delivery(&u.actor, d).await?;
            if del.endpoint_id != id {
                return Err(AppError::not_found("webhook.delivery_not_found").into());
            }
            let attempts = st.app.webhook_attempts(&u.actor, d).await?;
            Some((del, attempts))
        }
        None => None,
    };
    render(&DetailPage { shell, ep, objects, events, deliveries, open, state: state.unwrap_or_default(), form, secret })
}

/// `GET /admin/webhooks/{id}`
pub async fn detail(
    State(st): State<AppState>,
    u: UserCtx,
    Path(id): Path<Uuid>,
    Query(q): Query<DetailQuery>,
) -> WebResult {
    detail_with(&st, &u, id, &q, Form::default(), None).await
}

/// `POST /admin/webhooks/{id}` — save the endpoint's settings.
pub async fn update(
    State(st): State<AppState>,
    u: UserCtx,
    Path(id): Path<Uuid>,
    FormBody(f): FormBody<Vec<(String, String)>>,
) -> WebResult {
    let (input, form) = input_of(&f);
    match st.app.update_webhook(&u.actor, id, &input).await {
        Ok(_) => Ok(redirect_flash(&u.ctx, &format!("/admin/webhooks/{id}"), "flash-saved")),
        Err(e) if e.kind != kehu_core::ErrorKind::Forbidden && e.kind != kehu_core::ErrorKind::NotFound => {
            let form = form.fail(&st.i18n, u.ctx.lang, &e);
            let mut r = detail_with(&st, &u, id, &DetailQuery::default(), form, None).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/webhooks/{id}/test` — queue a test event.
pub async fn test(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    st.app.test_webhook(&u.actor, id).await?;
    Ok(redirect_flash(&u.ctx, &format!("/admin/webhooks/{id}"), "flash-webhook-test"))
}

/// `POST /admin/webhooks/{id}/rotate` — a new secret, shown once.
pub async fn rotate(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let secret = st.app.rotate_webhook_secret(&u.actor, id, 24).await?;
    detail_with(&st, &u, id, &DetailQuery::default(), Form::default(), Some(secret)).await
}

/// `POST /admin/webhooks/{id}/delete`
pub async fn delete(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    st.app.delete_webhook(&u.actor, id).await?;
    Ok(redirect_flash(&u.ctx, "/admin/webhooks", "flash-webhook-deleted"))
}

#[derive(Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    delivery: Option<Uuid>,
}

/// `POST /admin/webhooks/{id}/replay` — one delivery, or every failed one.
pub async fn replay(
    State(st): State<AppState>,
    u: UserCtx,
    Path(id): Path<Uuid>,
    FormBody(f): FormBody<ReplayForm>,
) -> WebResult {
    st.app.replay_webhook(&u.actor, id, f.delivery).await?;
    Ok(redirect_flash(&u.ctx, &format!("/admin/webhooks/{id}"), "flash-webhook-replayed"))
}
