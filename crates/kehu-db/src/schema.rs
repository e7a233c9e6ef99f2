//! The storage half of the module manifest (the app half is `kehu_app::modules`, the web half
//! `kehu_web::modules`): per module, its migrations and what each of its tables is to the
//! archive. `migrate` applies every module's migrations in version order; `archive` exports,
//! loads and checks the tables the modules declare, and refuses a table nobody declared.
//!
//! Adding a module's tables: a migration file `mNNN_<name>.rs` (the next free version), and
//! one `DbModule` below with the migration and its tables, named like the module's entry in
//! `kehu_app::modules::MODULES` (a test checks that every storage module has one).

use crate::archive::tables::Core;
use crate::conn::{DbResult, Tx};
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

/// A migration's body, run in the transaction that records it as applied.
pub type Up = for<'a> fn(&'a mut Tx) -> Pin<Box<dyn Future<Output = DbResult<()>> + Send + 'a>>;

/// One migration: versions are unique across modules and applied in order.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub up: Up,
    /// It changes tables that existed before it (ALTER, UPDATE of existing rows): an existing
    /// database is backed up before it is applied. A migration that only creates tables
    /// needs no backup.
    pub alters: bool,
}

/// What one module keeps in the database.
pub struct DbModule {
    pub name: &'static str,
    pub migrations: &'static [Migration],
    /// Data tables, in archive order (archived, dumped and restored).
    pub data: &'static [Core],
    /// Derived from records but archived after the record tables, so a loaded archive needs
    /// no rebuild.
    pub derived: &'static [Core],
    /// Instance-local tables, neither archived nor dumped.
    pub transient: &'static [&'static str],
}

/// A migration body from an `async fn(&mut Tx) -> DbResult<()>`.
macro_rules! up {
    ($f:path) => {{
        fn f(tx: &mut Tx) -> Pin<Box<dyn Future<Output = DbResult<()>> + Send + '_>> {
            Box::pin($f(tx))
        }
        f as Up
    }};
}

const fn m(version: i64, name: &'static str, up: Up, alters: bool) -> Migration {
    Migration { version, name, up, alters }
}

