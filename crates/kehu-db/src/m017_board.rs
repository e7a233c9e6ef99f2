//! Migration 17: an object's UI settings as metadata (`meta_objects.ui`: its status field,
//! header chips, tags field, card fields, navigation group) and a saved view's layout
//! (`saved_views.layout`: list or board, with the board's field, sum and card fields).

use crate::conn::{DbResult, Tx};
use crate::ddl::column;
use kehu_core::meta::Storage;
use sea_query::{Alias, Table};

pub(crate) async fn up(tx: &mut Tx) -> DbResult<()> {
    let b = tx.backend();
    for (table, name) in [("meta_objects", "ui"), ("saved_views", "layout")] {
        let mut c = column(b, name, Storage::Text);
        c.null();
        let sql = Table::alter().table(Alias::new(table)).add_column(c).to_owned().build_any(b.schema_builder());
        tx.ddl(&sql).await?;
    }
    Ok(())
}
