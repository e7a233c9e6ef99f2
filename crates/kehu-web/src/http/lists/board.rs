//! The board: any object's records as cards in columns of a single select (its options in
//! order, with their colours; archived options hidden; "not set" first when it holds
//! records), each column with its count and the sum of a number or money field from the
//! aggregation, filtered like the list. Columns page on their own ("load more"). Dragging a
//! card (or choosing "move to" from its menu) saves through the write core with the version
//! the card was read at: a stale card comes back with the record as it is now, a refused move
//! returns to its column with the reason, and nothing is overwritten.

use super::actions::form_get;
use super::state::{status_field, ListState};
use super::{cell, pairs, Cell};
use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json as JsonResp, Response};
use kehu_app::display::Display;
use kehu_app::records::aggregate::{AggregateRequest, GroupBy, MeasureSpec};
use kehu_app::{ListRequest, RecordView};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef};
use kehu_core::perm::Action;
use kehu_core::{AppError, ErrorKind, Uuid};
use serde_json::{json, Map, Value as Json};
use std::sync::Arc;

/// Cards per column page.
pub const CARDS: u64 = 20;
/// The column of records without a value.
const EMPTY: &str = "_none";

/// A card: the record's title, up to three fields, its owner.
pub struct Card {
    pub id: Uuid,
    pub version: i64,
    pub title: String,
    pub cells: Vec<Cell>,
    pub owner: String,
}

pub struct BoardColumn {
    /// The option key (`_none` for records without a value).
    pub key: String,
    pub label: String,
    pub color: String,
    pub count: i64,
    pub sum: String,
    pub cards: Vec<Card>,
    /// The next page of this column.
    pub more: Option<String>,
}

/// A board as the page shows it.
pub struct Board {
    pub object: String,
    pub field: String,
    pub field_label: String,
    pub sum: String,
    pub sum_label: String,
    pub cards: Vec<String>,
    pub columns: Vec<BoardColumn>,
    /// Single selects the board may use, number and money fields it may sum, and fields a
    /// card may show: (api, label).
    pub field_opts: Vec<(String, String)>,
    pub sum_opts: Vec<(String, String)>,
    pub card_opts: Vec<(String, String)>,
    /// The list state (filters, board settings) as a query string.
    pub state: String,
    pub can_update: bool,
    pub sortable_js: String,
    /// Where a card may be moved by its menu: (key, label).
    pub move_targets: Vec<(String, String)>,
}

impl Board {
    pub fn has_card(&self, api: &str) -> bool {
        self.cards.iter().any(|c| c == api)
    }
}

/// The settings a board runs with: the chosen field (else the object's status field, else its
/// first single select), sum and card fields — readable ones only.
pub struct Settings {
    pub field: Arc<FieldDef>,
    pub sum: Option<Arc<FieldDef>>,
    pub cards: Vec<Arc<FieldDef>>,
}

fn numeric(t: FieldType) -> bool {
    matches!(t, FieldType::Integer | FieldType::Decimal | FieldType::Percent | FieldType::Currency)
}

/// The single select a board shows: the chosen one, else the object's status field, else its
/// first single select — among the fields `readable` allows.
pub fn board_field<'a>(
    obj: &'a ObjectDef,
    chosen: &str,
    readable: impl Fn(&FieldDef) -> bool,
) -> Option<&'a Arc<FieldDef>> {
    let select = |f: &&Arc<FieldDef>| f.ftype == FieldType::Select && readable(f);
    obj.field(chosen)
        .filter(select)
        .or_else(|| obj.field(status_field(obj)).filter(select))
        .or_else(|| obj.active().find(select))
}

/// The board's settings for an object, or `None` when it has no readable single select.
pub fn settings(u: &UserCtx, obj: &ObjectDef, s: &ListState) -> Option<Settings> {
    let readable = |f: &&Arc<FieldDef>| u.actor.can_read_field(obj, f);
    let field = board_field(obj, &s.bf, |f| u.actor.can_read_field(obj, f))?.clone();
    let sum = obj.field(&s.bs).filter(readable).filter(|f| numeric(f.ftype)).cloned();
    let names: Vec<String> = if s.bc.is_empty() { obj.ui.card_fields.clone() } else { s.bc.clone() };
    let title = obj.title_field().map(|f| f.id);
    let cards = names
        .iter()
        .filter_map(|n| obj.field(n).filter(readable).cloned())
        .filter(|f| f.id != field.id && Some(f.id) != title)
        .take(3)
        .collect();
    Some(Settings { field, sum, cards })
}

