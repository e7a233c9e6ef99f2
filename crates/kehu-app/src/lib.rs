//! Use cases. `App` owns the database and the cached schema; `RecordService` (in `records`) is
//! the one write path for every record of every object.
//!
//! Must never: write a record outside `records`, or read one without an `Actor`.

/// Declares a state enum stored as text: `as_str`, `FromStr`, comparison with `&str` (pages
/// and tests), and serialised as the same lower-case text.
#[macro_export]
macro_rules! state_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, ::serde::Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($v),+ }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }
        impl std::str::FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> std::result::Result<Self, ()> {
                match s { $($s => Ok($name::$v),)+ _ => Err(()) }
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod activity;
pub mod admin;
pub mod auth;
// archive and backup (issue #5)
pub mod backup;
// end archive and backup
pub mod bench;
pub mod bulk;
pub mod customers;
pub mod demo;
pub mod display;
pub mod export;
pub mod import;
pub mod jobs;
pub mod mail;
pub mod metadata;
pub mod modules;
pub mod records;
pub mod rich;
pub mod users;
pub mod views;
pub mod webhooks;
pub mod work;

use kehu_core::meta::Schema;
use kehu_core::AppError;
use kehu_db::conn::ConnectOptions;
use kehu_db::Db;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub(crate) use auth::{user_select as auth_user_select, UserRecord as AuthUserRecord};
pub use records::{Count, ListRequest, Page, RecordView, SearchResult};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// How often another server's metadata change is noticed (the epoch is read at most this often).
const EPOCH_CHECK: Duration = Duration::from_millis(500);

struct SchemaCache {
    schema: Arc<Schema>,
    checked: Instant,
}

/// The application: database plus cached metadata.
pub struct App {
    pub db: Db,
    cache: RwLock<SchemaCache>,
    /// A mail server is configured: reset and invitation mails are queued only then (a link
    /// that can never be sent is not kept in the database).
    mail_enabled: std::sync::atomic::AtomicBool,
    /// Where backups go (set by the server and the CLI from the configuration).
    backup_target: RwLock<Option<backup::BackupTarget>>,
    /// Rows per import batch (`import::DEFAULT_BATCH_ROWS` unless configured).
    import_batch_rows: std::sync::atomic::AtomicUsize,
    /// The next import batch, built while the previous one commits (`import::run::Ahead`).
    import_ahead: std::sync::Mutex<Option<import::run::Ahead>>,
    /// The lease this server writes when it claims background work (`work`).
    lease_micros: std::sync::atomic::AtomicI64,
    /// Where queued mail goes, when a mail server is configured.
    mailer: RwLock<Option<Arc<mail::Mailer>>>,
    /// Record views noted by pages, written by the `recent_views` pump.
    recent_queue: std::sync::Mutex<Vec<(kehu_core::Uuid, kehu_core::Uuid, kehu_core::Uuid, i64)>>,
    /// The webhook sender (HTTP client with the address guard), built at first use.
    webhook_client: std::sync::OnceLock<webhooks::Sender>,
}

impl App {
    /// Connect, migrate, seed the standard objects and load the schema.
    pub async fn open(url: &str, opts: &ConnectOptions) -> Result<Arc<App>> {
        let db = Db::connect(url, opts).await?;
        Self::with_db(db).await
    }

    pub async fn with_db(db: Db) -> Result<Arc<App>> {
        kehu_db::migrate::run(&db).await?;
        modules::seed_all(&db).await?;
        let schema = kehu_db::meta_store::load(&db).await?;
        Ok(Arc::new(App {
            db,
            cache: RwLock::new(SchemaCache { schema: Arc::new(schema), checked: Instant::now() }),
            mail_enabled: Default::default(),
            backup_target: RwLock::new(None),
            import_batch_rows: import::DEFAULT_BATCH_ROWS.into(),
            import_ahead: Default::default(),
            lease_micros: (work::DEFAULT_LEASE_SECONDS * 1_000_000).into(),
            mailer: RwLock::new(None),
            webhook_client: Default::default(),
            recent_queue: Default::default(),
        }))
    }

    /// The current schema, reloaded when another server (or this one) changed metadata.
    pub async fn schema(&self) -> Result<Arc<Schema>> {
        let (schema, stale) = {
            let c = self.cache.read().map_err(|_| AppError::internal("schema lock poisoned"))?;
            (c.schema.clone(), c.checked.elapsed() > EPOCH_CHECK)
        };
        if !stale {
            return Ok(schema);
        }
        let epoch = kehu_db::meta_store::epoch(&self.db).await?;
        if epoch == schema.epoch {
            if let Ok(mut c) = self.cache.write() {
                c.checked = Instant::now();
            }
            return Ok(schema);
        }
        self.reload_schema().await
    }

    /// Run a write; if it failed on an object or field this server does not know yet but
    /// another server just added, run it once more with the fresh schema.
    pub(crate) async fn with_fresh_metadata<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let seen = self.schema().await?.epoch;
        match f().await {
            Err(e) if self.schema_changed_since(seen, &e).await? => f().await,
            r => r,
        }
    }

    /// After a request failed on metadata this server may not know yet (an unknown object or
    /// field that another server just added): read the epoch now, reload if it changed.
    /// True when the schema changed, so the request is worth one more try.
    async fn schema_changed_since(&self, seen: i64, e: &AppError) -> Result<bool> {
        let unknown = e.code == "object.not_found" || e.fields.iter().any(|f| f.code == "field.unknown");
        if !unknown {
            return Ok(false);
        }
        let epoch = kehu_db::meta_store::epoch(&self.db).await?;
        if epoch == seen {
            return Ok(false);
        }
        self.reload_schema().await?;
        Ok(true)
    }

    /// Reload metadata now (after this server changed it).
    pub async fn reload_schema(&self) -> Result<Arc<Schema>> {
        let schema = Arc::new(kehu_db::meta_store::load(&self.db).await?);
        let mut c = self.cache.write().map_err(|_| AppError::internal("schema lock poisoned"))?;
        c.schema = schema.clone();
        c.checked = Instant::now();
        Ok(schema)
    }

    /// Deliver queued mail through `m` (the mail pump of `kehu serve`).
    pub fn set_mailer(&self, m: mail::Mailer) {
        if let Ok(mut g) = self.mailer.write() {
            *g = Some(Arc::new(m));
        }
        self.set_mail_enabled(true);
    }
    pub(crate) fn mailer(&self) -> Option<Arc<mail::Mailer>> {
        self.mailer.read().ok().and_then(|g| g.clone())
    }

    pub fn set_mail_enabled(&self, on: bool) {
        self.mail_enabled.store(on, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn mail_enabled(&self) -> bool {
        self.mail_enabled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Periodic clean-up: expired sessions, old throttle counters, used or expired links, and
    /// the bodies (which hold links) of mails that were sent, gave up, or outlived any link, and
    /// records kept in the recycle bin longer than its retention.
    pub async fn housekeeping(&self) -> Result<()> {
        let now = kehu_core::now_micros();
        let day = 86_400_000_000i64;
        let mut tx = self.db.begin().await?;
        for (sql, v) in [
            (
                "DELETE FROM sessions WHERE expires_at < $1 OR last_seen_at < $2",
                vec![now.into(), (now - auth::IDLE_TIMEOUT).into()],
            ),
            (
                "DELETE FROM login_throttle WHERE window_start < $1 AND (locked_until IS NULL OR locked_until < $2)",
                vec![(now - day).into(), now.into()],
            ),
            ("DELETE FROM auth_tokens WHERE expires_at < $1 OR used_at < $1", vec![(now - day).into()]),
            (
                "UPDATE mails SET body = NULL WHERE body IS NOT NULL AND (attempts >= $1 OR created_at < $2)",
                vec![mail::MAX_ATTEMPTS.into(), (now - 7 * day).into()],
            ),
        ] {
            tx.exec(&kehu_db::Raw::new(sql, v)).await?;
        }
        tx.commit().await?;
        // Records deleted longer ago than the recycle bin's retention are purged.
        self.purge_expired(now).await?;
        // Outbox events every consumer took, after their retention; old schedule runs and
        // webhook deliveries.
        self.prune_outbox(now).await?;
        for (sql, keep_days) in [
            ("DELETE FROM schedule_runs WHERE started_at < $1 AND state <> 'running'", 7),
            ("DELETE FROM webhook_attempts WHERE at < $1", webhooks::LOG_RETENTION_DAYS),
            (
                "DELETE FROM webhook_deliveries WHERE created_at < $1 AND state <> 'pending'",
                webhooks::LOG_RETENTION_DAYS,
            ),
        ] {
            self.db.write(&kehu_db::Raw::new(sql, vec![(now - keep_days * day).into()])).await?;
        }
        Ok(())
    }

    /// Unprocessed items per queue (for `/metrics`): outbox events, outgoing mails.
    pub async fn queue_depths(&self) -> Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for (name, sql) in [
            ("outbox", "SELECT COUNT(*) FROM outbox WHERE processed_at IS NULL"),
            ("mail", "SELECT COUNT(*) FROM mails WHERE sent_at IS NULL"),
            ("webhooks", "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'"),
            ("jobs", "SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running')"),
        ] {
            let n = self.db.one(&kehu_db::Raw::new(sql, vec![])).await?.and_then(|r| r.i64(0)).unwrap_or(0);
            out.push((name, n));
        }
        Ok(out)
    }

    /// The database's name (`sqlite`, `postgresql`) for `/readyz`.
    pub fn backend_name(&self) -> &'static str {
        self.db.backend().name()
    }

    /// Pool connections open and idle (for `/metrics`).
    pub fn pool_stats(&self) -> (u32, usize) {
        self.db.pool_stats()
    }

    /// Whether the database answers and every migration is applied (for `/readyz`).
    pub async fn ready(&self) -> Result<()> {
        let pending = kehu_db::migrate::pending(&self.db).await?;
        if pending.is_empty() {
            Ok(())
        } else {
            Err(AppError::internal(format!("pending migrations: {pending:?}")))
        }
    }
}
