//! Migration 14: `import_checks`, one row per dry run of an import run as a job (issue #5).
//!
//! The row's id is the check job's id (`jobs` holds its state and progress). It keeps the
//! settings it checked (a check answers only for those), and once finished its counts and the
//! listed row errors as JSON. A new table only: no existing table changes.

use crate::conn::{DbResult, Tx};
use crate::migrate::{index, T};

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    let t = T::new(b, "import_checks")
        .id()
        .uuid("import_id")
        .text("settings")
        .text_null("counts")
        .text_null("errors")
        .int("created_at")
        .int_null("finished_at");
    tx.ddl(&t.sql()).await?;
    tx.ddl(&index(b, "import_checks", "import_created", &["import_id", "created_at"], false)).await?;
    Ok(())
}