/// The filter of one column: the list's, and the field's value.
fn column_filter(base: Option<&Json>, field: &str, key: &str) -> Json {
    let cond = if key == EMPTY {
        json!({"field": field, "op": "is_empty"})
    } else {
        json!({"field": field, "op": "eq", "value": key})
    };
    match base {
        Some(b) => json!({"and": [b, cond]}),
        None => json!({"and": [cond]}),
    }
}

/// An amount with its currency's decimals ("402" → "402.00" for CNY).
fn money(a: &str, digits: u8) -> String {
    let (int, frac) = a.split_once('.').unwrap_or((a, ""));
    if digits == 0 {
        return int.to_string();
    }
    format!("{int}.{frac:0<width$}", width = digits as usize)
}

/// A sum as text: numbers as they are, money per currency.
fn sum_text(v: Option<&Json>) -> String {
    match v {
        Some(Json::Object(m)) => m
            .iter()
            .map(|(c, a)| {
                format!("{c} {}", money(a.as_str().unwrap_or_default(), kehu_core::value::currency_digits(c)))
            })
            .collect::<Vec<_>>()
            .join(" · "),
        Some(Json::Number(n)) => n.to_string(),
        Some(Json::String(s)) => s.clone(),
        _ => String::new(),
    }
}

async fn cards(
    st: &AppState,
    u: &UserCtx,
    obj: &ObjectDef,
    set: &Settings,
    records: &[RecordView],
) -> Result<Vec<Card>, AppError> {
    let lang = u.ctx.lang.code();
    let owner = obj.field("owner").cloned();
    let mut shown: Vec<Arc<FieldDef>> = set.cards.clone();
    shown.extend(owner.clone());
    let names = st.app.resolve_names(&u.actor, &shown, records).await?;
    let tz = u.session.user.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let d = Display { lang, names: &names, tz };
    let masked = !u.actor.sees_unmasked();
    let title = obj.title_field().cloned();
    Ok(records
        .iter()
        .map(|r| Card {
            id: r.id,
            version: r.version,
            title: title
                .as_ref()
                .map(|f| d.text(f, r.get(&f.api_name)))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "—".into()),
            cells: set.cards.iter().map(|f| cell(&d, f, r.get(&f.api_name), lang, masked)).collect(),
            owner: owner.as_ref().map(|f| d.text(f, r.get(&f.api_name))).unwrap_or_default(),
        })
        .collect())
}

/// One page of a column's cards, and the link to the next.
async fn column_page(
    st: &AppState,
    u: &UserCtx,
    obj: &ObjectDef,
    set: &Settings,
    s: &ListState,
    key: &str,
    cursor: Option<String>,
) -> Result<(Vec<Card>, Option<String>), AppError> {
    let req = ListRequest {
        filter: Some(column_filter(s.filter(obj).as_ref(), &set.field.api_name, key)),
        sort: Some(json!("-updated_at")),
        limit: Some(CARDS),
        cursor,
        ..Default::default()
    };
    let page = st.app.list(&u.actor, &obj.api_name, &req).await?;
    let more = page.next_cursor.map(|c| {
        format!(
            "/o/{}/board/column?{}&col={}&cursor={}",
            obj.api_name,
            s.query(),
            crate::http::enc(key),
            crate::http::enc(&c)
        )
    });
    Ok((cards(st, u, obj, set, &page.records).await?, more))
}

/// Counts and sums per column key, from the aggregation.
async fn totals(
    st: &AppState,
    u: &UserCtx,
    obj: &ObjectDef,
    set: &Settings,
    s: &ListState,
) -> Result<Vec<(String, i64, String)>, AppError> {
    let mut measures = vec![MeasureSpec { op: "count".into(), field: None }];
    if let Some(f) = &set.sum {
        measures.push(MeasureSpec { op: "sum".into(), field: Some(f.api_name.clone()) });
    }
    let req = AggregateRequest {
        filter: s.filter(obj),
        group_by: vec![GroupBy { field: set.field.api_name.clone(), bucket: None }],
        measures,
        ..Default::default()
    };
    let a = st.app.aggregate(&u.actor, &obj.api_name, &req, u.ctx.lang.code()).await?;
    Ok(a.groups
        .iter()
        .map(|g| {
            let key = if g.keys[0].empty {
                EMPTY.to_string()
            } else {
                g.keys[0].value.as_str().unwrap_or_default().to_string()
            };
            (key, g.values[0].as_i64().unwrap_or(0), sum_text(g.values.get(1)))
        })
        .collect())
}

