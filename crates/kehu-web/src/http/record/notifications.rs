//! The notifications page: mentions, assigned tasks and reminders, each opening its record.

use super::*;

pub struct NoteView {
    pub id: Uuid,
    pub text: String,
    pub at: String,
    pub read: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    shell: Shell,
    items: Vec<NoteView>,
}

/// `GET /notifications`
pub async fn notifications(State(st): State<AppState>, u: UserCtx) -> WebResult {
    let list = st.app.notifications(&u.actor, 100).await?;
    let lang = u.ctx.lang.code();
    let shell = Shell::new(&st, &u.ctx, &u.session, &u.actor, st.i18n.get(u.ctx.lang, "notifications", &[]))
        .await
        .crumb(st.i18n.get(u.ctx.lang, "notifications", &[]), None);
    let items = list
        .into_iter()
        .map(|n| {
            let who = n.actor_name.clone().unwrap_or_else(|| shell.t("timeline-system"));
            let title = n
                .record
                .as_ref()
                .and_then(|r| {
                    let o = n.object.as_ref()?;
                    let tf = o.title_field()?;
                    r.get(&tf.api_name).as_str().map(str::to_owned)
                })
                .or_else(|| {
                    n.record
                        .as_ref()
                        .map(|_| n.object.as_ref().map(|o| o.label.get(lang).to_string()).unwrap_or_default())
                })
                .unwrap_or_else(|| shell.t("notification-hidden"));
            let key = match n.kind.as_str() {
                "mention" => "notification-mention",
                "assigned" => "notification-assigned",
                _ => "notification-reminder",
            };
            let text = st.i18n.get(u.ctx.lang, key, &[("who", &who), ("title", &title)]);
            NoteView { id: n.id, text, at: shell.time(&n.at), read: n.read }
        })
        .collect();
    render(&NotificationsPage { shell, items })
}

/// `GET /notifications/{id}` — mark read and open what it is about.
pub async fn open_notification(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let user = u.session.user.id;
    let n = st.app.notification(&u.actor, id).await?;
    st.app.mark_read(user, Some(id)).await?;
    let schema = st.app.schema().await?;
    let to = match (&n.object, &n.record) {
        (Some(o), Some(r)) if o.api_name == activity::OBJECT => task_link(&st, &u, &schema, r)
            .await
            .map(|(h, _)| h)
            .unwrap_or_else(|| format!("/o/{}/{}", o.api_name, r.id)),
        (Some(o), Some(r)) => format!("/o/{}/{}", o.api_name, r.id),
        _ => "/notifications".into(),
    };
    Ok(axum::response::Redirect::to(&to).into_response())
}

/// `POST /notifications/read` — mark every notification read.
pub async fn read_all(State(st): State<AppState>, u: UserCtx) -> WebResult {
    st.app.mark_read(u.session.user.id, None).await?;
    Ok(redirect_for(&u.ctx, "/notifications"))
}
