//! Migration 13 (SQLite): the trigram index of e-mails and phones keeps no token positions.
//!
//! `search_ident` answers substring searches ("w@huax", "0013 8"). It was queried with a
//! trigram phrase (`MATCH '"w@huax"'`), which needs every trigram's position (`detail=full`).
//! Now it is queried with `GLOB '*w@huax*'`: FTS5 finds the documents holding all the
//! pattern's trigrams, and SQLite checks the pattern against each one's text, so positions are
//! never read. With `detail=none` the index is a third of its size, and a bulk import writes
//! and merges that much less (1,000,000 contacts: 5 % of the import's time).
//!
//! GLOB is case-sensitive, so the text is kept lower-cased (`search_docs.ident`, both
//! backends: documents are built that way, and this migration lower-cases any older one) and
//! the query is lower-cased too. PostgreSQL's `pg_trgm` index is unaffected.

use crate::conn::{Backend, DbResult, Tx};

/// The FTS5 definition.
const IDENT: &str = "CREATE VIRTUAL TABLE search_ident USING fts5(ident, content='search_docs', \
     content_rowid='rid', tokenize='trigram', columnsize=0, detail=none)";

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    tx.ddl("UPDATE search_docs SET ident = lower(ident) WHERE ident <> lower(ident)").await?;
    if tx.backend() != Backend::Sqlite {
        return Ok(());
    }
    tx.ddl("DROP TABLE search_ident").await?;
    tx.ddl(IDENT).await?;
    tx.ddl("INSERT INTO search_ident(search_ident) VALUES ('rebuild')").await?;
    tx.ddl("INSERT INTO search_ident(search_ident, rank) VALUES ('automerge', 8)").await?;
    Ok(())
}
