//! Administration pages: users (invite, edit, disable, password links), the team tree, roles
//! with their permission matrix, and the outgoing mail queue. The checks themselves live in
//! `kehu-app` (`manage_users`); these pages only present them.

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::auth::redirect_flash;
use crate::shell::{render, Form, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::Form as FormBody;
use kehu_app::admin::{Invite, RoleRow, TeamRow, UserPatch, UserRow};
use kehu_app::auth::MailRow;
use kehu_core::perm::{FieldPerm, Grants, ObjectPerm, Scope};
use kehu_core::{AppError, Uuid};
use serde::Deserialize;

async fn shell(st: &AppState, u: &UserCtx, key: &str, parent: Option<(&str, &str)>) -> Shell {
    let title = st.i18n.get(u.ctx.lang, key, &[]);
    let mut s = Shell::new(st, &u.ctx, &u.session, &u.actor, title.clone()).await;
    if let Some((k, href)) = parent {
        s = s.crumb(st.i18n.get(u.ctx.lang, k, &[]), Some(href));
    }
    s.crumb(title, None)
}

fn role_name(r: &RoleRow, lang: crate::i18n::Lang) -> String {
    if lang == crate::i18n::Lang::En {
        r.name_en.clone()
    } else {
        r.name_zh.clone()
    }
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    shell: Shell,
    users: Vec<UserRow>,
    roles: Vec<(String, String)>,
    teams: Vec<TeamRow>,
    form: Form,
    link: Option<String>,
}

async fn users_page_with(st: &AppState, u: &UserCtx, form: Form, link: Option<String>) -> WebResult {
    let users = st.app.users(&u.actor).await?;
    let roles = st.app.roles(&u.actor).await?.iter().map(|r| (r.key.clone(), role_name(r, u.ctx.lang))).collect();
    let teams = st.app.teams().await?;
    render(&UsersPage { shell: shell(st, u, "nav-users", None).await, users, roles, teams, form, link })
}

impl UsersPage {
    fn role_label(&self, key: &str) -> String {
        self.roles.iter().find(|r| r.0 == key).map(|r| r.1.clone()).unwrap_or_else(|| key.to_string())
    }
}

/// `GET /admin/users`
pub async fn users(State(st): State<AppState>, u: UserCtx) -> WebResult {
    users_page_with(&st, &u, Form::with(&[("role", "sales_rep")]), None).await
}

#[derive(Deserialize)]
pub struct InviteForm {
    email: String,
    name: String,
    #[serde(default)]
    team_id: String,
    role: String,
    locale: String,
}

fn opt_uuid(s: &str, field: &str) -> Result<Option<Uuid>, AppError> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        s.trim().parse().map(Some).map_err(|_| AppError::field(field, "field.invalid_reference"))
    }
}

