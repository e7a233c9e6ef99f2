//! Connections and transactions on either backend, statement execution with bound values,
//! and dynamically decoded rows.

use kehu_core::{AppError, Uuid};
use sea_query::{PostgresQueryBuilder, QueryBuilder, SchemaBuilder, SqliteQueryBuilder, Value, Values};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, Column, Postgres, Row, Sqlite, Transaction, TypeInfo, ValueRef};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Which database a `Db` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn query_builder(self) -> &'static dyn QueryBuilder {
        match self {
            Backend::Sqlite => &SqliteQueryBuilder,
            Backend::Postgres => &PostgresQueryBuilder,
        }
    }
    pub fn schema_builder(self) -> &'static dyn SchemaBuilder {
        match self {
            Backend::Sqlite => &SqliteQueryBuilder,
            Backend::Postgres => &PostgresQueryBuilder,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A storage error. Unique violations are kept apart so the engine can name the field.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unique violation on column {column:?}")]
    Unique { column: Option<String> },
    #[error("database busy")]
    Busy,
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unique { .. } => AppError::conflict("record.duplicate").with_detail(e.to_string()),
            DbError::Busy => AppError::conflict("db.busy"),
            other => AppError::internal(other.to_string()),
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

pub(crate) fn map_err(e: sqlx::Error) -> DbError {
    if let sqlx::Error::Database(d) = &e {
        if d.kind() == sqlx::error::ErrorKind::UniqueViolation {
            // PostgreSQL names the index (`ux_<table>_<column>`); SQLite says
            // "UNIQUE constraint failed: <table>.<column>".
            let column = match d.constraint() {
                Some(c) => c.strip_prefix("ux_").and_then(|r| r.split_once("__")).map(|(_, c)| c.to_string()),
                None => d.message().rsplit_once('.').map(|(_, c)| c.trim().to_string()),
            };
            return DbError::Unique { column };
        }
        let code = d.code().unwrap_or_default();
        if code == "5" || code == "517" || code == "40001" || code == "40P01" {
            return DbError::Busy;
        }
    }
    DbError::Sql(e)
}

/// Anything that can be turned into SQL text and bound values for a backend.
pub trait Sql {
    fn build(&self, b: Backend) -> (String, Values);
}

macro_rules! impl_sql {
    ($($t:ty),*) => {$(
        impl Sql for $t {
            fn build(&self, b: Backend) -> (String, Values) {
                self.build_any(b.query_builder())
            }
        }
    )*};
}
impl_sql!(
    sea_query::SelectStatement,
    sea_query::InsertStatement,
    sea_query::UpdateStatement,
    sea_query::DeleteStatement
);

/// Hand-written SQL with `$1…$n` placeholders (both backends accept them), for the few
/// dialect-specific statements (full-text search, upserts, pragmas). Values are still bound.
#[derive(Debug, Clone)]
pub struct Raw {
    pub sql: String,
    pub values: Vec<Value>,
}

impl Raw {
    pub fn new(sql: impl Into<String>, values: Vec<Value>) -> Self {
        Self { sql: sql.into(), values }
    }
}

impl Sql for Raw {
    fn build(&self, _: Backend) -> (String, Values) {
        (self.sql.clone(), Values(self.values.clone()))
    }
}

/// A decoded column value.
#[derive(Debug, Clone, PartialEq)]
pub enum DbVal {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Bool(bool),
    Uuid(Uuid),
}

/// A row, decoded without knowing its types in advance.
#[derive(Debug, Clone, Default)]
pub struct DbRow(pub Vec<DbVal>);

impl DbRow {
    pub fn val(&self, i: usize) -> &DbVal {
        self.0.get(i).unwrap_or(&DbVal::Null)
    }
    pub fn i64(&self, i: usize) -> Option<i64> {
        match self.val(i) {
            DbVal::Int(n) => Some(*n),
            DbVal::Bool(b) => Some(*b as i64),
            DbVal::Real(f) => Some(*f as i64),
            DbVal::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
    pub fn bool(&self, i: usize) -> Option<bool> {
        match self.val(i) {
            DbVal::Bool(b) => Some(*b),
            DbVal::Int(n) => Some(*n != 0),
            _ => None,
        }
    }
    pub fn str(&self, i: usize) -> Option<&str> {
        match self.val(i) {
            DbVal::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn string(&self, i: usize) -> Option<String> {
        self.str(i).map(str::to_string)
    }
    pub fn uuid(&self, i: usize) -> Option<Uuid> {
        match self.val(i) {
            DbVal::Uuid(u) => Some(*u),
            DbVal::Blob(b) => Uuid::from_slice(b).ok(),
            DbVal::Text(s) => Uuid::parse_str(s).ok(),
            _ => None,
        }
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A row of a fixed table, read by column name (`FromRow` turns it into a typed struct).
#[derive(Debug, Clone)]
pub struct NamedRow {
    names: Arc<[String]>,
    row: DbRow,
}

impl NamedRow {
    fn at(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).unwrap_or(usize::MAX)
    }
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.row.i64(self.at(name))
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.row.bool(self.at(name))
    }
    pub fn string(&self, name: &str) -> Option<String> {
        self.row.string(self.at(name))
    }
    pub fn uuid(&self, name: &str) -> Option<Uuid> {
        self.row.uuid(self.at(name))
    }
    /// A column that must hold a value: its absence is a damaged row, named in the error.
    pub fn need<T>(&self, name: &str, v: Option<T>) -> DbResult<T> {
        v.ok_or_else(|| DbError::Other(format!("column {name} missing or empty")))
    }
    pub fn req_i64(&self, name: &str) -> DbResult<i64> {
        self.need(name, self.i64(name))
    }
    pub fn req_string(&self, name: &str) -> DbResult<String> {
        self.need(name, self.string(name))
    }
    pub fn req_uuid(&self, name: &str) -> DbResult<Uuid> {
        self.need(name, self.uuid(name))
    }
    /// A state column parsed into its enum.
    pub fn state<T: FromStr>(&self, name: &str) -> DbResult<T> {
        let s = self.req_string(name)?;
        s.parse().map_err(|_| DbError::Other(format!("column {name}: unknown state {s:?}")))
    }
}

/// A typed struct read from a row of a fixed table by column name.
pub trait FromRow: Sized {
    fn from_row(r: &NamedRow) -> DbResult<Self>;
}

pub(crate) fn sqlite_args(values: Values) -> DbResult<SqliteArguments<'static>> {
    let mut a = SqliteArguments::default();
    for v in values.0 {
        let r = match v {
            Value::Bool(x) => a.add(x),
            Value::TinyInt(x) => a.add(x.map(i64::from)),
            Value::SmallInt(x) => a.add(x.map(i64::from)),
            Value::Int(x) => a.add(x.map(i64::from)),
            Value::BigInt(x) => a.add(x),
            Value::TinyUnsigned(x) => a.add(x.map(i64::from)),
            Value::SmallUnsigned(x) => a.add(x.map(i64::from)),
            Value::Unsigned(x) => a.add(x.map(i64::from)),
            Value::BigUnsigned(x) => a.add(x.map(|n| n as i64)),
            Value::Float(x) => a.add(x.map(f64::from)),
            Value::Double(x) => a.add(x),
            Value::String(x) => a.add(x.map(|s| *s)),
            Value::Char(x) => a.add(x.map(|c| c.to_string())),
            Value::Bytes(x) => a.add(x.map(|b| *b)),
            Value::Uuid(x) => a.add(x.map(|u| u.as_bytes().to_vec())),
            #[allow(unreachable_patterns)]
            other => return Err(DbError::Other(format!("unsupported bind value {other:?}"))),
        };
        r.map_err(|e| DbError::Other(e.to_string()))?;
    }
    Ok(a)
}

pub(crate) fn pg_args(values: Values) -> DbResult<PgArguments> {
    let mut a = PgArguments::default();
    for v in values.0 {
        let r = match v {
            Value::Bool(x) => a.add(x),
            Value::TinyInt(x) => a.add(x.map(i16::from)),
            Value::SmallInt(x) => a.add(x),
            Value::Int(x) => a.add(x),
            Value::BigInt(x) => a.add(x),
            Value::TinyUnsigned(x) => a.add(x.map(i16::from)),
            Value::SmallUnsigned(x) => a.add(x.map(i32::from)),
            Value::Unsigned(x) => a.add(x.map(i64::from)),
            Value::BigUnsigned(x) => a.add(x.map(|n| n as i64)),
            Value::Float(x) => a.add(x),
            Value::Double(x) => a.add(x),
            Value::String(x) => a.add(x.map(|s| *s)),
            Value::Char(x) => a.add(x.map(|c| c.to_string())),
            Value::Bytes(x) => a.add(x.map(|b| *b)),
            Value::Uuid(x) => a.add(x.map(|u| *u)),
            #[allow(unreachable_patterns)]
            other => return Err(DbError::Other(format!("unsupported bind value {other:?}"))),
        };
        r.map_err(|e| DbError::Other(e.to_string()))?;
    }
    Ok(a)
}

pub(crate) fn decode_sqlite(row: &SqliteRow) -> DbRow {
    let mut out = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let v = match row.try_get_raw(i) {
            Ok(raw) if raw.is_null() => DbVal::Null,
            Ok(raw) => match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" => row.try_get_unchecked::<i64, _>(i).map(DbVal::Int).unwrap_or(DbVal::Null),
                "REAL" => row.try_get_unchecked::<f64, _>(i).map(DbVal::Real).unwrap_or(DbVal::Null),
                "BLOB" => row.try_get_unchecked::<Vec<u8>, _>(i).map(DbVal::Blob).unwrap_or(DbVal::Null),
                _ => row.try_get_unchecked::<String, _>(i).map(DbVal::Text).unwrap_or(DbVal::Null),
            },
            Err(_) => DbVal::Null,
        };
        out.push(v);
    }
    DbRow(out)
}

pub(crate) fn decode_pg(row: &PgRow) -> DbRow {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let is_null = row.try_get_raw(i).map(|r| r.is_null()).unwrap_or(true);
        let v = if is_null {
            DbVal::Null
        } else {
            match col.type_info().name() {
                "INT8" => row.try_get::<i64, _>(i).map(DbVal::Int),
                "INT4" => row.try_get::<i32, _>(i).map(|n| DbVal::Int(n.into())),
                "INT2" => row.try_get::<i16, _>(i).map(|n| DbVal::Int(n.into())),
                "BOOL" => row.try_get::<bool, _>(i).map(DbVal::Bool),
                "FLOAT8" => row.try_get::<f64, _>(i).map(DbVal::Real),
                "FLOAT4" => row.try_get::<f32, _>(i).map(|f| DbVal::Real(f.into())),
                "UUID" => row.try_get::<Uuid, _>(i).map(DbVal::Uuid),
                "BYTEA" => row.try_get::<Vec<u8>, _>(i).map(DbVal::Blob),
                _ => row.try_get::<String, _>(i).map(DbVal::Text),
            }
            .unwrap_or(DbVal::Null)
        };
        out.push(v);
    }
    DbRow(out)
}

// Concrete helpers per backend: calling sqlx's generic executors from inside `match` arms of
// async fns trips rustc's higher-ranked lifetime inference (futures stop being `Send`).
async fn sqlite_exec(c: &mut sqlx::SqliteConnection, sql: &str, a: SqliteArguments<'static>) -> DbResult<u64> {
    sqlx::query_with(sql, a).execute(c).await.map(|r| r.rows_affected()).map_err(map_err)
}
/// The column names of a result, shared by its rows.
fn names_of<R: Row>(rows: &[R]) -> Arc<[String]> {
    let names: Vec<String> =
        rows.first().map(|r| r.columns().iter().map(|c| c.name().to_string()).collect()).unwrap_or_default();
    names.into()
}
async fn sqlite_fetch_named(
    c: &mut sqlx::SqliteConnection,
    sql: &str,
    a: SqliteArguments<'static>,
) -> DbResult<Vec<NamedRow>> {
    let rows = sqlx::query_with(sql, a).fetch_all(c).await.map_err(map_err)?;
    let names = names_of(&rows);
    Ok(rows.iter().map(|r| NamedRow { names: names.clone(), row: decode_sqlite(r) }).collect())
}
async fn pg_fetch_named(c: &mut sqlx::PgConnection, sql: &str, a: PgArguments) -> DbResult<Vec<NamedRow>> {
    let rows = sqlx::query_with(sql, a).fetch_all(c).await.map_err(map_err)?;
    let names = names_of(&rows);
    Ok(rows.iter().map(|r| NamedRow { names: names.clone(), row: decode_pg(r) }).collect())
}
async fn sqlite_fetch(c: &mut sqlx::SqliteConnection, sql: &str, a: SqliteArguments<'static>) -> DbResult<Vec<DbRow>> {
    Ok(sqlx::query_with(sql, a).fetch_all(c).await.map_err(map_err)?.iter().map(decode_sqlite).collect())
}
async fn sqlite_data_version(c: &mut sqlx::SqliteConnection) -> DbResult<i64> {
    let rows = sqlite_fetch(c, "PRAGMA data_version", SqliteArguments::default()).await?;
    rows.first().and_then(|r| r.i64(0)).ok_or_else(|| DbError::Sql(sqlx::Error::RowNotFound))
}
async fn sqlite_raw(c: &mut sqlx::SqliteConnection, sql: &str) -> DbResult<()> {
    sqlx::Executor::execute(c, sql).await.map(|_| ()).map_err(map_err)
}
async fn pg_exec(c: &mut sqlx::PgConnection, sql: &str, a: PgArguments) -> DbResult<u64> {
    sqlx::query_with(sql, a).execute(c).await.map(|r| r.rows_affected()).map_err(map_err)
}
async fn pg_fetch(c: &mut sqlx::PgConnection, sql: &str, a: PgArguments) -> DbResult<Vec<DbRow>> {
    Ok(sqlx::query_with(sql, a).fetch_all(c).await.map_err(map_err)?.iter().map(decode_pg).collect())
}
async fn pg_raw(c: &mut sqlx::PgConnection, sql: &str) -> DbResult<()> {
    sqlx::Executor::execute(c, sql).await.map(|_| ()).map_err(map_err)
}

/// The database: one PostgreSQL pool, or SQLite with a pool of readers and a single writer.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite {
        read: sqlx::SqlitePool,
        write: sqlx::SqlitePool,
        /// Write transactions begun on the writer so far (see `Tx::write_mark`).
        writes: Arc<AtomicU64>,
    },
    Postgres(sqlx::PgPool),
}

