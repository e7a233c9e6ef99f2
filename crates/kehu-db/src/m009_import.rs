//! Migration 9: imports (issue #5).
//!
//! - `imports`: one row per uploaded file — who, which object, the file's headers and a few
//!   sample rows, the chosen settings (mode, key, column → field map), the state, the progress
//!   cursor (`next_chunk`) and the counts.
//! - `import_chunks`: the uploaded file itself, decoded to UTF-8 CSV and cut into chunks of
//!   rows (one chunk = one batch). It lives in the database so it is as durable as the data
//!   and reachable from every app server; a batch deletes its chunk in its own transaction.
//! - `import_changes`: the undo log — every record a batch created or updated, with the
//!   previous and the new values of the changed fields.
//! - `import_failures`: failed rows with their original cells and the reasons, for the
//!   report and the downloadable CSV.
//! - `import_mappings`: named column mappings per object, reused when headers match.

use crate::conn::{DbResult, Tx};
use crate::migrate::{index, T};

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    let tables = [
        T::new(b, "imports")
            .id()
            .uuid("object_id")
            .uuid("owner_id")
            .text("file_name")
            .text("format")
            .text("encoding")
            .text("headers")
            .text("headers_key")
            .text("samples")
            .int("total_rows")
            .int("chunks")
            .text_null("settings")
            .text("state")
            .int("next_chunk")
            .bool("prepared", false)
            .int("created")
            .int("updated")
            .int("unchanged")
            .int("skipped")
            .int("failed")
            .int("related_created")
            .int("undo_deleted")
            .int("undo_restored")
            .int("undo_conflicts")
            .text_null("error")
            .uuid_null("job_id")
            .int("created_at")
            .int("updated_at")
            .int_null("finished_at"),
        T::new(b, "import_chunks").uuid("import_id").int("seq").int("first_row").text("data").text_null("dups"),
        T::new(b, "import_changes")
            .uuid("import_id")
            .int("row_no")
            .uuid("object_id")
            .uuid("record_id")
            .text("action")
            .text_null("changes"),
        T::new(b, "import_failures").uuid("import_id").int("row_no").text("cells").text("errors"),
        T::new(b, "import_mappings")
            .id()
            .uuid("object_id")
            .text("name")
            .text("headers_key")
            .text("settings")
            .uuid_null("created_by")
            .int("created_at")
            .int("updated_at"),
    ];
    for t in &tables {
        tx.ddl(&t.sql()).await?;
    }
    for sql in [
        index(b, "imports", "object_created", &["object_id", "created_at"], false),
        index(b, "imports", "headers_key", &["object_id", "headers_key"], false),
        index(b, "import_chunks", "import_seq", &["import_id", "seq"], true),
        index(b, "import_changes", "import_row", &["import_id", "row_no"], false),
        index(b, "import_failures", "import_row", &["import_id", "row_no"], false),
        index(b, "import_mappings", "object_name", &["object_id", "name"], true),
        index(b, "import_mappings", "object_headers", &["object_id", "headers_key"], false),
    ] {
        tx.ddl(&sql).await?;
    }
    Ok(())
}