/// The whole board.
pub async fn build(st: &AppState, u: &UserCtx, obj: &ObjectDef, s: &ListState) -> Result<Option<Board>, AppError> {
    let Some(set) = settings(u, obj, s) else { return Ok(None) };
    let lang = u.ctx.lang.code();
    let totals = totals(st, u, obj, &set, s).await?;
    let of = |key: &str| totals.iter().find(|t| t.0 == key).map(|t| (t.1, t.2.clone())).unwrap_or((0, String::new()));
    let mut columns = Vec::new();
    let mut keys: Vec<(String, String, String)> = Vec::new();
    if of(EMPTY).0 > 0 {
        keys.push((EMPTY.into(), st.i18n.get(u.ctx.lang, "board-not-set", &[]), "gray".into()));
    }
    for c in set.field.options.choices.iter().filter(|c| !c.archived) {
        keys.push((c.key.clone(), c.label.get(lang).to_string(), c.color.clone()));
    }
    for (key, label, color) in keys {
        let (count, sum) = of(&key);
        let (cards, more) =
            if count > 0 { column_page(st, u, obj, &set, s, &key, None).await? } else { (Vec::new(), None) };
        columns.push(BoardColumn { key, label, color, count, sum, cards, more });
    }
    let readable: Vec<&Arc<FieldDef>> = obj.active().filter(|f| u.actor.can_read_field(obj, f)).collect();
    let opts = |ok: &dyn Fn(&FieldDef) -> bool| -> Vec<(String, String)> {
        readable.iter().filter(|f| ok(f)).map(|f| (f.api_name.clone(), f.label.get(lang).to_string())).collect()
    };
    let title = obj.title_field().map(|f| f.id);
    Ok(Some(Board {
        object: obj.api_name.clone(),
        field: set.field.api_name.clone(),
        field_label: set.field.label.get(lang).to_string(),
        sum: set.sum.as_ref().map(|f| f.api_name.clone()).unwrap_or_default(),
        sum_label: set.sum.as_ref().map(|f| f.label.get(lang).to_string()).unwrap_or_default(),
        cards: set.cards.iter().map(|f| f.api_name.clone()).collect(),
        columns,
        field_opts: opts(&|f| f.ftype == FieldType::Select),
        sum_opts: opts(&|f| numeric(f.ftype)),
        card_opts: opts(&|f| Some(f.id) != title && f.api_name != "owner"),
        state: s.query(),
        can_update: may_move(u, obj, &set),
        sortable_js: st.assets.url("sortable.js"),
        move_targets: move_targets(&set, lang),
    }))
}

#[derive(Template)]
#[template(path = "lists/board_cards.html")]
struct CardsPartial {
    shell: Shell,
    b: BoardRef,
    col: BoardColumn,
}

/// What a cards partial needs of its board.
pub struct BoardRef {
    pub object: String,
    pub move_targets: Vec<(String, String)>,
    pub can_update: bool,
}

/// `GET /o/{object}/board/column?<state>&col=&cursor=` — the next page of a column's cards.
pub async fn column(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    u.actor.check(&obj, Action::Read)?;
    let p = pairs(raw.as_deref());
    let s = ListState::parse(&p);
    let set = settings(&u, &obj, &s).ok_or_else(|| AppError::invalid("board.no_field"))?;
    let key = form_get(&p, "col").to_string();
    let cursor = Some(form_get(&p, "cursor").to_string()).filter(|c| !c.is_empty());
    let (cards, more) = column_page(&st, &u, &obj, &set, &s, &key, cursor).await?;
    let col =
        BoardColumn { key, label: String::new(), color: String::new(), count: 0, sum: String::new(), cards, more };
    let b = board_ref(&u, &obj, &set);
    render(&CardsPartial { shell: Shell::bare(&st, &u.ctx, String::new()), b, col })
}

fn board_ref(u: &UserCtx, obj: &ObjectDef, set: &Settings) -> BoardRef {
    let lang = u.ctx.lang.code();
    BoardRef { object: obj.api_name.clone(), move_targets: move_targets(set, lang), can_update: may_move(u, obj, set) }
}

