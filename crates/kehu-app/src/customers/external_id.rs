//! Seed step 1003: a standard `external_id` field (text, unique) on companies and contacts,
//! so an import can match records by the id another system gave them ("upsert by external
//! id") and relation columns can name a company by it. Added to existing databases the same
//! way an admin adds a field: a metadata row plus its column and unique index, in one
//! recorded step.

use crate::Result;
use kehu_core::meta::{FieldDef, FieldOptions, FieldType, Label};
use kehu_core::new_id;
use kehu_db::records::col;
use kehu_db::{ddl, meta_store, Db};
use sea_query::{Alias, Expr, Query};

const VERSION: i64 = 1003;
const OBJECTS: [&str; 2] = ["company", "contact"];

pub(crate) async fn seed(db: &Db) -> Result<()> {
    let mut tx = db.begin().await?;
    if !kehu_db::migrate::claim(&mut tx, VERSION, "seed_external_id").await? {
        tx.rollback().await?;
        return Ok(());
    }
    for api in OBJECTS {
        let q = Query::select()
            .columns(["id", "table_name"].map(Alias::new))
            .from(Alias::new("meta_objects"))
            .and_where(col("api_name").eq(api))
            .to_owned();
        let Some(row) = tx.one(&q).await? else { continue };
        let (Some(object_id), Some(table)) = (row.uuid(0), row.string(1)) else { continue };
        let q = Query::select()
            .expr(Expr::col(Alias::new("position")).max())
            .from(Alias::new("meta_fields"))
            .and_where(col("object_id").eq(object_id))
            .to_owned();
        let position = tx.one(&q).await?.and_then(|r| r.i64(0)).unwrap_or(0) as i32 + 1;
        let taken = Query::select()
            .column(Alias::new("id"))
            .from(Alias::new("meta_fields"))
            .and_where(col("object_id").eq(object_id))
            .and_where(col("api_name").eq("external_id"))
            .to_owned();
        if tx.one(&taken).await?.is_some() {
            continue;
        }
        let f = FieldDef {
            id: new_id(),
            object_id,
            api_name: "external_id".into(),
            column: "f_external_id".into(),
            ftype: FieldType::Text,
            label: Label::new("External ID", "外部编号"),
            help: Some(Label::new(
                "The id this record has in another system (used to match rows when importing).",
                "该记录在其他系统中的编号（导入时用于匹配）。",
            )),
            required: false,
            unique: true,
            filterable: false,
            searchable: false,
            default: None,
            options: FieldOptions::default(),
            position,
            archived: false,
            in_form: false,
            in_list: false,
            builtin: false,
            readonly: false,
        };
        meta_store::insert_field(&mut tx, &f).await?;
        for s in ddl::add_field(tx.backend(), &table, &f) {
            tx.ddl(&s).await?;
        }
    }
    meta_store::bump_epoch(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}
