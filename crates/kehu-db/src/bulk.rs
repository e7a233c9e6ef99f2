//! Multi-row INSERTs for the bulk write paths (creating many records, the journal, the search
//! index, the import's undo log), built straight into SQL text and bound values, and run as a
//! **pipeline**: while the database executes one statement, the next one is built.
//!
//! Why not sea-query here: an `InsertStatement` keeps an expression tree per value and renders
//! it to text, which cost as much CPU as SQLite spent storing the rows. Statements of a bulk
//! write are all the same shape, so they are written directly: `?` placeholders on SQLite (its
//! lookup of a numbered `$n` is linear, so thousands in one statement cost quadratic time) and
//! `$n` on PostgreSQL. Identifiers still come only from metadata and constants; values are
//! always bound.
//!
//! Why a pipeline: with SQLite, statements run on the connection's own worker thread while the
//! caller's task waits. `Tx::exec_pipeline` sends statement *k* to the worker and builds
//! statement *k + 1* (JSON, search text, bound values) during that wait, so the two cores work
//! at once instead of taking turns.

use crate::conn::{Backend, DbResult, Raw, Tx};
use sea_query::Value;

/// Bound parameters one statement may carry, per backend.
fn max_params(b: Backend) -> usize {
    match b {
        Backend::Sqlite => 32_000,
        Backend::Postgres => 60_000,
    }
}

/// How many rows of `columns` values fit in one multi-row insert (at most 500).
fn rows_per_insert(b: Backend, columns: usize) -> usize {
    (max_params(b) / columns.max(1)).clamp(1, 500)
}

/// The target of a multi-row insert: a table, its columns (from metadata or constants, never
/// from input) and an optional tail such as `ON CONFLICT … DO UPDATE …`.
#[derive(Debug, Clone)]
pub struct InsertInto {
    pub table: String,
    pub columns: Vec<String>,
    pub tail: String,
}

impl InsertInto {
    pub fn new(table: impl Into<String>, columns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { table: table.into(), columns: columns.into_iter().map(Into::into).collect(), tail: String::new() }
    }

    pub fn tail(mut self, tail: impl Into<String>) -> Self {
        self.tail = tail.into();
        self
    }

    /// The statements inserting `rows` (each a row's values in column order), as many rows
    /// per statement as the backend allows. Each statement is built when the iterator is
    /// advanced, so `Tx::exec_pipeline` builds the next while the database runs the last.
    pub fn statements<I>(self, b: Backend, rows: I) -> impl Iterator<Item = Raw> + Send
    where
        I: IntoIterator<Item = Vec<Value>>,
        I::IntoIter: Send,
    {
        let per = rows_per_insert(b, self.columns.len());
        let mut head = format!("INSERT INTO \"{}\" (", self.table);
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                head.push_str(", ");
            }
            head.push('"');
            head.push_str(c);
            head.push('"');
        }
        head.push_str(") VALUES ");
        let width = self.columns.len();
        let tail = self.tail;
        let mut rows = rows.into_iter().peekable();
        std::iter::from_fn(move || {
            rows.peek()?;
            let mut sql = String::with_capacity(head.len() + tail.len() + per * width * 4);
            sql.push_str(&head);
            let mut values = Vec::with_capacity(per * width);
            let mut n = 0;
            while n < per {
                let Some(row) = rows.next() else { break };
                debug_assert_eq!(row.len(), width, "row width of {}", head);
                if n > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for j in 0..row.len() {
                    if j > 0 {
                        sql.push(',');
                    }
                    match b {
                        Backend::Sqlite => sql.push('?'),
                        Backend::Postgres => {
                            sql.push('$');
                            sql.push_str(&(values.len() + j + 1).to_string());
                        }
                    }
                }
                sql.push(')');
                values.extend(row);
                n += 1;
            }
            if !tail.is_empty() {
                sql.push(' ');
                sql.push_str(&tail);
            }
            Some(Raw { sql, values })
        })
    }
}

impl Tx {
    /// Run statements in order, building each next one while the database runs the current
    /// one. Stops at the first error. Returns the rows affected.
    pub async fn exec_pipeline(&mut self, stmts: impl Iterator<Item = Raw> + Send) -> DbResult<u64> {
        let mut stmts = stmts;
        let mut next = stmts.next();
        let mut total = 0;
        while let Some(stmt) = next {
            // `join` polls the statement first (which hands it to the database), then builds
            // the next one on this task while the database works.
            let (done, following) = futures_util::future::join(self.exec_owned(stmt), async { stmts.next() }).await;
            total += done?;
            next = following;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_rows_and_number_postgres_parameters() {
        let into = InsertInto::new("t", ["a", "b"]).tail("ON CONFLICT DO NOTHING");
        let rows = (0..3).map(|i| vec![Value::from(i as i64), Value::from(format!("v{i}"))]);
        let stmts: Vec<Raw> = into.clone().statements(Backend::Postgres, rows.clone()).collect();
        assert_eq!(stmts.len(), 1);
        assert_eq!(
            stmts[0].sql,
            "INSERT INTO \"t\" (\"a\", \"b\") VALUES ($1,$2),($3,$4),($5,$6) ON CONFLICT DO NOTHING"
        );
        assert_eq!(stmts[0].values.len(), 6);
        let sqlite: Vec<Raw> = into.statements(Backend::Sqlite, rows).collect();
        assert_eq!(sqlite[0].sql, "INSERT INTO \"t\" (\"a\", \"b\") VALUES (?,?),(?,?),(?,?) ON CONFLICT DO NOTHING");
        // More rows than one statement may carry: split, every row once, in order.
        let wide = InsertInto::new("w", (0..100).map(|i| format!("c{i}")));
        let per = rows_per_insert(Backend::Sqlite, 100);
        let n = per * 2 + 7;
        let stmts: Vec<Raw> =
            wide.statements(Backend::Sqlite, (0..n).map(|i| vec![Value::from(i as i64); 100])).collect();
        assert_eq!(stmts.iter().map(|s| s.values.len() / 100).collect::<Vec<_>>(), vec![per, per, 7]);
        assert_eq!(stmts[2].values[0], Value::from((per * 2) as i64));
        assert!(InsertInto::new("e", ["a"]).statements(Backend::Sqlite, std::iter::empty()).next().is_none());
    }
}
