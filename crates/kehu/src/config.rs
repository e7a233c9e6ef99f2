//! Configuration: defaults that run with no file; `kehu.toml` and `KEHU_*` variables override.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on (`KEHU_LISTEN`).
    pub listen: String,
    /// Where the SQLite file, backups and attachments live (`KEHU_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…` (`KEHU_DATABASE_URL`); default: SQLite in the data dir.
    pub database_url: Option<String>,
    /// `text` or `json` (`KEHU_LOG_FORMAT`).
    pub log_format: String,
    /// Database pool size (`KEHU_MAX_CONNECTIONS`).
    pub max_connections: u32,
    /// The address users reach Kehu at, e.g. `https://crm.example.com` (`KEHU_PUBLIC_URL`):
    /// links in e-mails; `https://` also marks cookies `Secure` and sends HSTS.
    pub public_url: Option<String>,
    /// Behind a reverse proxy: take the client address from `X-Forwarded-For`
    /// (`KEHU_TRUST_PROXY`).
    pub trust_proxy: bool,
    /// Bearer token for scraping `/metrics` from another host (`KEHU_METRICS_TOKEN`; local
    /// scrapers need none).
    pub metrics_token: Option<String>,
    /// Outgoing mail server (`KEHU_SMTP_URL`): `smtps://user:pass@smtp.example.com:465`,
    /// `smtp://host:587?tls=required`, or `smtp://localhost:25`. Without it mail stays queued.
    pub smtp_url: Option<String>,
    /// Sender of Kehu's mail (`KEHU_MAIL_FROM`), e.g. `客户 CRM <crm@example.com>`.
    pub mail_from: String,
    /// Rows per import batch, each one transaction (`KEHU_IMPORT_BATCH_ROWS`, default
    /// 20,000, 100–100,000). Smaller batches hold SQLite's single writer for less time (other
    /// users' saves wait behind a batch); bigger ones import faster.
    pub import_batch_rows: usize,
    /// How long a server's claim on background work holds without renewal
    /// (`KEHU_LEASE_SECONDS`, default 30): after a crash, another server takes the work
    /// over this much later.
    pub lease_seconds: Option<i64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./kehu-data"),
            database_url: None,
            log_format: "text".into(),
            max_connections: 8,
            public_url: None,
            trust_proxy: false,
            metrics_token: None,
            smtp_url: None,
            mail_from: "Kehu <kehu@localhost>".into(),
            import_batch_rows: kehu_app::import::DEFAULT_BATCH_ROWS,
            lease_seconds: None,
        }
    }
}

impl Config {
    /// Defaults, then `kehu.toml` (or the file in `KEHU_CONFIG`), then `KEHU_*` variables.
    pub fn load() -> Result<Config, Box<figment::Error>> {
        let file = std::env::var("KEHU_CONFIG").unwrap_or_else(|_| "kehu.toml".into());
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("KEHU_").ignore(&["CONFIG", "TEST_POSTGRES_URL", "LOG", "BROWSER_TESTS"]))
            .extract()
            .map_err(Box::new)
    }

    /// The database URL, creating the data directory for the default SQLite file.
    pub fn database_url(&self) -> std::io::Result<String> {
        if let Some(u) = &self.database_url {
            return Ok(u.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(format!("sqlite://{}", self.data_dir.join("kehu.db").display()))
    }
}