/// `POST /admin/users` — invite; the page shows the set-password link once.
pub async fn invite(State(st): State<AppState>, u: UserCtx, FormBody(f): FormBody<InviteForm>) -> WebResult {
    let res = async {
        let inv = Invite {
            email: f.email.clone(),
            name: f.name.clone(),
            team: opt_uuid(&f.team_id, "team_id")?,
            role: f.role.clone(),
            locale: f.locale.clone(),
        };
        let base = crate::http::auth::link_base(&st, &u.ctx).await.unwrap_or_else(|| u.ctx.base_url.clone());
        st.app.invite_user(&u.actor, &inv, &base).await
    }
    .await;
    match res {
        Ok((_, link)) => users_page_with(&st, &u, Form::with(&[("role", "sales_rep")]), Some(link)).await,
        Err(e) if e.kind != kehu_core::ErrorKind::Forbidden => {
            let form = Form::with(&[
                ("email", &f.email),
                ("name", &f.name),
                ("team_id", &f.team_id),
                ("role", &f.role),
                ("locale", &f.locale),
            ])
            .fail(&st.i18n, u.ctx.lang, &e);
            let mut r = users_page_with(&st, &u, form, None).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/user_edit.html")]
struct UserEditPage {
    shell: Shell,
    user: UserRow,
    roles: Vec<(String, String)>,
    teams: Vec<TeamRow>,
    form: Form,
    link: Option<String>,
}

async fn user_page_with(st: &AppState, u: &UserCtx, id: Uuid, form: Option<Form>, link: Option<String>) -> WebResult {
    let user = st
        .app
        .users(&u.actor)
        .await?
        .into_iter()
        .find(|x| x.user.id == id)
        .ok_or_else(|| AppError::not_found("user.not_found"))?;
    let roles = st.app.roles(&u.actor).await?.iter().map(|r| (r.key.clone(), role_name(r, u.ctx.lang))).collect();
    let teams = st.app.teams().await?;
    let team = user.user.team_id.map(|t| t.to_string()).unwrap_or_default();
    let form =
        form.unwrap_or_else(|| Form::with(&[("name", &user.user.name), ("role", &user.role_key), ("team_id", &team)]));
    let mut s = shell(st, u, "nav-users", None).await;
    s.crumbs.pop();
    s.title = user.user.name.clone();
    let s =
        s.crumb(st.i18n.get(u.ctx.lang, "nav-users", &[]), Some("/admin/users")).crumb(user.user.name.clone(), None);
    render(&UserEditPage { shell: s, user, roles, teams, form, link })
}

/// `GET /admin/users/{id}`
pub async fn user_page(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    user_page_with(&st, &u, id, None, None).await
}

#[derive(Deserialize)]
pub struct UserEditForm {
    name: String,
    #[serde(default)]
    team_id: String,
    role: String,
}

/// `POST /admin/users/{id}`
pub async fn user_update(
    State(st): State<AppState>,
    u: UserCtx,
    Path(id): Path<Uuid>,
    FormBody(f): FormBody<UserEditForm>,
) -> WebResult {
    let res = async {
        let patch = UserPatch {
            name: Some(f.name.clone()),
            team_id: Some(opt_uuid(&f.team_id, "team_id")?),
            role: Some(f.role.clone()),
            is_active: None,
        };
        st.app.update_user(&u.actor, id, &patch).await
    }
    .await;
    match res {
        Ok(()) => Ok(redirect_flash(&u.ctx, &format!("/admin/users/{id}"), "flash-saved")),
        Err(e) if e.kind != kehu_core::ErrorKind::Forbidden => {
            let form = Form::with(&[("name", &f.name), ("team_id", &f.team_id), ("role", &f.role)])
                .fail(&st.i18n, u.ctx.lang, &e);
            let mut r = user_page_with(&st, &u, id, Some(form), None).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ActiveForm {
    active: bool,
}

/// `POST /admin/users/{id}/active` — disabling ends every session of the user.
pub async fn user_active(
    State(st): State<AppState>,
    u: UserCtx,
    Path(id): Path<Uuid>,
    FormBody(f): FormBody<ActiveForm>,
) -> WebResult {
    let patch = UserPatch { is_active: Some(f.active), ..Default::default() };
    st.app.update_user(&u.actor, id, &patch).await?;
    Ok(redirect_flash(
        &u.ctx,
        &format!("/admin/users/{id}"),
        if f.active { "flash-user-enabled" } else { "flash-user-disabled" },
    ))
}

/// `POST /admin/users/{id}/link` — a new set-password link (shown once, also e-mailed).
pub async fn user_link(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    let base = crate::http::auth::link_base(&st, &u.ctx).await.unwrap_or_else(|| u.ctx.base_url.clone());
    let link = st.app.password_link(&u.actor, id, &base).await?;
    user_page_with(&st, &u, id, None, Some(link)).await
}

#[derive(Template)]
#[template(path = "admin/teams.html")]
struct TeamsPage {
    shell: Shell,
    teams: Vec<TeamRow>,
    form: Form,
}

impl TeamsPage {
    fn indent(&self, t: &TeamRow) -> String {
        format!("indent-{}", t.depth.min(4))
    }
    fn parent_of(&self, t: &TeamRow) -> String {
        t.parent_id.map(|p| p.to_string()).unwrap_or_default()
    }
}

async fn teams_page_with(st: &AppState, u: &UserCtx, form: Form) -> WebResult {
    if !u.actor.can_manage_users() {
        return Err(AppError::forbidden("permission.denied").into());
    }
    let teams = st.app.teams().await?;
    render(&TeamsPage { shell: shell(st, u, "nav-teams", None).await, teams, form })
}

/// `GET /admin/teams`
pub async fn teams(State(st): State<AppState>, u: UserCtx) -> WebResult {
    teams_page_with(&st, &u, Form::default()).await
}

#[derive(Deserialize)]
pub struct TeamForm {
    name: String,
    #[serde(default)]
    parent_id: String,
}

/// `POST /admin/teams`
pub async fn team_create(State(st): State<AppState>, u: UserCtx, FormBody(f): FormBody<TeamForm>) -> WebResult {
    let res = async { st.app.add_team(&u.actor, &f.name, opt_uuid(&f.parent_id, "parent_id")?).await }.await;
    match res {
        Ok(_) => Ok(redirect_flash(&u.ctx, "/admin/teams", "flash-saved")),
        Err(e) if e.kind != kehu_core::ErrorKind::Forbidden => {
            let form = Form::with(&[("name", &f.name), ("parent_id", &f.parent_id)]).fail(&st.i18n, u.ctx.lang, &e);
            let mut r = teams_page_with(&st, &u, form).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/teams/{id}` — rename or move.
pub async fn team_update(
    State(st): State<AppState>,
    u: UserCtx,
    Path(id): Path<Uuid>,
    FormBody(f): FormBody<TeamForm>,
) -> WebResult {
    let parent = opt_uuid(&f.parent_id, "parent_id")?;
    st.app.update_team(&u.actor, id, &f.name, parent).await?;
    Ok(redirect_flash(&u.ctx, "/admin/teams", "flash-saved"))
}

/// `POST /admin/teams/{id}/delete`
pub async fn team_delete(State(st): State<AppState>, u: UserCtx, Path(id): Path<Uuid>) -> WebResult {
    st.app.delete_team(&u.actor, id).await?;
    Ok(redirect_flash(&u.ctx, "/admin/teams", "flash-deleted"))
}

#[derive(Template)]
#[template(path = "admin/roles.html")]
struct RolesPage {
    shell: Shell,
    roles: Vec<RoleRow>,
}

impl RolesPage {
    fn name(&self, r: &RoleRow) -> String {
        role_name(r, self.shell.lang)
    }
}

/// `GET /admin/roles`
pub async fn roles(State(st): State<AppState>, u: UserCtx) -> WebResult {
    let roles = st.app.roles(&u.actor).await?;
    render(&RolesPage { shell: shell(&st, &u, "nav-roles", None).await, roles })
}

#[derive(Deserialize)]
pub struct NewRoleForm {
    name_zh: String,
    name_en: String,
    copy_from: String,
}

/// `POST /admin/roles`
pub async fn role_create(State(st): State<AppState>, u: UserCtx, FormBody(f): FormBody<NewRoleForm>) -> WebResult {
    let key = st.app.create_role(&u.actor, &f.name_en, &f.name_zh, &f.copy_from).await?;
    Ok(redirect_flash(&u.ctx, &format!("/admin/roles/{key}"), "flash-saved"))
}

/// One object's row in the permission matrix.
pub struct ObjRow {
    pub api: String,
    pub label: String,
    pub perm: ObjectPerm,
    pub fields: Vec<FieldRowPerm>,
}

pub struct FieldRowPerm {
    pub key: String,
    pub label: String,
    pub perm: FieldPerm,
}

#[derive(Template)]
#[template(path = "admin/role_edit.html")]
struct RoleEditPage {
    shell: Shell,
    role: RoleRow,
    rows: Vec<ObjRow>,
    editable: bool,
}

impl RoleEditPage {
    fn scope_key(&self, s: &Scope) -> &'static str {
        match s {
            Scope::Own => "own",
            Scope::Team => "team",
            Scope::All => "all",
        }
    }
}

/// `GET /admin/roles/{key}`
pub async fn role_page(State(st): State<AppState>, u: UserCtx, Path(key): Path<String>) -> WebResult {
    let role = st
        .app
        .roles(&u.actor)
        .await?
        .into_iter()
        .find(|r| r.key == key)
        .ok_or_else(|| AppError::not_found("role.not_found"))?;
    let schema = st.app.schema().await?;
    let lang = u.ctx.lang.code();
    let rows = schema
        .objects()
        .iter()
        .map(|o| ObjRow {
            api: o.api_name.clone(),
            label: o.plural.get(lang).to_string(),
            perm: *role.grants.objects.get(&o.api_name).unwrap_or(&role.grants.default),
            fields: o
                .data_fields()
                .map(|f| {
                    let key = format!("{}.{}", o.api_name, f.api_name);
                    FieldRowPerm {
                        perm: role.grants.fields.get(&key).copied().unwrap_or(FieldPerm { read: true, write: true }),
                        key,
                        label: f.label.get(lang).to_string(),
                    }
                })
                .collect(),
        })
        .collect();
    let name = role_name(&role, u.ctx.lang);
    let mut s = shell(&st, &u, "nav-roles", None).await;
    s.crumbs.pop();
    s.title = name.clone();
    let s = s.crumb(st.i18n.get(u.ctx.lang, "nav-roles", &[]), Some("/admin/roles")).crumb(name, None);
    let editable = role.key != "admin";
    render(&RoleEditPage { shell: s, role, rows, editable })
}

/// `POST /admin/roles/{key}` — the whole matrix: `obj.<api>.<action>` checkboxes,
/// `obj.<api>.scope`, `field.<obj>.<field>` = rw | r | none, `manage_users`, `manage_metadata`,
/// `reveal_contact`.
pub async fn role_update(
    State(st): State<AppState>,
    u: UserCtx,
    Path(key): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let before = st.app.role_by_key(&key).await?;
    let schema = st.app.schema().await?;
    let has = |k: &str| pairs.iter().any(|(n, _)| n == k);
    let val = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut grants = Grants {
        manage_metadata: has("manage_metadata"),
        manage_users: has("manage_users"),
        reveal_contact: has("reveal_contact"),
        default: before.grants.default,
        objects: Default::default(),
        fields: Default::default(),
    };
    for o in schema.objects() {
        let p = |a: &str| has(&format!("obj.{}.{a}", o.api_name));
        let scope = match val(&format!("obj.{}.scope", o.api_name)) {
            Some("own") => Scope::Own,
            Some("team") => Scope::Team,
            Some("all") => Scope::All,
            _ => return Err(AppError::field(format!("obj.{}.scope", o.api_name), "field.invalid_choice").into()),
        };
        grants.objects.insert(
            o.api_name.clone(),
            ObjectPerm {
                read: p("read"),
                create: p("create"),
                update: p("update"),
                delete: p("delete"),
                export: p("export"),
                scope,
            },
        );
        for f in o.data_fields() {
            let k = format!("{}.{}", o.api_name, f.api_name);
            let perm = match val(&format!("field.{k}")) {
                Some("r") => FieldPerm { read: true, write: false },
                Some("none") => FieldPerm { read: false, write: false },
                _ => continue,
            };
            grants.fields.insert(k, perm);
        }
    }
    st.app.update_role(&u.actor, &key, &grants).await?;
    Ok(redirect_flash(&u.ctx, &format!("/admin/roles/{key}"), "flash-saved"))
}

#[derive(Template)]
#[template(path = "admin/mail.html")]
struct MailPage {
    shell: Shell,
    mails: Vec<MailRow>,
    configured: bool,
}

/// `GET /admin/mail`
pub async fn mail(State(st): State<AppState>, u: UserCtx) -> WebResult {
    let mails = st.app.mails(&u.actor, 100).await?;
    render(&MailPage { shell: shell(&st, &u, "nav-mail", None).await, mails, configured: st.cfg.smtp_configured })
}