/// Where a write transaction stood among the database's writes (`Tx::write_mark`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteMark {
    /// The transaction's number among this process's write transactions.
    seq: u64,
    /// SQLite's `data_version`: changes when another process commits.
    data_version: i64,
}

/// Options for opening a database.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// PostgreSQL only: a schema to create and use (tests isolate themselves this way).
    pub pg_schema: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { max_connections: 8, pg_schema: None }
    }
}

impl Db {
    /// Open `url`: `sqlite://path` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str, opts: &ConnectOptions) -> DbResult<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut o = PgConnectOptions::from_str(url)?;
            if let Some(schema) = &opts.pg_schema {
                // Create the schema first with a throwaway connection.
                let pool = PgPoolOptions::new().max_connections(1).connect_with(o.clone()).await?;
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", schema.replace('"', "")))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                o = o.options([("search_path", format!("{},public", schema.replace(['"', ','], "")))]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(o)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            let base = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory");
            let write = SqlitePoolOptions::new().max_connections(1).connect_with(base.clone()).await?;
            let read = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .connect_with(base.read_only(true))
                .await?;
            Ok(Db::Sqlite { read, write, writes: Arc::default() })
        }
    }

    /// Open and idle connections (for `/metrics`).
    pub fn pool_stats(&self) -> (u32, usize) {
        match self {
            Db::Sqlite { read, write, .. } => (read.size() + write.size(), read.num_idle() + write.num_idle()),
            Db::Postgres(p) => (p.size(), p.num_idle()),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Begin a write transaction (SQLite: `BEGIN IMMEDIATE` on the single writer).
    pub async fn begin(&self) -> DbResult<Tx> {
        Ok(match self {
            Db::Sqlite { write, writes, .. } => {
                let t = write.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
                // Numbered once the write lock is held: the numbers follow the commit order.
                Tx::Sqlite(t, writes.fetch_add(1, Ordering::SeqCst) + 1)
            }
            Db::Postgres(p) => Tx::Postgres(p.begin().await.map_err(map_err)?),
        })
    }

    /// Run a read-only statement outside a transaction.
    pub async fn all(&self, q: &impl Sql) -> DbResult<Vec<DbRow>> {
        let (sql, values) = q.build(self.backend());
        match self {
            Db::Sqlite { read, .. } => {
                let mut c = read.acquire().await.map_err(map_err)?;
                sqlite_fetch(&mut c, &sql, sqlite_args(values)?).await
            }
            Db::Postgres(p) => {
                let mut c = p.acquire().await.map_err(map_err)?;
                pg_fetch(&mut c, &sql, pg_args(values)?).await
            }
        }
    }

    pub async fn one(&self, q: &impl Sql) -> DbResult<Option<DbRow>> {
        Ok(self.all(q).await?.into_iter().next())
    }

    /// Read rows of a fixed table into typed structs, by column name.
    pub async fn rows<T: FromRow>(&self, q: &impl Sql) -> DbResult<Vec<T>> {
        let (sql, values) = q.build(self.backend());
        let rows = match self {
            Db::Sqlite { read, .. } => {
                let mut c = read.acquire().await.map_err(map_err)?;
                sqlite_fetch_named(&mut c, &sql, sqlite_args(values)?).await?
            }
            Db::Postgres(p) => {
                let mut c = p.acquire().await.map_err(map_err)?;
                pg_fetch_named(&mut c, &sql, pg_args(values)?).await?
            }
        };
        rows.iter().map(T::from_row).collect()
    }

    /// The first row as a typed struct, if any.
    pub async fn row<T: FromRow>(&self, q: &impl Sql) -> DbResult<Option<T>> {
        Ok(self.rows(q).await?.into_iter().next())
    }

    /// One statement in a transaction of its own (SQLite: on the writer); rows affected.
    pub async fn write(&self, q: &impl Sql) -> DbResult<u64> {
        let mut tx = self.begin().await?;
        let n = tx.exec(q).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Execute statements that change nothing transactional (pragmas, `VACUUM`): on SQLite
    /// through the writer.
    pub async fn exec_raw(&self, sql: &str) -> DbResult<()> {
        match self {
            Db::Sqlite { write, .. } => sqlite_raw(&mut *write.acquire().await.map_err(map_err)?, sql).await,
            Db::Postgres(p) => pg_raw(&mut *p.acquire().await.map_err(map_err)?, sql).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write, .. } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// A write transaction, passed as `&mut Tx` so a reader sees what commits together. On
/// SQLite it carries its number among the process's write transactions.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>, u64),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(..) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    /// Execute a hand-built statement, taking its text and values (no copy).
    pub async fn exec_owned(&mut self, q: Raw) -> DbResult<u64> {
        let values = Values(q.values);
        match self {
            Tx::Sqlite(t, _) => sqlite_exec(t, &q.sql, sqlite_args(values)?).await,
            Tx::Postgres(t) => pg_exec(t, &q.sql, pg_args(values)?).await,
        }
    }

    /// Execute a statement; returns the number of rows affected.
    pub async fn exec(&mut self, q: &impl Sql) -> DbResult<u64> {
        let (sql, values) = q.build(self.backend());
        match self {
            Tx::Sqlite(t, _) => sqlite_exec(t, &sql, sqlite_args(values)?).await,
            Tx::Postgres(t) => pg_exec(t, &sql, pg_args(values)?).await,
        }
    }

    pub async fn all(&mut self, q: &impl Sql) -> DbResult<Vec<DbRow>> {
        let (sql, values) = q.build(self.backend());
        match self {
            Tx::Sqlite(t, _) => sqlite_fetch(t, &sql, sqlite_args(values)?).await,
            Tx::Postgres(t) => pg_fetch(t, &sql, pg_args(values)?).await,
        }
    }

    pub async fn one(&mut self, q: &impl Sql) -> DbResult<Option<DbRow>> {
        Ok(self.all(q).await?.into_iter().next())
    }

    /// Read rows of a fixed table into typed structs, by column name.
    pub async fn rows<T: FromRow>(&mut self, q: &impl Sql) -> DbResult<Vec<T>> {
        let (sql, values) = q.build(self.backend());
        let rows = match self {
            Tx::Sqlite(t, _) => sqlite_fetch_named(t, &sql, sqlite_args(values)?).await?,
            Tx::Postgres(t) => pg_fetch_named(t, &sql, pg_args(values)?).await?,
        };
        rows.iter().map(T::from_row).collect()
    }

    /// Execute DDL (generated by sea-query or fixed text in this crate; never user text).
    pub async fn ddl(&mut self, sql: &str) -> DbResult<()> {
        match self {
            Tx::Sqlite(t, _) => sqlite_raw(t, sql).await,
            Tx::Postgres(t) => pg_raw(t, sql).await,
        }
    }

    /// Where this transaction stands among the database's writes, to learn in a later
    /// transaction that no other write came between (`follows`): what this one read is then
    /// still what the database holds. SQLite only — one writer at a time makes "between"
    /// exact; `None` on PostgreSQL, where writers interleave.
    pub async fn write_mark(&mut self) -> DbResult<Option<WriteMark>> {
        match self {
            Tx::Sqlite(t, seq) => {
                let seq = *seq;
                Ok(Some(WriteMark { seq, data_version: sqlite_data_version(t).await? }))
            }
            Tx::Postgres(_) => Ok(None),
        }
    }

    /// Whether this transaction is the next write after the one that took `mark`: no write
    /// transaction of this process began in between, and no other process committed.
    pub async fn follows(&mut self, mark: &WriteMark) -> DbResult<bool> {
        match self {
            Tx::Sqlite(t, seq) if *seq == mark.seq + 1 => Ok(sqlite_data_version(t).await? == mark.data_version),
            _ => Ok(false),
        }
    }

    pub async fn commit(self) -> DbResult<()> {
        match self {
            Tx::Sqlite(t, _) => t.commit().await.map_err(map_err),
            Tx::Postgres(t) => t.commit().await.map_err(map_err),
        }
    }

    pub async fn rollback(self) -> DbResult<()> {
        match self {
            Tx::Sqlite(t, _) => t.rollback().await.map_err(map_err),
            Tx::Postgres(t) => t.rollback().await.map_err(map_err),
        }
    }
}
