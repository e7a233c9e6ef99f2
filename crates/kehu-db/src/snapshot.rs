//! Consistent reads of a whole database: a read-only snapshot transaction and row streams, for
//! the archive, the canonical dump and online backups (constant memory at any size).

use crate::conn::{decode_pg, decode_sqlite, map_err, pg_args, sqlite_args, Db, DbResult, DbRow, Tx};
use futures_util::{Stream, StreamExt};
use std::pin::Pin;

/// Rows as they arrive from the database.
pub type RowStream<'a> = Pin<Box<dyn Stream<Item = DbResult<DbRow>> + Send + 'a>>;

impl Db {
    /// A read-only transaction that sees one consistent state of the database for its whole
    /// life, while writers go on: SQLite a deferred read transaction on a reader (WAL keeps its
    /// snapshot from the first read), PostgreSQL `REPEATABLE READ READ ONLY`.
    pub async fn snapshot(&self) -> DbResult<Tx> {
        match self {
            Db::Sqlite { read, .. } => Ok(Tx::Sqlite(read.begin().await.map_err(map_err)?, 0)),
            Db::Postgres(p) => {
                let mut t = p.begin().await.map_err(map_err)?;
                sqlx::Executor::execute(&mut *t, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .await
                    .map_err(map_err)?;
                Ok(Tx::Postgres(t))
            }
        }
    }
}

impl Tx {
    /// Stream the rows of `sql` (with `$n` placeholders bound to `values`) instead of
    /// collecting them. The text is the caller's, borrowed while the rows flow.
    pub fn stream<'a>(&'a mut self, sql: &'a str, values: Vec<sea_query::Value>) -> DbResult<RowStream<'a>> {
        let values = sea_query::Values(values);
        Ok(match self {
            Tx::Sqlite(t, _) => {
                let a = sqlite_args(values)?;
                Box::pin(
                    sqlx::query_with(sql, a).fetch(&mut **t).map(|r| r.map(|row| decode_sqlite(&row)).map_err(map_err)),
                )
            }
            Tx::Postgres(t) => {
                let a = pg_args(values)?;
                Box::pin(
                    sqlx::query_with(sql, a).fetch(&mut **t).map(|r| r.map(|row| decode_pg(&row)).map_err(map_err)),
                )
            }
        })
    }
}
