//! Migration 11 (SQLite only): the two FTS5 indexes rebuilt for bulk writes.
//!
//! - `columnsize=0`: FTS5 no longer keeps a per-document token count (the `_docsize` table,
//!   one more B-tree row per document and index). Kehu never ranks by BM25 — hits are ordered
//!   by record id (newest first) — so the count was written and never read.
//! - `automerge=8` (default 4): each write transaction adds one small segment to an index,
//!   and FTS5 merges segments as they pile up. Merging at 8 instead of 4 cuts that work on
//!   imports of many batches; a query reads a few more small segments until they are merged.
//!
//! The indexes are external-content tables over `search_docs`, so they are dropped, created
//! again and filled from `search_docs` (`'rebuild'`); the triggers name them and stay valid.
//! PostgreSQL's `tsvector`/`pg_trgm` indexes are unaffected.

use crate::conn::{Backend, DbResult, Tx};

/// The FTS5 definitions.
const WORDS: &str = "CREATE VIRTUAL TABLE search_words USING fts5(words, content='search_docs', \
     content_rowid='rid', tokenize='unicode61 remove_diacritics 0', prefix='2 3', columnsize=0)";
const IDENT: &str = "CREATE VIRTUAL TABLE search_ident USING fts5(ident, content='search_docs', \
     content_rowid='rid', tokenize='trigram', columnsize=0)";

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    if tx.backend() != Backend::Sqlite {
        return Ok(());
    }
    tx.ddl("DROP TABLE search_words").await?;
    tx.ddl("DROP TABLE search_ident").await?;
    tx.ddl(WORDS).await?;
    tx.ddl(IDENT).await?;
    for t in ["search_words", "search_ident"] {
        tx.ddl(&format!("INSERT INTO {t}({t}) VALUES ('rebuild')")).await?;
        tx.ddl(&format!("INSERT INTO {t}({t}, rank) VALUES ('automerge', 8)")).await?;
    }
    Ok(())
}
