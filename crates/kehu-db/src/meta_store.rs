//! Reading and writing metadata rows (`meta_objects`, `meta_fields`, `schema_state`).
//! Validation of what an admin asks for lives in the app layer; this is storage only.

use crate::conn::{Db, DbError, DbResult, DbRow, Tx};
use kehu_core::meta::{FieldDef, FieldOptions, FieldType, Label, ObjectDef, Schema};
use kehu_core::now_micros;
use sea_query::{Alias, Expr, Order, Query};
use std::collections::HashMap;
use std::sync::Arc;

const OBJECT_COLS: [&str; 9] =
    ["id", "api_name", "table_name", "label_en", "label_zh", "plural_en", "plural_zh", "icon", "ui"];
const FIELD_COLS: [&str; 21] = [
    "id",
    "object_id",
    "api_name",
    "column_name",
    "field_type",
    "label_en",
    "label_zh",
    "help_en",
    "help_zh",
    "required",
    "is_unique",
    "filterable",
    "searchable",
    "default_value",
    "options",
    "position",
    "archived",
    "in_form",
    "in_list",
    "created_at",
    "updated_at",
];

/// The current schema epoch (bumped by every metadata change).
pub async fn epoch(db: &Db) -> DbResult<i64> {
    let q = Query::select().column(Alias::new("epoch")).from(Alias::new("schema_state")).to_owned();
    Ok(db.one(&q).await?.and_then(|r| r.i64(0)).unwrap_or(0))
}

/// Bump the epoch inside a metadata-changing transaction; other app servers reload on change.
pub async fn bump_epoch(tx: &mut Tx) -> DbResult<()> {
    let q = Query::update()
        .table(Alias::new("schema_state"))
        .value(Alias::new("epoch"), Expr::col(Alias::new("epoch")).add(1))
        .to_owned();
    tx.exec(&q).await.map(|_| ())
}

fn parse_object(r: &DbRow, is_system: bool, archived: bool) -> DbResult<ObjectDef> {
    let id = r.uuid(0).ok_or_else(|| DbError::Other("bad object id".into()))?;
    Ok(ObjectDef {
        id,
        api_name: r.string(1).unwrap_or_default(),
        table: r.string(2).unwrap_or_default(),
        label: Label::new(r.string(3).unwrap_or_default(), r.string(4).unwrap_or_default()),
        plural: Label::new(r.string(5).unwrap_or_default(), r.string(6).unwrap_or_default()),
        icon: r.string(7).unwrap_or_default(),
        is_system,
        archived,
        fields: ObjectDef::builtin_fields(id),
        // A damaged or unknown setting falls back to none (pages then guess nothing).
        ui: r.str(8).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default(),
    })
}

fn parse_field(r: &DbRow) -> DbResult<FieldDef> {
    let bad = |what: &str| DbError::Other(format!("bad field row: {what}"));
    let ftype = FieldType::parse(r.str(4).unwrap_or_default()).ok_or_else(|| bad("type"))?;
    let help = match (r.string(7), r.string(8)) {
        (Some(en), Some(zh)) => Some(Label::new(en, zh)),
        _ => None,
    };
    let options: FieldOptions = serde_json::from_str(r.str(14).unwrap_or("{}")).map_err(|_| bad("options"))?;
    Ok(FieldDef {
        id: r.uuid(0).ok_or_else(|| bad("id"))?,
        object_id: r.uuid(1).ok_or_else(|| bad("object"))?,
        api_name: r.string(2).unwrap_or_default(),
        column: r.string(3).unwrap_or_default(),
        ftype,
        label: Label::new(r.string(5).unwrap_or_default(), r.string(6).unwrap_or_default()),
        help,
        required: r.bool(9).unwrap_or(false),
        unique: r.bool(10).unwrap_or(false),
        filterable: r.bool(11).unwrap_or(false),
        searchable: r.bool(12).unwrap_or(false),
        default: r.str(13).and_then(|s| serde_json::from_str(s).ok()),
        options,
        position: r.i64(15).unwrap_or(0) as i32,
        archived: r.bool(16).unwrap_or(false),
        in_form: r.bool(17).unwrap_or(true),
        in_list: r.bool(18).unwrap_or(false),
        builtin: false,
        readonly: false,
    })
}

/// Load every object and field.
pub async fn load(db: &Db) -> DbResult<Schema> {
    let epoch = epoch(db).await?;
    let mut q = Query::select();
    q.from(Alias::new("meta_objects"));
    for c in OBJECT_COLS {
        q.column(Alias::new(c));
    }
    q.column(Alias::new("is_system")).column(Alias::new("archived")).order_by(Alias::new("created_at"), Order::Asc);
    let mut objects = Vec::new();
    let mut idx = HashMap::new();
    for r in db.all(&q).await? {
        let o = parse_object(&r, r.bool(9).unwrap_or(false), r.bool(10).unwrap_or(false))?;
        idx.insert(o.id, objects.len());
        objects.push(o);
    }
    let mut q = Query::select();
    q.from(Alias::new("meta_fields"));
    for c in FIELD_COLS {
        q.column(Alias::new(c));
    }
    q.order_by(Alias::new("position"), Order::Asc);
    for r in db.all(&q).await? {
        let f = parse_field(&r)?;
        if let Some(&i) = idx.get(&f.object_id) {
            objects[i].fields.push(Arc::new(f));
        }
    }
    Ok(Schema::new(epoch, objects))
}

