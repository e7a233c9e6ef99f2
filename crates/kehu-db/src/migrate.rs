//! Migrations: Rust code (sea-query DDL), one path for both backends, recorded in
//! `schema_migrations`. Each migration runs in one transaction: it completes or leaves the old
//! schema. On PostgreSQL an advisory lock serialises app servers starting together.

use crate::conn::{Backend, Db, DbResult, Raw, Tx};
use crate::ddl::column;
use kehu_core::meta::Storage;
use kehu_core::{new_id, now_micros};
use sea_query::{Alias, ColumnDef, Index, Query, Table, TableCreateStatement};

// archive and backup (issue #5)
/// The pending migrations that alter existing tables, when the database already holds a Kehu
/// schema (a fresh, empty database needs no backup): the caller backs up before `run`.
pub async fn needs_backup(db: &Db) -> DbResult<Vec<i64>> {
    ensure_table(db).await?;
    let applied = db.one(&Raw::new("SELECT COUNT(*) FROM schema_migrations", vec![])).await?.and_then(|r| r.i64(0));
    if applied.unwrap_or(0) == 0 {
        return Ok(Vec::new());
    }
    let alters: Vec<i64> = crate::schema::migrations().iter().filter(|m| m.alters).map(|m| m.version).collect();
    Ok(pending(db).await?.into_iter().filter(|v| alters.contains(v)).collect())
}
// end archive and backup

/// Lock key for migrations and runtime DDL on PostgreSQL.
pub const DDL_LOCK: i64 = 0x4b45_4855; // "KEHU"

/// Apply every module's pending migrations (`schema::DB_MODULES`), in version order; returns
/// the versions applied now.
pub async fn run(db: &Db) -> DbResult<Vec<i64>> {
    ensure_table(db).await?;
    let mut applied = Vec::new();
    for m in crate::schema::migrations() {
        let (version, name) = (m.version, m.name);
        let mut tx = db.begin().await?;
        if !claim(&mut tx, version, name).await? {
            tx.rollback().await?;
            continue;
        }
        (m.up)(&mut tx).await?;
        tx.commit().await?;
        tracing::info!(version, name, "migration applied");
        applied.push(version);
    }
    Ok(applied)
}

/// Versions not yet applied (for `/readyz` and `kehu migrate --status`).
pub async fn pending(db: &Db) -> DbResult<Vec<i64>> {
    ensure_table(db).await?;
    let rows = db.all(&Raw::new("SELECT version FROM schema_migrations", vec![])).await?;
    let done: Vec<i64> = rows.iter().filter_map(|r| r.i64(0)).collect();
    Ok(crate::schema::versions().into_iter().filter(|v| !done.contains(v)).collect())
}

async fn ensure_table(db: &Db) -> DbResult<()> {
    let b = db.backend();
    let mut tx = db.begin().await?;
    let sql = Table::create()
        .table(Alias::new("schema_migrations"))
        .if_not_exists()
        .col(ColumnDef::new(Alias::new("version")).big_integer().not_null().primary_key())
        .col(ColumnDef::new(Alias::new("name")).text().not_null())
        .col(ColumnDef::new(Alias::new("applied_at")).big_integer().not_null())
        .build_any(b.schema_builder());
    if b == Backend::Postgres {
        tx.ddl(&format!("SELECT pg_advisory_xact_lock({DDL_LOCK})")).await?;
    }
    tx.ddl(&sql).await?;
    tx.commit().await
}

/// Inside `tx`: take the DDL lock and record `version` as applied. Returns false (and records
/// nothing) when it was applied already. Modules use it for their seed steps too.
pub async fn claim(tx: &mut Tx, version: i64, name: &str) -> DbResult<bool> {
    if tx.backend() == Backend::Postgres {
        tx.ddl(&format!("SELECT pg_advisory_xact_lock({DDL_LOCK})")).await?;
    }
    let q = Raw::new("SELECT 1 FROM schema_migrations WHERE version = $1", vec![version.into()]);
    if tx.one(&q).await?.is_some() {
        return Ok(false);
    }
    let ins = Query::insert()
        .into_table(Alias::new("schema_migrations"))
        .columns([Alias::new("version"), Alias::new("name"), Alias::new("applied_at")])
        .values_panic([version.into(), name.into(), now_micros().into()])
        .to_owned();
    tx.exec(&ins).await?;
    Ok(true)
}

/// Small builder so table definitions read like a schema.
pub(crate) struct T {
    b: Backend,
    t: TableCreateStatement,
}

