//! Backups as the administrator sees them: take one now, on a schedule (every N hours, keep
//! the last K scheduled files), before a migration that alters existing tables; every run is
//! a row in `backups` (started, finished, file, size, ok or the error).
//!
//! Where the bytes come from is `kehu_db::backup`: SQLite `VACUUM INTO` (online, consistent),
//! PostgreSQL `pg_dump` when installed, else the Kehu archive.
//!
//! Must never: delete a file outside the backup directory, or run the same scheduled period
//! twice (its `period_key` is unique).

use crate::{App, Result};
use kehu_core::perm::Actor;
use kehu_core::{new_id, now_micros, AppError, Uuid};
use kehu_db::backup as store;
use kehu_db::{Backend, Db, Raw};
use std::path::{Path, PathBuf};

/// Where backups go and how to reach the database for tools such as `pg_dump`.
#[derive(Debug, Clone)]
pub struct BackupTarget {
    pub dir: PathBuf,
    pub url: String,
    /// PostgreSQL: the schema Kehu lives in, when not the default.
    pub pg_schema: Option<String>,
}

/// The schedule set on the admin page (stored in `settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSettings {
    pub enabled: bool,
    pub every_hours: u32,
    pub keep: u32,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self { enabled: false, every_hours: 24, keep: 7 }
    }
}

/// One backup run.
#[derive(Debug, Clone)]
pub struct BackupRun {
    pub id: Uuid,
    pub trigger: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `running`, `ok` or `failed`.
    pub state: String,
    pub file: Option<String>,
    pub size: Option<i64>,
    pub error: Option<String>,
    pub pruned_at: Option<i64>,
}

const HOUR: i64 = 3_600_000_000;
const COLS: &str = "id, trigger, started_at, finished_at, state, file, size, error, pruned_at";

fn run_from(r: &kehu_db::DbRow) -> BackupRun {
    BackupRun {
        id: r.uuid(0).unwrap_or_default(),
        trigger: r.string(1).unwrap_or_default(),
        started_at: r.i64(2).unwrap_or(0),
        finished_at: r.i64(3),
        state: r.string(4).unwrap_or_default(),
        file: r.string(5),
        size: r.i64(6),
        error: r.string(7),
        pruned_at: r.i64(8),
    }
}

/// A timestamped file name in `dir`: `kehu-<label>-20260102-030405-678.<ext>`.
pub fn backup_path(dir: &Path, label: &str, ext: &str) -> PathBuf {
    let ts = chrono::Utc::now().format("%Y%m%d-%H%M%S-%3f");
    dir.join(format!("kehu-{label}-{ts}.{ext}"))
}

/// Where a backup goes: a new timestamped file in a directory (`kehu-<label>-<time>.<ext>`,
/// the extension saying what it holds), or exactly the file an operator named.
#[derive(Debug, Clone, Copy)]
pub enum Dest<'a> {
    Dir { dir: &'a Path, label: &'a str },
    File(&'a Path),
}

impl Dest<'_> {
    fn path(&self, ext: &str) -> PathBuf {
        match self {
            Dest::Dir { dir, label } => backup_path(dir, label, ext),
            Dest::File(p) => p.to_path_buf(),
        }
    }
}

/// Take a backup of `db` into `target.dir` (created if missing): SQLite `VACUUM INTO`;
/// PostgreSQL `pg_dump` when installed, else the archive. Returns the file and its size.
pub async fn take(db: &Db, target: &BackupTarget, label: &str) -> Result<(PathBuf, u64)> {
    std::fs::create_dir_all(&target.dir)
        .map_err(|e| AppError::invalid("backup.io").with_detail(format!("{}: {e}", target.dir.display())))?;
    write(db, &target.url, target.pg_schema.as_deref(), Dest::Dir { dir: &target.dir, label }).await
}