const fn core(name: &'static str, key: &'static [&'static str], json: &'static [&'static str]) -> Core {
    Core { name, key, json }
}

const ID: &[&str] = &["id"];

/// Every module's storage, in archive order: the core first (migrations and metadata lead, so
/// a loader creates the record tables from the metadata before it meets their rows).
pub const DB_MODULES: &[DbModule] = &[
    DbModule {
        name: "core",
        migrations: &[
            m(1, "core_tables", up!(crate::migrate::core_tables), false),
            m(2, "search_index", up!(crate::migrate::search_index), false),
            m(3, "default_roles", up!(crate::migrate::default_roles), false),
            m(4, "auth_tables", up!(crate::m004_auth::up), true),
            m(5, "lists", up!(crate::m005_lists::up), false),
            m(6, "custom", up!(crate::m006_custom::up), true),
            m(10, "backups", up!(crate::m010_backup::up), false),
            m(11, "search_tuning", up!(crate::m011_search_tuning::up), true),
            m(12, "outbox_audit", up!(crate::m012_outbox_audit::up), true),
            m(13, "search_ident", up!(crate::m013_search_ident::up), true),
            // Background work: job leases, mail leases, schedule runs, consumers' delivery
            // state — and the webhook tables, which predate this manifest (declared below
            // by the webhooks module).
            m(15, "work", up!(crate::m015_work::up), true),
            m(16, "seed_items", up!(crate::m016_seed_items::up), false),
            m(17, "board", up!(crate::m017_board::up), true),
        ],
        data: &[
            core("schema_migrations", &["version"], &[]),
            core("schema_state", ID, &[]),
            core("meta_objects", ID, &["ui"]),
            core("meta_fields", ID, &["options", "default_value"]),
            core("roles", ID, &["grants"]),
            core("teams", ID, &[]),
            core("users", ID, &["recovery_codes"]),
            core("api_tokens", ID, &["scopes"]),
            core("auth_tokens", ID, &[]),
            core("settings", &["key"], &[]),
            core("saved_views", ID, &["columns", "filter", "sort", "layout"]),
            core("jobs", ID, &["params", "cursor"]),
            core("mails", ID, &[]),
            core("audit_log", ID, &["changes"]),
            core("field_history", ID, &["old_value", "new_value"]),
            core("outbox", ID, &["payload"]),
            core("outbox_consumed", &["event_id", "consumer"], &[]),
            // Seed items applied to the standard objects.
            core("seed_items", &["key"], &[]),
        ],
        derived: &[core("search_docs", &["record_id"], &[])],
        // Sign-in sessions (everyone signs in again on a new instance), login throttling
        // counters, this instance's backup runs (their files live on this machine) and its
        // schedule runs.
        transient: &["sessions", "login_throttle", "backups", "schedule_runs"],
    },
    DbModule {
        name: "activity",
        migrations: &[m(8, "activity_tables", up!(crate::m008_activity::up), false)],
        data: &[core("notifications", ID, &[]), core("recent_views", &["user_id", "record_id"], &[])],
        derived: &[],
        transient: &[],
    },
    DbModule {
        name: "import",
        migrations: &[
            m(9, "import", up!(crate::m009_import::up), false),
            m(14, "import_checks", up!(crate::m014_import_checks::up), false),
        ],
        // Their history, undo logs, failed rows, saved mappings, dry runs, and the chunks of
        // an import still running (so a moved instance can finish or undo it).
        data: &[
            core("imports", ID, &["headers", "samples", "settings"]),
            core("import_chunks", &["import_id", "seq"], &["dups"]),
            core("import_changes", &["import_id", "row_no", "record_id"], &["changes"]),
            core("import_failures", &["import_id", "row_no"], &["cells", "errors"]),
            core("import_mappings", ID, &["settings"]),
            core("import_checks", ID, &["settings", "counts", "errors"]),
        ],
        derived: &[],
        transient: &[],
    },
    DbModule {
        name: "webhooks",
        migrations: &[],
        data: &[
            core("webhook_endpoints", ID, &["objects", "events"]),
            core("webhook_deliveries", ID, &["body"]),
            core("webhook_attempts", ID, &[]),
        ],
        derived: &[],
        transient: &[],
    },
];

/// Every module's migrations, in version order.
pub fn migrations() -> &'static [&'static Migration] {
    static ALL: OnceLock<Vec<&'static Migration>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<&'static Migration> = DB_MODULES.iter().flat_map(|m| m.migrations).collect();
        v.sort_by_key(|m| m.version);
        v
    })
}

/// Every migration version, in order.
pub fn versions() -> Vec<i64> {
    migrations().iter().map(|m| m.version).collect()
}

/// Every module's data tables, in archive order.
pub fn data_tables() -> impl Iterator<Item = &'static Core> {
    DB_MODULES.iter().flat_map(|m| m.data)
}

/// Every module's derived tables, in archive order.
pub fn derived_tables() -> impl Iterator<Item = &'static Core> {
    DB_MODULES.iter().flat_map(|m| m.derived)
}

/// Whether a table is instance-local.
pub fn transient(name: &str) -> bool {
    DB_MODULES.iter().any(|m| m.transient.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_unique_and_tables_have_one_role() {
        let v = versions();
        let mut d = v.clone();
        d.dedup();
        assert_eq!(v, d, "a migration version is declared twice");
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        let mut names: Vec<&str> = data_tables()
            .chain(derived_tables())
            .map(|c| c.name)
            .chain(DB_MODULES.iter().flat_map(|m| m.transient.iter().copied()))
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a table is classified twice");
        assert!(data_tables().chain(derived_tables()).all(|c| !c.key.is_empty()));
        assert_eq!(data_tables().next().map(|c| c.name), Some("schema_migrations"));
    }
}