impl T {
    pub(crate) fn new(b: Backend, name: &str) -> Self {
        let mut t = Table::create();
        t.table(Alias::new(name));
        Self { b, t }
    }
    pub(crate) fn id(mut self) -> Self {
        self.t.col(column(self.b, "id", Storage::Uuid).not_null().primary_key());
        self
    }
    fn col(mut self, name: &str, s: Storage, null: bool) -> Self {
        let mut c = column(self.b, name, s);
        if null {
            c.null();
        } else {
            c.not_null();
        }
        self.t.col(c);
        self
    }
    pub(crate) fn uuid(self, n: &str) -> Self {
        self.col(n, Storage::Uuid, false)
    }
    pub(crate) fn uuid_null(self, n: &str) -> Self {
        self.col(n, Storage::Uuid, true)
    }
    pub(crate) fn text(self, n: &str) -> Self {
        self.col(n, Storage::Text, false)
    }
    pub(crate) fn text_null(self, n: &str) -> Self {
        self.col(n, Storage::Text, true)
    }
    pub(crate) fn int(self, n: &str) -> Self {
        self.col(n, Storage::BigInt, false)
    }
    pub(crate) fn int_null(self, n: &str) -> Self {
        self.col(n, Storage::BigInt, true)
    }
    pub(crate) fn bool(mut self, n: &str, default: bool) -> Self {
        self.t.col(column(self.b, n, Storage::Bool).not_null().default(default));
        self
    }
    pub(crate) fn sql(&self) -> String {
        self.t.build_any(self.b.schema_builder())
    }
}

pub(crate) fn index(b: Backend, table: &str, name: &str, cols: &[&str], unique: bool) -> String {
    let mut i = Index::create();
    i.name(format!("{}_{table}__{name}", if unique { "ux" } else { "ix" })).table(Alias::new(table));
    for c in cols {
        i.col(Alias::new(*c));
    }
    if unique {
        i.unique();
    }
    i.build_any(b.schema_builder())
}

pub(crate) async fn core_tables(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    let tables = [
        T::new(b, "schema_state").int("id").int("epoch"),
        T::new(b, "meta_objects")
            .id()
            .text("api_name")
            .text("table_name")
            .text("label_en")
            .text("label_zh")
            .text("plural_en")
            .text("plural_zh")
            .text("icon")
            .bool("is_system", false)
            .int("created_at")
            .int("updated_at"),
        T::new(b, "meta_fields")
            .id()
            .uuid("object_id")
            .text("api_name")
            .text("column_name")
            .text("field_type")
            .text("label_en")
            .text("label_zh")
            .text_null("help_en")
            .text_null("help_zh")
            .bool("required", false)
            .bool("is_unique", false)
            .bool("filterable", false)
            .bool("searchable", false)
            .text_null("default_value")
            .text("options")
            .int("position")
            .bool("archived", false)
            .int("created_at")
            .int("updated_at"),
        T::new(b, "teams").id().text("name").uuid_null("parent_id").int("created_at"),
        T::new(b, "roles")
            .id()
            .text("key")
            .text("name_en")
            .text("name_zh")
            .bool("is_system", false)
            .text("grants")
            .int("created_at")
            .int("updated_at"),
        T::new(b, "users")
            .id()
            .text("email")
            .text("name")
            .uuid_null("team_id")
            .uuid("role_id")
            .bool("is_active", true)
            .text("locale")
            .text("time_zone")
            .int("created_at")
            .int("updated_at"),
        T::new(b, "audit_log")
            .id()
            .int("at")
            .uuid_null("actor_id")
            .uuid_null("object_id")
            .uuid_null("record_id")
            .text("action")
            .text("changes"),
        T::new(b, "field_history")
            .id()
            .uuid("record_id")
            .uuid("object_id")
            .uuid("field_id")
            .text_null("old_value")
            .text_null("new_value")
            .int("at")
            .uuid_null("actor_id"),
        T::new(b, "outbox")
            .id()
            .text("event")
            .uuid_null("object_id")
            .uuid_null("record_id")
            .text("payload")
            .int("created_at")
            .int_null("processed_at")
            .int("attempts"),
    ];
    for t in &tables {
        tx.ddl(&t.sql()).await?;
    }
    for sql in [
        index(b, "meta_objects", "api_name", &["api_name"], true),
        index(b, "meta_objects", "table_name", &["table_name"], true),
        index(b, "meta_fields", "object_api", &["object_id", "api_name"], true),
        index(b, "meta_fields", "object_column", &["object_id", "column_name"], true),
        index(b, "roles", "key", &["key"], true),
        index(b, "users", "email", &["email"], true),
        index(b, "users", "team_id", &["team_id"], false),
        index(b, "teams", "parent_id", &["parent_id"], false),
        index(b, "audit_log", "record_at", &["record_id", "at"], false),
        index(b, "audit_log", "at", &["at"], false),
        index(b, "field_history", "record_at", &["record_id", "at"], false),
        index(b, "outbox", "pending", &["processed_at", "id"], false),
    ] {
        tx.ddl(&sql).await?;
    }
    let ins = Query::insert()
        .into_table(Alias::new("schema_state"))
        .columns([Alias::new("id"), Alias::new("epoch")])
        .values_panic([1i64.into(), 1i64.into()])
        .to_owned();
    tx.exec(&ins).await?;
    Ok(())
}