/// Write a backup of `db` (reached at `url` by tools) to `dest`: SQLite `VACUUM INTO`;
/// PostgreSQL `pg_dump` when it is installed and succeeds, else the Kehu archive — a
/// `pg_dump` older than the server refuses, and the archive still works. The one rule for the
/// admin page, the schedule, backups before migrations and `kehu backup`. Returns the file and
/// its size.
pub async fn write(db: &Db, url: &str, pg_schema: Option<&str>, dest: Dest<'_>) -> Result<(PathBuf, u64)> {
    match db.backend() {
        Backend::Sqlite => {
            let path = dest.path("db");
            let size = store::vacuum_into(db, &path).await?;
            Ok((path, size))
        }
        Backend::Postgres => {
            if store::pg_dump_available() {
                let path = dest.path("pgdump");
                let (url, schema, p) = (url.to_string(), pg_schema.map(str::to_string), path.clone());
                let r = tokio::task::spawn_blocking(move || store::pg_dump(&url, schema.as_deref(), &p))
                    .await
                    .map_err(|e| AppError::internal(e.to_string()))?;
                match r {
                    Ok(size) => return Ok((path, size)),
                    Err(e) => tracing::warn!(error = %e, "pg_dump failed; writing a Kehu archive instead"),
                }
            }
            let path = dest.path("kehu-archive");
            let s = kehu_db::archive::write::export(db, &path, env!("CARGO_PKG_VERSION")).await?;
            Ok((path, s.bytes))
        }
    }
}

/// Before migrations that alter existing tables, back the database up (see
/// the migrations marked `alters` in `kehu_db::schema`). Returns the file, when one was needed.
pub async fn before_migrations(db: &Db, target: &BackupTarget) -> Result<Option<PathBuf>> {
    let versions = kehu_db::migrate::needs_backup(db).await?;
    if versions.is_empty() {
        return Ok(None);
    }
    let label = format!("before-migration-{}", versions.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("-"));
    let (path, size) = take(db, target, &label).await?;
    tracing::info!(file = %path.display(), size, ?versions, "backup taken before migrations that alter tables");
    Ok(Some(path))
}

impl App {
    /// Tell the app where backups go (the server and the CLI do, from the configuration).
    pub fn set_backup_target(&self, t: BackupTarget) {
        if let Ok(mut g) = self.backup_target.write() {
            *g = Some(t);
        }
    }

    pub fn backup_target(&self) -> Option<BackupTarget> {
        self.backup_target.read().ok().and_then(|g| g.clone())
    }

    pub async fn backup_settings(&self) -> Result<BackupSettings> {
        let d = BackupSettings::default();
        let get = |v: Option<String>, dflt: u32| v.and_then(|s| s.parse().ok()).unwrap_or(dflt);
        Ok(BackupSettings {
            enabled: self.setting("backup_enabled").await?.as_deref() == Some("true"),
            every_hours: get(self.setting("backup_every_hours").await?, d.every_hours),
            keep: get(self.setting("backup_keep").await?, d.keep),
        })
    }

