//! The backups page (administrators): last successful backup, "Back up now", the schedule
//! (every N hours, keep the last K) and the recent runs. The work is `kehu_app::backup`.

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::auth::redirect_flash;
use crate::shell::{render, Form, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::Form as FormBody;
use kehu_app::backup::{BackupRun, BackupSettings};
use kehu_core::AppError;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "backup/backup_page.html")]
struct BackupPage {
    shell: Shell,
    last: Option<BackupRun>,
    runs: Vec<BackupRun>,
    dir: String,
    form: Form,
    now: i64,
}

impl BackupPage {
    fn size(&self, r: &BackupRun) -> String {
        r.size.map(human_size).unwrap_or_else(|| "—".into())
    }
    fn file_name(&self, r: &BackupRun) -> String {
        r.file
            .as_deref()
            .and_then(|f| std::path::Path::new(f).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
    /// "3 h", "2 d" since the run finished.
    fn age(&self, r: &BackupRun) -> String {
        let secs = (self.now - r.finished_at.unwrap_or(r.started_at)).max(0) / 1_000_000;
        let (n, key) = match secs {
            s if s < 3600 => (s / 60, "backup-age-minutes"),
            s if s < 172_800 => (s / 3600, "backup-age-hours"),
            s => (s / 86_400, "backup-age-days"),
        };
        self.shell.t1(key, "n", &n.to_string())
    }
    fn state(&self, r: &BackupRun) -> String {
        self.shell.t(&format!("backup-state-{}", r.state))
    }
    fn trigger(&self, r: &BackupRun) -> String {
        self.shell.t(&format!("backup-trigger-{}", r.trigger))
    }
    fn error(&self, r: &BackupRun) -> String {
        r.error.as_deref().map(|c| self.shell.err(c)).unwrap_or_default()
    }
}

pub fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1_073_741_824.0 {
        format!("{:.1} GB", b / 1_073_741_824.0)
    } else if b >= 1_048_576.0 {
        format!("{:.1} MB", b / 1_048_576.0)
    } else {
        format!("{:.0} KB", (b / 1024.0).ceil())
    }
}

async fn page_with(st: &AppState, u: &UserCtx, form: Form) -> WebResult {
    if !u.actor.is_admin() {
        return Err(AppError::forbidden("permission.denied").into());
    }
    let title = st.i18n.get(u.ctx.lang, "nav-backup", &[]);
    let shell = Shell::new(st, &u.ctx, &u.session, &u.actor, title.clone()).await.crumb(title, None);
    let settings = st.app.backup_settings().await?;
    let form = if form.values.is_empty() {
        let (e, h, k) = (settings.enabled.to_string(), settings.every_hours.to_string(), settings.keep.to_string());
        Form { values: Form::with(&[("enabled", &e), ("every_hours", &h), ("keep", &k)]).values, ..form }
    } else {
        form
    };
    render(&BackupPage {
        shell,
        last: st.app.last_backup().await?,
        runs: st.app.backup_runs(&u.actor, 20).await?,
        dir: st.app.backup_target().map(|t| t.dir.display().to_string()).unwrap_or_default(),
        form,
        now: kehu_core::now_micros(),
    })
}

/// `GET /admin/backup`
pub async fn page(State(st): State<AppState>, u: UserCtx) -> WebResult {
    page_with(&st, &u, Form::default()).await
}

#[derive(Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    enabled: Option<String>,
    every_hours: String,
    keep: String,
}

/// `POST /admin/backup` — save the schedule.
pub async fn save(State(st): State<AppState>, u: UserCtx, FormBody(f): FormBody<ScheduleForm>) -> WebResult {
    let enabled = f.enabled.is_some();
    // Not a number: 0, which the range check refuses with the field's message.
    let num = |s: &str| s.trim().parse::<u32>().unwrap_or(0);
    let settings = BackupSettings { enabled, every_hours: num(&f.every_hours), keep: num(&f.keep) };
    let res = st.app.set_backup_settings(&u.actor, settings).await;
    match res {
        Ok(()) => Ok(redirect_flash(&u.ctx, "/admin/backup", "flash-saved")),
        Err(e) if e.kind != kehu_core::ErrorKind::Forbidden => {
            let en = enabled.to_string();
            let form = Form::with(&[("enabled", &en), ("every_hours", &f.every_hours), ("keep", &f.keep)])
                .fail(&st.i18n, u.ctx.lang, &e);
            let mut r = page_with(&st, &u, form).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/backup/run` — "Back up now".
pub async fn run(State(st): State<AppState>, u: UserCtx) -> WebResult {
    match st.app.backup_now(&u.actor).await {
        Ok(_) => Ok(redirect_flash(&u.ctx, "/admin/backup", "flash-backup-done")),
        Err(e) if e.kind != kehu_core::ErrorKind::Forbidden => {
            let form = Form::default().fail(&st.i18n, u.ctx.lang, &e);
            let mut r = page_with(&st, &u, form).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}
