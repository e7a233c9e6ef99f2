//! Migration 6: customisation from the UI. Fields gain `in_form` (shown in the create form)
//! and `in_list` (a default list column); objects gain `archived` (a deleted custom object:
//! hidden, its table and records kept, restorable). Databases seeded before this migration get
//! the list columns a salesperson expects on companies and contacts.

use crate::conn::{DbResult, Tx};
use crate::ddl::column;
use kehu_core::meta::Storage;
use sea_query::{Alias, Expr, Query, Table};

/// Fields shown as list columns by default on the standard objects.
pub const DEFAULT_LIST: [(&str, &[&str]); 2] = [
    ("company", &["name", "industry", "phone", "city", "lifecycle_stage"]),
    ("contact", &["name", "company", "phone", "email", "city", "lifecycle_stage"]),
];

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    // One column per ALTER: SQLite takes no more.
    for (table, name, default) in
        [("meta_fields", "in_form", true), ("meta_fields", "in_list", false), ("meta_objects", "archived", false)]
    {
        let mut c = column(b, name, Storage::Bool);
        c.not_null().default(default);
        let sql = Table::alter().table(Alias::new(table)).add_column(c).to_owned().build_any(b.schema_builder());
        tx.ddl(&sql).await?;
    }
    for (object, fields) in DEFAULT_LIST {
        let q = Query::update()
            .table(Alias::new("meta_fields"))
            .value(Alias::new("in_list"), true)
            .and_where(Expr::col(Alias::new("api_name")).is_in(fields.iter().copied()))
            .and_where(
                Expr::col(Alias::new("object_id")).in_subquery(
                    Query::select()
                        .column(Alias::new("id"))
                        .from(Alias::new("meta_objects"))
                        .and_where(Expr::col(Alias::new("api_name")).eq(object))
                        .to_owned(),
                ),
            )
            .to_owned();
        tx.exec(&q).await?;
    }
    Ok(())
}