/// Whether the user may move cards: update the object and write the board's field.
fn may_move(u: &UserCtx, obj: &ObjectDef, set: &Settings) -> bool {
    u.actor.check(obj, Action::Update).is_ok() && u.actor.can_write_field(obj, &set.field)
}

fn move_targets(set: &Settings, lang: &str) -> Vec<(String, String)> {
    set.field
        .options
        .choices
        .iter()
        .filter(|c| !c.archived)
        .map(|c| (c.key.clone(), c.label.get(lang).to_string()))
        .collect()
}

#[derive(Template)]
#[template(path = "lists/board_card.html")]
struct CardPartial {
    shell: Shell,
    b: BoardRef,
    c: Card,
}

/// An error as one line: its message and each field's.
fn error_text(st: &AppState, lang: crate::i18n::Lang, e: &AppError) -> String {
    let mut t = st.i18n.error(lang, &e.code);
    for f in &e.fields {
        t.push_str(&format!(" {}: {}", f.field, st.i18n.error(lang, &f.code)));
    }
    t
}

/// `POST /o/{object}/{id}/move` (`value`, `_version`, and the board's state) — move a card.
/// JSON `{ok, outcome: moved|stale|refused, status, message, card, column, totals: [{key,
/// count, sum}]}`: `card` is the record as it is now and `column` where it belongs (a stale
/// or refused card goes back there).
pub async fn move_card(
    State(st): State<AppState>,
    u: UserCtx,
    Path((object, id)): Path<(String, Uuid)>,
    axum::Form(p): axum::Form<Vec<(String, String)>>,
) -> Result<Response, crate::error::WebError> {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let s = ListState::parse(&p);
    let set = settings(&u, &obj, &s).ok_or_else(|| AppError::invalid("board.no_field"))?;
    let version: i64 = form_get(&p, "_version").parse().map_err(|_| AppError::invalid("record.version_required"))?;
    let value = form_get(&p, "value");
    let mut patch = Map::new();
    patch
        .insert(set.field.api_name.clone(), if value == EMPTY || value.is_empty() { Json::Null } else { json!(value) });
    let result = st.app.update(&u.actor, &object, id, version, &patch).await;
    // The outcome is in the body (the board shows each one), not in the status: a refused
    // move is an answer the page expects, not a failed request.
    let (outcome, status, message) = match &result {
        Ok(_) => ("moved", StatusCode::OK, st.i18n.get(u.ctx.lang, "board-moved", &[])),
        Err(e) if e.kind == ErrorKind::Conflict => {
            ("stale", StatusCode::CONFLICT, st.i18n.get(u.ctx.lang, "board-stale", &[]))
        }
        Err(e) if e.kind == ErrorKind::Internal => return Err(crate::error::WebError(e.clone())),
        Err(e) => ("refused", crate::error::status_of(e), error_text(&st, u.ctx.lang, e)),
    };
    // The card as it is now (when still readable), and the column it belongs to.
    let now = match &result {
        Ok(r) => Some(r.clone()),
        Err(_) => st.app.get(&u.actor, &object, id).await.ok(),
    };
    let (card, column) = match now {
        Some(r) => {
            let key = r.get(&set.field.api_name).as_str().map(str::to_owned).unwrap_or_else(|| EMPTY.into());
            let c = cards(&st, &u, &obj, &set, std::slice::from_ref(&r)).await?.pop();
            let html = match c {
                Some(c) => {
                    let t =
                        CardPartial { shell: Shell::bare(&st, &u.ctx, String::new()), b: board_ref(&u, &obj, &set), c };
                    askama::Template::render(&t).map_err(|e| AppError::internal(e.to_string()))?
                }
                None => String::new(),
            };
            (html, key)
        }
        None => (String::new(), String::new()),
    };
    let totals: Vec<Json> = totals(&st, &u, &obj, &set, &s)
        .await?
        .into_iter()
        .map(|(key, count, sum)| json!({"key": key, "count": count, "sum": sum}))
        .collect();
    let body = json!({"ok": result.is_ok(), "outcome": outcome, "status": status.as_u16(), "message": message,
        "card": card, "column": column, "totals": totals});
    Ok((StatusCode::OK, JsonResp(body)).into_response())
}