/// Insert an object row.
pub async fn insert_object(tx: &mut Tx, o: &ObjectDef) -> DbResult<()> {
    let now = now_micros();
    let q = Query::insert()
        .into_table(Alias::new("meta_objects"))
        .columns(OBJECT_COLS.iter().chain(&["is_system", "created_at", "updated_at"]).map(|c| Alias::new(*c)))
        .values_panic([
            o.id.into(),
            o.api_name.clone().into(),
            o.table.clone().into(),
            o.label.en.clone().into(),
            o.label.zh.clone().into(),
            o.plural.en.clone().into(),
            o.plural.zh.clone().into(),
            o.icon.clone().into(),
            ui_json(o).into(),
            o.is_system.into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    tx.exec(&q).await.map(|_| ())
}

fn ui_json(o: &ObjectDef) -> Option<String> {
    (o.ui != Default::default()).then(|| serde_json::to_string(&o.ui).unwrap_or_default())
}

/// Update an object's labels, icon and UI settings (its api name and table never change).
pub async fn update_object(tx: &mut Tx, o: &ObjectDef) -> DbResult<()> {
    let q = Query::update()
        .table(Alias::new("meta_objects"))
        .values([
            (Alias::new("label_en"), o.label.en.clone().into()),
            (Alias::new("label_zh"), o.label.zh.clone().into()),
            (Alias::new("plural_en"), o.plural.en.clone().into()),
            (Alias::new("plural_zh"), o.plural.zh.clone().into()),
            (Alias::new("icon"), o.icon.clone().into()),
            (Alias::new("ui"), ui_json(o).into()),
            (Alias::new("archived"), o.archived.into()),
            (Alias::new("updated_at"), now_micros().into()),
        ])
        .and_where(Expr::col(Alias::new("id")).eq(o.id))
        .to_owned();
    tx.exec(&q).await.map(|_| ())
}

fn field_values(f: &FieldDef) -> DbResult<Vec<sea_query::SimpleExpr>> {
    let opts = serde_json::to_string(&f.options).map_err(|e| DbError::Other(e.to_string()))?;
    let default = f.default.as_ref().map(|d| d.to_string());
    Ok(vec![
        f.id.into(),
        f.object_id.into(),
        f.api_name.clone().into(),
        f.column.clone().into(),
        f.ftype.as_str().into(),
        f.label.en.clone().into(),
        f.label.zh.clone().into(),
        f.help.as_ref().map(|h| h.en.clone()).into(),
        f.help.as_ref().map(|h| h.zh.clone()).into(),
        f.required.into(),
        f.unique.into(),
        f.filterable.into(),
        f.searchable.into(),
        default.into(),
        opts.into(),
        (f.position as i64).into(),
        f.archived.into(),
        f.in_form.into(),
        f.in_list.into(),
    ])
}

/// Insert a field row.
pub async fn insert_field(tx: &mut Tx, f: &FieldDef) -> DbResult<()> {
    let now = now_micros();
    let mut vals = field_values(f)?;
    vals.push(now.into());
    vals.push(now.into());
    let q = Query::insert()
        .into_table(Alias::new("meta_fields"))
        .columns(FIELD_COLS.iter().map(|c| Alias::new(*c)))
        .values_panic(vals)
        .to_owned();
    tx.exec(&q).await.map(|_| ())
}

/// Rewrite a field row (labels, flags, options, position, archived; never its column or type).
pub async fn update_field(tx: &mut Tx, f: &FieldDef) -> DbResult<()> {
    let vals = field_values(f)?;
    let mut q = Query::update();
    q.table(Alias::new("meta_fields"));
    for (c, v) in FIELD_COLS.iter().zip(vals).skip(2) {
        if *c == "column_name" || *c == "field_type" {
            continue;
        }
        q.value(Alias::new(*c), v);
    }
    q.value(Alias::new("updated_at"), now_micros()).and_where(Expr::col(Alias::new("id")).eq(f.id));
    tx.exec(&q).await.map(|_| ())
}

/// Set the positions of an object's fields (the caller's transaction makes it one change).
pub async fn set_positions(tx: &mut Tx, positions: &[(uuid::Uuid, i32)]) -> DbResult<()> {
    let now = now_micros();
    for (id, pos) in positions {
        let q = Query::update()
            .table(Alias::new("meta_fields"))
            .value(Alias::new("position"), *pos as i64)
            .value(Alias::new("updated_at"), now)
            .and_where(Expr::col(Alias::new("id")).eq(*id))
            .to_owned();
        tx.exec(&q).await?;
    }
    Ok(())
}

/// How many records (deleted ones included: they can be restored) hold `key` in a select or
/// multi-select column. `table` and `column` come from metadata.
pub async fn choice_uses(tx: &mut Tx, table: &str, column: &str, key: &str, multi: bool) -> DbResult<i64> {
    let cond =
        if multi { crate::query::list_has(tx.backend(), column, key) } else { Expr::col(Alias::new(column)).eq(key) };
    let q = Query::select().expr(Expr::cust("COUNT(*)")).from(Alias::new(table)).and_where(cond).to_owned();
    Ok(tx.one(&q).await?.and_then(|r| r.i64(0)).unwrap_or(0))
}

/// Live (not deleted) records of each object table, for the settings overview.
pub async fn record_count(db: &Db, table: &str) -> DbResult<i64> {
    let q = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("deleted_at")).is_null())
        .to_owned();
    Ok(db.one(&q).await?.and_then(|r| r.i64(0)).unwrap_or(0))
}

/// Every field row as the transaction sees it (the archive loader creates columns from them).
pub(crate) async fn fields_in(tx: &mut Tx) -> DbResult<Vec<FieldDef>> {
    let mut q = Query::select();
    q.from(Alias::new("meta_fields"));
    for c in FIELD_COLS {
        q.column(Alias::new(c));
    }
    q.order_by(Alias::new("position"), Order::Asc).order_by(Alias::new("id"), Order::Asc);
    tx.all(&q).await?.iter().map(parse_field).collect()
}
