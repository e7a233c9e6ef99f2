//! The home page and global search (the top bar's as-you-type suggestions and the full
//! results page), grouped by object, within the user's permissions and masked.

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use kehu_core::perm::Action;
use serde::Deserialize;

pub struct Start {
    pub title: String,
    pub body: String,
    pub href: String,
    pub action: String,
    pub done: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    shell: Shell,
    greeting: String,
    steps: Vec<Start>,
}

/// `GET /` — setup on a fresh instance, the sign-in page for visitors, else home.
pub async fn home(State(st): State<AppState>, ctx: crate::ctx::Ctx) -> WebResult {
    if st.app.needs_setup().await? {
        return Ok(Redirect::to("/setup").into_response());
    }
    let Some((session, actor)) = ctx.session() else {
        return Ok(crate::ctx::redirect_for(&ctx, "/login"));
    };
    let (session, actor) = (session.clone(), actor.clone());
    let t = |k: &str| st.i18n.get(ctx.lang, k, &[]);
    let schema = st.app.schema().await?;
    let mut steps = Vec::new();
    for api in ["company", "contact"] {
        if let Ok(o) = schema.object(api) {
            if actor.check(o, Action::Create).is_ok() {
                steps.push(Start {
                    title: t(&format!("home-{api}-title")),
                    body: t(&format!("home-{api}-body")),
                    href: format!("/o/{api}/new"),
                    action: t("create"),
                    done: false,
                });
            }
        }
    }
    if actor.can_manage_users() {
        steps.push(Start {
            title: t("home-invite-title"),
            body: t("home-invite-body"),
            href: "/admin/users".into(),
            action: t("home-invite-action"),
            done: false,
        });
    }
    steps.push(Start {
        title: t("home-2fa-title"),
        body: t("home-2fa-body"),
        href: "/account/security".into(),
        action: t("home-2fa-action"),
        done: session.user.totp_enabled,
    });
    let greeting = st.i18n.get(ctx.lang, "home-greeting", &[("name", &session.user.name)]);
    let shell = Shell::new(&st, &ctx, &session, &actor, t("nav-home")).await;
    render(&HomePage { shell, greeting, steps })
}

pub struct Group {
    pub label: String,
    pub hits: Vec<Hit>,
}

pub struct Hit {
    pub href: String,
    pub title: String,
    pub detail: String,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn grouped(st: &AppState, u: &UserCtx, q: &str, limit: u32) -> WebResult<Vec<Group>> {
    let schema = st.app.schema().await?;
    let lang = u.ctx.lang.code();
    let hits = st.app.search(&u.actor, q, None, limit).await?;
    let mut groups: Vec<Group> = Vec::new();
    for h in hits {
        let label = schema.object(&h.object).map(|o| o.plural.get(lang).to_string()).unwrap_or_default();
        let hit = Hit {
            href: format!("/o/{}/{}", h.object, h.id),
            title: h.title.unwrap_or_else(|| "—".into()),
            detail: h.detail.join(" · "),
        };
        match groups.iter_mut().find(|g| g.label == label) {
            Some(g) => g.hits.push(hit),
            None => groups.push(Group { label, hits: vec![hit] }),
        }
    }
    Ok(groups)
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    shell: Shell,
    q: String,
    groups: Vec<Group>,
}

/// `GET /search?q=`
pub async fn search(State(st): State<AppState>, u: UserCtx, Query(sq): Query<SearchQuery>) -> WebResult {
    let groups = if sq.q.trim().is_empty() { Vec::new() } else { grouped(&st, &u, &sq.q, 50).await? };
    let title = st.i18n.get(u.ctx.lang, "search-title", &[]);
    let shell = Shell::new(&st, &u.ctx, &u.session, &u.actor, title.clone()).await.crumb(title, None);
    render(&SearchPage { shell, q: sq.q, groups })
}

#[derive(Template)]
#[template(path = "search_partial.html")]
struct SuggestPartial {
    shell: Shell,
    q: String,
    groups: Vec<Group>,
}

/// `GET /search/suggest?q=` — the top bar's dropdown (htmx partial).
pub async fn suggest(State(st): State<AppState>, u: UserCtx, Query(sq): Query<SearchQuery>) -> WebResult {
    let groups = if sq.q.trim().is_empty() { Vec::new() } else { grouped(&st, &u, &sq.q, 12).await? };
    let shell = Shell::bare(&st, &u.ctx, String::new());
    render(&SuggestPartial { shell, q: sq.q, groups })
}