pub(crate) async fn search_index(tx: &mut Tx) -> DbResult<()> {
    match tx.backend() {
        Backend::Sqlite => {
            tx.ddl(
                "CREATE TABLE search_docs (
                    rid INTEGER PRIMARY KEY,
                    record_id BLOB NOT NULL UNIQUE,
                    object_id BLOB NOT NULL,
                    owner_id BLOB,
                    title TEXT,
                    words TEXT NOT NULL,
                    ident TEXT NOT NULL
                );
                CREATE INDEX ix_search_docs__owner ON search_docs(owner_id);
                CREATE VIRTUAL TABLE search_words USING fts5(words, content='search_docs',
                    content_rowid='rid', tokenize='unicode61 remove_diacritics 0', prefix='2 3');
                CREATE VIRTUAL TABLE search_ident USING fts5(ident, content='search_docs',
                    content_rowid='rid', tokenize='trigram');
                CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
                    INSERT INTO search_words(rowid, words) VALUES (new.rid, new.words);
                    INSERT INTO search_ident(rowid, ident) VALUES (new.rid, new.ident);
                END;
                CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
                    INSERT INTO search_words(search_words, rowid, words) VALUES ('delete', old.rid, old.words);
                    INSERT INTO search_ident(search_ident, rowid, ident) VALUES ('delete', old.rid, old.ident);
                END;
                CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN
                    INSERT INTO search_words(search_words, rowid, words) VALUES ('delete', old.rid, old.words);
                    INSERT INTO search_ident(search_ident, rowid, ident) VALUES ('delete', old.rid, old.ident);
                    INSERT INTO search_words(rowid, words) VALUES (new.rid, new.words);
                    INSERT INTO search_ident(rowid, ident) VALUES (new.rid, new.ident);
                END;",
            )
            .await
        }
        Backend::Postgres => {
            // pg_trgm is a trusted extension (PostgreSQL 13+). Another server or test may be
            // creating it at the same moment: a savepoint keeps that race harmless.
            tx.ddl("SAVEPOINT ext").await?;
            if tx.ddl("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public").await.is_err() {
                tx.ddl("ROLLBACK TO SAVEPOINT ext").await?;
            }
            tx.ddl("RELEASE SAVEPOINT ext").await?;
            tx.ddl(
                "CREATE TABLE search_docs (
                    record_id uuid PRIMARY KEY,
                    object_id uuid NOT NULL,
                    owner_id uuid,
                    title text,
                    words text NOT NULL,
                    ident text NOT NULL,
                    tsv tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(words, ' '))) STORED
                );
                CREATE INDEX ix_search_docs__owner ON search_docs(owner_id);
                CREATE INDEX ix_search_docs__tsv ON search_docs USING gin(tsv);
                CREATE INDEX ix_search_docs__ident ON search_docs USING gin(ident public.gin_trgm_ops);",
            )
            .await
        }
    }
}

pub(crate) async fn default_roles(tx: &mut Tx) -> DbResult<()> {
    let now = now_micros();
    for (key, en, zh, grants) in kehu_core::perm::default_roles() {
        let grants = serde_json::to_string(&grants).map_err(|e| crate::DbError::Other(e.to_string()))?;
        let q = Query::insert()
            .into_table(Alias::new("roles"))
            .columns(
                ["id", "key", "name_en", "name_zh", "is_system", "grants", "created_at", "updated_at"].map(Alias::new),
            )
            .values_panic([
                new_id().into(),
                key.into(),
                en.into(),
                zh.into(),
                true.into(),
                grants.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        tx.exec(&q).await?;
    }
    Ok(())
}