    /// Save the schedule (administrators only): every 1–720 hours, keep 1–1000 files.
    pub async fn set_backup_settings(&self, actor: &Actor, s: BackupSettings) -> Result<()> {
        if !actor.is_admin() {
            return Err(AppError::forbidden("permission.denied"));
        }
        let mut errs = Vec::new();
        if !(1..=720).contains(&s.every_hours) {
            errs.push(kehu_core::FieldError::new("every_hours", "backup.every_hours_range"));
        }
        if !(1..=1000).contains(&s.keep) {
            errs.push(kehu_core::FieldError::new("keep", "backup.keep_range"));
        }
        if !errs.is_empty() {
            return Err(AppError::fields(errs));
        }
        let mut tx = self.db.begin().await?;
        App::put_setting(&mut tx, "backup_enabled", if s.enabled { "true" } else { "false" }).await?;
        App::put_setting(&mut tx, "backup_every_hours", &s.every_hours.to_string()).await?;
        App::put_setting(&mut tx, "backup_keep", &s.keep.to_string()).await?;
        let changes = serde_json::json!({"enabled": s.enabled, "every_hours": s.every_hours, "keep": s.keep});
        tx.exec(&Raw::new(
            "INSERT INTO audit_log (id, at, actor_id, action, changes) VALUES ($1, $2, $3, $4, $5)",
            vec![
                new_id().into(),
                now_micros().into(),
                actor.user_id.into(),
                "backup.settings".into(),
                changes.to_string().into(),
            ],
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Take a backup now ("Back up now" on the admin page; `kehu backup`).
    pub async fn backup_now(&self, actor: &Actor) -> Result<BackupRun> {
        if !actor.is_admin() {
            return Err(AppError::forbidden("permission.denied"));
        }
        let run = self.start_run("manual", None, actor.user_id).await?.ok_or_else(|| AppError::internal("no run"))?;
        self.finish_run(run, "manual").await
    }

    /// The scheduled backup of the current period, if the schedule is on and nobody took it
    /// yet (the period key is unique: a restart or a second server does not run it again).
    /// Prunes scheduled files beyond the last K after a success.
    pub async fn run_due_backup(&self, now: i64) -> Result<Option<BackupRun>> {
        let s = self.backup_settings().await?;
        if !s.enabled || self.backup_target().is_none() {
            return Ok(None);
        }
        let period = now / (s.every_hours as i64 * HOUR);
        let key = format!("scheduled:{}h:{period}", s.every_hours);
        let Some(run) = self.start_run("scheduled", Some(&key), None).await? else { return Ok(None) };
        let done = self.finish_run(run, "scheduled").await?;
        if done.state == "ok" {
            self.prune_backups(s.keep).await?;
        }
        Ok(Some(done))
    }

    /// Insert a `running` row; None when the period key is taken.
    async fn start_run(&self, trigger: &str, key: Option<&str>, actor: Option<Uuid>) -> Result<Option<BackupRun>> {
        let id = new_id();
        let now = now_micros();
        let q = Raw::new(
            "INSERT INTO backups (id, trigger, period_key, actor_id, started_at, state) VALUES ($1, $2, $3, $4, $5, 'running')",
            vec![id.into(), trigger.into(), key.map(str::to_string).into(), actor.into(), now.into()],
        );
        match self.db.write(&q).await {
            Ok(_) => {}
            Err(kehu_db::DbError::Unique { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(Some(BackupRun {
            id,
            trigger: trigger.into(),
            started_at: now,
            finished_at: None,
            state: "running".into(),
            file: None,
            size: None,
            error: None,
            pruned_at: None,
        }))
    }

    async fn finish_run(&self, mut run: BackupRun, label: &str) -> Result<BackupRun> {
        let target = self.backup_target().ok_or_else(|| AppError::invalid("backup.no_target"))?;
        let r = take(&self.db, &target, label).await;
        run.finished_at = Some(now_micros());
        match &r {
            Ok((path, size)) => {
                run.state = "ok".into();
                run.file = Some(path.display().to_string());
                run.size = Some(*size as i64);
            }
            Err(e) => {
                run.state = "failed".into();
                run.error = Some(e.code.clone());
                tracing::warn!(error = %e, "backup failed");
            }
        }
        let q = Raw::new(
            "UPDATE backups SET finished_at = $1, state = $2, file = $3, size = $4, error = $5 WHERE id = $6",
            vec![
                run.finished_at.into(),
                run.state.clone().into(),
                run.file.clone().into(),
                run.size.into(),
                run.error.clone().into(),
                run.id.into(),
            ],
        );
        self.db.write(&q).await?;
        r?;
        Ok(run)
    }

    /// Delete scheduled backup files beyond the newest `keep` (files in the backup directory
    /// only), marking their rows pruned.
    pub async fn prune_backups(&self, keep: u32) -> Result<u64> {
        let Some(target) = self.backup_target() else { return Ok(0) };
        let q = Raw::new(
            format!(
                "SELECT {COLS} FROM backups WHERE trigger = 'scheduled' AND state = 'ok' AND pruned_at IS NULL \
                 ORDER BY started_at DESC"
            ),
            vec![],
        );
        let mut n = 0;
        for run in self.db.all(&q).await?.iter().map(run_from).skip(keep as usize) {
            let Some(file) = &run.file else { continue };
            let path = PathBuf::from(file);
            if path.parent() != Some(target.dir.as_path()) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(error = %e, file, "pruning a backup");
                    continue;
                }
            }
            let q =
                Raw::new("UPDATE backups SET pruned_at = $1 WHERE id = $2", vec![now_micros().into(), run.id.into()]);
            self.db.write(&q).await?;
            n += 1;
        }
        Ok(n)
    }

    /// The last successful backup.
    pub async fn last_backup(&self) -> Result<Option<BackupRun>> {
        let q = Raw::new(
            format!("SELECT {COLS} FROM backups WHERE state = 'ok' ORDER BY finished_at DESC LIMIT 1"),
            vec![],
        );
        Ok(self.db.one(&q).await?.as_ref().map(run_from))
    }

    /// Recent runs, newest first (administrators only).
    pub async fn backup_runs(&self, actor: &Actor, limit: i64) -> Result<Vec<BackupRun>> {
        if !actor.is_admin() {
            return Err(AppError::forbidden("permission.denied"));
        }
        let q = Raw::new(format!("SELECT {COLS} FROM backups ORDER BY started_at DESC LIMIT $1"), vec![limit.into()]);
        Ok(self.db.all(&q).await?.iter().map(run_from).collect())
    }
}
