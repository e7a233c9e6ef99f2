//! The home page and global search (the top bar's as-you-type suggestions and the full
//! results page), grouped by object, within the user's permissions and masked.

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::record::{task_item, task_link, Item};
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use kehu_app::activity;
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
    /// Open tasks grouped: overdue, today, upcoming, without a date (label, tasks).
    tasks: Vec<(String, &'static str, Vec<Item>)>,
    open_tasks: usize,
    recent: Vec<Recent>,
    mine: Vec<Mine>,
    quick: Vec<(String, String, &'static str)>,
}

/// A record opened lately.
pub struct Recent {
    pub href: String,
    pub title: String,
    pub object: String,
}

/// A count of records the user owns, with the list it opens.
pub struct Mine {
    pub label: String,
    pub count: u64,
    pub href: String,
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
    let u = UserCtx { ctx: ctx.clone(), session: session.clone(), actor: actor.clone() };
    let lang = ctx.lang.code();

    // My tasks, grouped by when they are due in the user's time zone.
    let mut tasks: Vec<(String, &'static str, Vec<Item>)> = vec![
        (t("tasks-overdue"), "overdue", Vec::new()),
        (t("tasks-today"), "today", Vec::new()),
        (t("tasks-upcoming"), "upcoming", Vec::new()),
        (t("tasks-no-date"), "nodate", Vec::new()),
    ];
    let mut open_tasks = 0;
    if let Ok(act) = schema.object(activity::OBJECT) {
        if actor.check(act, Action::Read).is_ok() {
            let now = kehu_core::now_micros();
            let tz = shell.time_zone;
            let day = |m: i64| chrono::DateTime::from_timestamp_micros(m).map(|d| d.with_timezone(&tz).date_naive());
            let today = day(now);
            let list = st.app.my_tasks(&actor).await.unwrap_or_default();
            open_tasks = list.len();
            for r in list.iter().take(50) {
                let mut item = task_item(&u, act, r, true);
                item.link = task_link(&st, &u, &schema, r).await;
                let slot = match activity::micros(r, "due_at") {
                    None => 3,
                    Some(m) if m < now && day(m) != today => 0,
                    Some(m) if day(m) == today => 1,
                    Some(_) => 2,
                };
                tasks[slot].2.push(item);
            }
        }
    }
    let recent = st
        .app
        .recent(&actor, 8)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(o, r)| {
            let title = o
                .title_field()
                .and_then(|f| r.get(&f.api_name).as_str().map(str::to_owned))
                .unwrap_or_else(|| "—".into());
            Recent { href: format!("/o/{}/{}", o.api_name, r.id), title, object: o.label.get(lang).to_string() }
        })
        .collect();
    let mut mine = Vec::new();
    let mut quick = Vec::new();
    for o in schema.objects() {
        if actor.check(o, Action::Read).is_err() {
            continue;
        }
        if o.is_system && o.api_name != activity::OBJECT {
            let count = st.app.count_mine(&actor, &o.api_name).await.unwrap_or(0);
            mine.push(Mine {
                label: o.plural.get(lang).to_string(),
                count,
                href: crate::http::records::mine_href(&o.api_name),
            });
        }
        if actor.check(o, Action::Create).is_ok() && o.api_name != activity::OBJECT {
            let icon = match o.api_name.as_str() {
                "company" => "building",
                "contact" => "user",
                _ => "box",
            };
            quick.push((o.label.get(lang).to_string(), format!("/o/{}/new", o.api_name), icon));
        }
    }
    // The get-started cards stay until the user owns some records.
    let steps = if mine.iter().all(|m| m.count == 0) { steps } else { Vec::new() };
    render(&HomePage { shell, greeting, steps, tasks, open_tasks, recent, mine, quick })
}

pub struct Group {
    pub label: String,
    pub hits: Vec<Hit>,
}

pub struct Hit {
    pub href: String,
    pub title: String,
    pub detail: String,
    /// Why it was found: "field: value" of the fields that match (masked).
    pub matched: String,
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
        let obj = schema.object(&h.object).ok();
        let label = obj.map(|o| o.plural.get(lang).to_string()).unwrap_or_default();
        let field_label =
            |api: &str| obj.and_then(|o| o.field(api)).map(|f| f.label.get(lang).to_string()).unwrap_or_default();
        let matched: Vec<String> =
            h.matched.iter().map(|m| format!("{}: {}", field_label(&m.field), m.value)).collect();
        let hit = Hit {
            href: format!("/o/{}/{}", h.object, h.id),
            title: h.title.unwrap_or_else(|| "—".into()),
            detail: h.detail.join(" · "),
            matched: matched.join(" · "),
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
