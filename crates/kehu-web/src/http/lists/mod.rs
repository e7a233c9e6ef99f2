//! List views of every object (standard and custom), driven by metadata: chosen and ordered
//! columns, a filter builder (AND/OR, operators per field type, values picked from lists),
//! lifecycle and tag chips, sort by any sortable column, cursor pages with a total, quick
//! search, saved views, bulk actions with a progress bar for large ones, and CSV export.
//! Everything is in the URL (`state.rs`), so no step loses the others. Permissions are the
//! engine's: the handlers only ask.

mod actions;
pub mod board;
mod state;

pub use actions::{bulk, delete_view, export, job, save_view, update_view, value_input};
pub use state::{Cond, ListState};

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use kehu_app::display::Display;
use kehu_app::views::SavedView;
use kehu_app::{Count, ListRequest, RecordView};
use kehu_core::filter::Op;
use kehu_core::meta::{FieldDef, FieldType, ObjectDef};
use kehu_core::perm::{Action, Actor};
use kehu_core::Uuid;
use state::{status_field, tags_field};
use std::sync::Arc;

/// Rows per page.
pub const PAGE: u64 = 50;
/// Search hits a quick search considers.
const SEARCH_HITS: u32 = 100;

/// The columns a list shows when the URL and the view choose none: the title field, then the
/// readable fields an admin marked "show in list" (Settings → Objects & fields), in their
/// order; an object with none marked shows up to five short fields. (One rule, in one place.)
pub fn default_columns(obj: &ObjectDef, actor: &Actor) -> Vec<String> {
    let title = obj.title_field().map(|f| f.id);
    let mut out: Vec<String> = obj.title_field().map(|f| f.api_name.clone()).into_iter().collect();
    let readable = |f: &&Arc<FieldDef>| Some(f.id) != title && actor.can_read_field(obj, f);
    let marked: Vec<String> = obj.active().filter(|f| f.in_list).filter(readable).map(|f| f.api_name.clone()).collect();
    if marked.is_empty() {
        out.extend(
            obj.data_fields()
                .filter(readable)
                .filter(|f| !matches!(f.ftype, FieldType::LongText))
                .take(5)
                .map(|f| f.api_name.clone()),
        );
    } else {
        out.extend(marked);
    }
    out
}

/// Fields a list may show: every active, readable field (built-ins included).
fn readable(obj: &ObjectDef, actor: &Actor) -> Vec<Arc<FieldDef>> {
    obj.active().filter(|f| actor.can_read_field(obj, f)).cloned().collect()
}

fn sortable(f: &FieldDef) -> bool {
    !matches!(f.ftype, FieldType::MultiSelect | FieldType::Tags | FieldType::LongText)
}

/// Operators the filter builder offers for a field type.
pub fn ops_for(t: FieldType) -> Vec<&'static str> {
    ["eq", "neq", "contains", "starts_with", "lt", "lte", "gt", "gte", "is_empty", "is_not_empty"]
        .into_iter()
        .filter(|o| Op::parse(o).is_some_and(|op| op.supports(t)))
        .collect()
}

/// A badge: label and choice colour.
pub struct Badge {
    pub label: String,
    pub color: String,
}

/// One cell of the table.
pub struct Cell {
    pub label: String,
    pub text: String,
    pub badges: Vec<Badge>,
    pub masked: bool,
}

pub struct Row {
    pub id: Uuid,
    pub title: String,
    pub cells: Vec<Cell>,
}

pub struct Column {
    pub api: String,
    pub label: String,
    pub sort_href: Option<String>,
    /// "asc", "desc" or "".
    pub sorted: &'static str,
    pub title: bool,
    pub up: String,
    pub down: String,
    pub remove: String,
}

pub struct Link {
    pub label: String,
    pub href: String,
    pub active: bool,
    pub color: String,
}

/// A value widget: text, number, date, a list of options, or nothing.
pub struct ValueInput {
    pub name: String,
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<(String, String, bool)>,
    /// The type-ahead of a relation or user field (kind `picker`).
    pub picker: Option<crate::http::picker::Picker>,
}

/// One row of the filter builder.
pub struct CondRow {
    pub object: String,
    /// The field this row was rendered for (sent back as `pf`: a changed field resets the
    /// operator and the value).
    pub field: String,
    pub fields: Vec<(String, String, bool)>,
    pub ops: Vec<(String, String, bool)>,
    pub input: ValueInput,
}

/// The value widget for a field (options for selects, users and related records).
pub async fn value_widget(
    st: &AppState,
    u: &UserCtx,
    obj: &ObjectDef,
    f: &FieldDef,
    name: &str,
    value: &str,
) -> ValueInput {
    let lang = u.ctx.lang.code();
    let sel = |k: &str| k == value;
    let (kind, options) = match f.ftype {
        FieldType::Select | FieldType::MultiSelect => (
            "select",
            f.options.choices.iter().map(|c| (c.key.clone(), c.label.get(lang).to_string(), sel(&c.key))).collect(),
        ),
        FieldType::Boolean => {
            let t = st.i18n.get(u.ctx.lang, "lists-yes", &[]);
            let n = st.i18n.get(u.ctx.lang, "lists-no", &[]);
            ("select", vec![("true".into(), t, sel("true")), ("false".into(), n, sel("false"))])
        }
        FieldType::User | FieldType::Relation => ("picker", vec![]),
        FieldType::Integer | FieldType::Decimal | FieldType::Percent | FieldType::Currency => ("number", vec![]),
        FieldType::Date => ("date", vec![]),
        FieldType::DateTime => ("datetime", vec![]),
        _ => ("text", vec![]),
    };
    let _ = obj;
    let picker = match st.app.schema().await {
        Ok(schema) => {
            crate::http::picker::for_field(st, u, &schema, f, value).await.map(|mut p| {
                p.name = name.into();
                p.id = format!("pk-{}", kehu_core::new_id().simple());
                // Filters may say "me"; a bulk set or an owner names a person.
                p.me = f.ftype == FieldType::User && name != "value" && name != "owner";
                p
            })
        }
        Err(_) => None,
    };
    ValueInput { name: name.into(), kind, value: value.into(), options, picker }
}

async fn cond_row(st: &AppState, u: &UserCtx, obj: &ObjectDef, c: &Cond) -> CondRow {
    let lang = u.ctx.lang.code();
    let fields: Vec<Arc<FieldDef>> = readable(obj, &u.actor).into_iter().filter(|f| f.filterable).collect();
    let field = fields.iter().find(|f| f.api_name == c.field).or_else(|| fields.first()).cloned();
    let Some(field) = field else {
        return CondRow {
            object: obj.api_name.clone(),
            field: String::new(),
            fields: vec![],
            ops: vec![],
            input: ValueInput { name: "cv".into(), kind: "none", value: String::new(), options: vec![], picker: None },
        };
    };
    let ops = ops_for(field.ftype);
    let op = if ops.contains(&c.op.as_str()) {
        c.op.clone()
    } else {
        ops.first().map(|s| s.to_string()).unwrap_or_default()
    };
    let mut input = value_widget(st, u, obj, &field, "cv", &c.value).await;
    if op == "is_empty" || op == "is_not_empty" {
        input.kind = "none";
    }
    CondRow {
        object: obj.api_name.clone(),
        field: field.api_name.clone(),
        fields: fields.iter().map(|f| (f.api_name.clone(), f.label.get(lang).to_string(), f.id == field.id)).collect(),
        ops: ops
            .iter()
            .map(|o| {
                (o.to_string(), st.i18n.get(u.ctx.lang, &format!("lists-op-{}", o.replace('_', "-")), &[]), *o == op)
            })
            .collect(),
        input,
    }
}

#[derive(Template)]
#[template(path = "lists/cond_row.html")]
struct CondPartial {
    shell: Shell,
    c: CondRow,
}

/// `GET /o/{object}/filter-row?cf=&co=&cv=` — one filter row for the chosen field (htmx).
pub async fn filter_row(
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
    let mut c = s.conds.last().cloned().unwrap_or_default();
    // Another field was chosen: its operator and value start afresh (a value typed for the
    // owner, such as "me", means nothing for a city).
    let previous = p.iter().rev().find(|(k, _)| k == "pf").map(|(_, v)| v.as_str()).unwrap_or("");
    if !previous.is_empty() && previous != c.field {
        c.op.clear();
        c.value.clear();
    }
    let row = cond_row(&st, &u, &obj, &c).await;
    render(&CondPartial { shell: Shell::bare(&st, &u.ctx, String::new()), c: row })
}

pub fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect()
}

#[derive(Template)]
#[template(path = "lists/list.html")]
struct ListPage {
    shell: Shell,
    object: String,
    plural: String,
    /// The state as a query string (for forms that carry it).
    state: String,
    /// The state as name/value pairs (hidden inputs of GET forms).
    state_pairs: Vec<(String, String)>,
    search_pairs: Vec<(String, String)>,
    st: ListState,
    columns: Vec<Column>,
    add_columns: Vec<Link>,
    rows: Vec<Row>,
    total: String,
    next: Option<String>,
    first: Option<String>,
    can_create: bool,
    can_update: bool,
    can_delete: bool,
    can_export: bool,
    can_reveal: bool,
    views: Vec<Link>,
    current_view: Option<SavedView>,
    view_label: String,
    lifecycle: Vec<Link>,
    tags: Vec<Link>,
    conds: Vec<CondRow>,
    owners: Vec<(String, String)>,
    set_fields: Vec<(String, String)>,
    has_tags: bool,
    team: Option<Uuid>,
    clear_href: String,
    /// The board instead of the table (`lay=board`).
    board: Option<board::Board>,
    /// The state without the board's settings (hidden inputs of the board's settings form).
    board_pairs: Vec<(String, String)>,
    list_href: String,
    board_href: String,
    /// Some filter, chip or search narrows the list (an empty result then offers to clear).
    filtered: bool,
}

/// Resolve the state: explicit URL state, else the chosen saved view, else the defaults.
async fn resolve_state(
    st: &AppState,
    actor: &Actor,
    obj: &ObjectDef,
    mut s: ListState,
) -> kehu_core::error::Result<(ListState, Option<SavedView>)> {
    let mut current = None;
    if let Ok(id) = s.view.parse::<Uuid>() {
        let v = st.app.view_by_id(actor, &obj.api_name, id).await?;
        if !s.explicit {
            s.cols = v.columns.clone();
            s.sort = v.sort.clone();
            s.set_filter(obj, v.filter.as_ref());
            if let Some(l) = &v.layout {
                s.layout = "board".into();
                s.bf = l.field.clone();
                s.bs = l.sum.clone().unwrap_or_default();
                s.bc = l.cards.clone();
            }
        }
        current = Some(v);
    } else if s.view == "mine" && !s.explicit {
        s.conds = vec![Cond { field: "owner".into(), op: "eq".into(), value: "$me".into() }];
    }
    let fields = readable(obj, actor);
    s.cols.retain(|c| fields.iter().any(|f| &f.api_name == c));
    s.cols.dedup();
    if s.cols.is_empty() {
        s.cols = default_columns(obj, actor);
    }
    Ok((s, current))
}

#[derive(Template)]
#[template(path = "lists/count.html")]
struct CountPartial {
    total: String,
    label: String,
    /// The page has the bulk bar, whose "all N matching" label is swapped too.
    bulk: bool,
}

/// `GET /o/{object}/count?<list state>` — the list's total (capped), swapped into the header
/// and the "all N matching" label.
pub async fn count(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    u.actor.check(&obj, Action::Read)?;
    let query = pairs(raw.as_deref());
    let bulk = query.iter().any(|(k, v)| k == "bulk" && v == "1");
    let (s, _) = resolve_state(&st, &u.actor, &obj, ListState::parse(&query)).await?;
    let req = ListRequest { filter: s.filter(&obj), count: Count::Capped, limit: Some(1), ..Default::default() };
    let page = st.app.list(&u.actor, &object, &req).await?;
    let total = page.total_text();
    let label = st.i18n.get(u.ctx.lang, "lists-bulk-all", &[("total", &total)]);
    render(&CountPartial { total, label, bulk })
}

/// `GET /o/{object}`
pub async fn list(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    u.actor.check(&obj, Action::Read)?;
    let lang = u.ctx.lang.code();
    let (s, current_view) = resolve_state(&st, &u.actor, &obj, ListState::parse(&pairs(raw.as_deref()))).await?;
    let fields: Vec<Arc<FieldDef>> = s.cols.iter().filter_map(|c| obj.field(c).cloned()).collect();
    let filter = s.filter(&obj);
    let sort = (!s.sort.is_empty()).then(|| s.sort.clone());
    let searching = !s.q.trim().is_empty();
    // A board shows its own columns of cards (searching shows the matching rows instead).
    let board = if s.layout == "board" && !searching { board::build(&st, &u, &obj, &s).await? } else { None };
    let (records, total, next): (Vec<RecordView>, String, Option<String>) = if board.is_some() {
        (Vec::new(), String::new(), None)
    } else if searching {
        let hits = st.app.search(&u.actor, &s.q, Some(&[object.as_str()]), SEARCH_HITS).await?;
        let ids: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
        let recs = st.app.list_by_ids(&u.actor, &object, &ids, filter.as_ref(), sort.as_deref()).await?;
        let n = recs.len().to_string();
        (recs, n, None)
    } else {
        let req = ListRequest {
            filter: filter.clone(),
            sort: sort.clone().map(serde_json::Value::String),
            cursor: (!s.cursor.is_empty()).then(|| s.cursor.clone()),
            // The total comes in a second request (`/o/{object}/count`) once the rows are on
            // screen: counting up to the cap can read far more than the 50 rows shown.
            count: Count::None,
            limit: Some(PAGE),
            deleted: false,
        };
        let page = st.app.list(&u.actor, &object, &req).await?;
        // Empty: the template asks `/o/{object}/count` for it.
        (page.records, String::new(), page.next_cursor)
    };
    let names = st.app.resolve_names(&u.actor, &fields, &records).await?;
    let tz = u.session.user.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let d = Display { lang, names: &names, tz };
    let title_field = obj.title_field().cloned();
    let masked = !u.actor.sees_unmasked();
    let rows = records
        .iter()
        .map(|r| Row {
            id: r.id,
            title: title_field
                .as_ref()
                .map(|f| d.text(f, r.get(&f.api_name)))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "—".into()),
            cells: fields.iter().map(|f| cell(&d, f, r.get(&f.api_name), lang, masked)).collect(),
        })
        .collect();
    let state = s.query();
    let href = |t: &ListState| t.href(&object);
    let columns = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (sorted, next_sort) = if s.sort == f.api_name {
                ("asc", format!("-{}", f.api_name))
            } else if s.sort == format!("-{}", f.api_name) {
                ("desc", f.api_name.clone())
            } else {
                ("", f.api_name.clone())
            };
            let moved = |j: usize| {
                let mut c = s.cols.clone();
                if j < c.len() {
                    c.swap(i, j);
                }
                href(&s.with(|t| t.cols = c))
            };
            Column {
                api: f.api_name.clone(),
                label: f.label.get(lang).to_string(),
                sort_href: sortable(f).then(|| href(&s.with(|t| t.sort = next_sort))),
                sorted,
                title: Some(f.id) == title_field.as_ref().map(|t| t.id),
                up: if i > 0 { moved(i - 1) } else { String::new() },
                down: if i + 1 < fields.len() { moved(i + 1) } else { String::new() },
                remove: if fields.len() > 1 {
                    href(&s.with(|t| t.cols.retain(|c| c != &f.api_name)))
                } else {
                    String::new()
                },
            }
        })
        .collect();
    let add_columns = readable(&obj, &u.actor)
        .iter()
        .filter(|f| !s.cols.contains(&f.api_name))
        .map(|f| Link {
            label: f.label.get(lang).to_string(),
            href: href(&s.with(|t| t.cols.push(f.api_name.clone()))),
            active: false,
            color: String::new(),
        })
        .collect();
    // Chips: lifecycle stages and tags (tags seen on this page and the chosen one).
    let lifecycle =
        match obj.field(status_field(&obj)).filter(|f| f.ftype == FieldType::Select && u.actor.can_read_field(&obj, f))
        {
            Some(f) => f
                .options
                .choices
                .iter()
                .map(|c| Link {
                    label: c.label.get(lang).to_string(),
                    href: href(&s.with(|t| t.lc = if t.lc == c.key { String::new() } else { c.key.clone() })),
                    active: s.lc == c.key,
                    color: c.color.clone(),
                })
                .collect(),
            None => Vec::new(),
        };
    let tag_field =
        obj.field(tags_field(&obj)).filter(|f| f.ftype == FieldType::Tags && u.actor.can_read_field(&obj, f)).cloned();
    let mut tag_names: Vec<String> = Vec::new();
    if tag_field.is_some() {
        if !s.tag.is_empty() {
            tag_names.push(s.tag.clone());
        }
        for r in &records {
            for t in r.get(tags_field(&obj)).as_array().into_iter().flatten().filter_map(|t| t.as_str()) {
                if !tag_names.iter().any(|x| x == t) && tag_names.len() < 12 {
                    tag_names.push(t.to_string());
                }
            }
        }
    }
    let tags = tag_names
        .into_iter()
        .map(|t| Link {
            href: href(&s.with(|x| x.tag = if x.tag == t { String::new() } else { t.clone() })),
            active: s.tag == t,
            label: t,
            color: "gray".into(),
        })
        .collect();
    // Views.
    let base = ListState::default();
    let mut views = vec![
        Link {
            label: st.i18n.get(u.ctx.lang, "lists-view-all", &[]),
            href: format!("/o/{object}?view=all"),
            active: s.view.is_empty() || s.view == "all",
            color: String::new(),
        },
        Link {
            label: st.i18n.get(u.ctx.lang, "lists-view-mine", &[]),
            href: format!("/o/{object}?view=mine"),
            active: s.view == "mine",
            color: String::new(),
        },
    ];
    for v in st.app.views(&u.actor, &object).await? {
        views.push(Link {
            active: current_view.as_ref().is_some_and(|c| c.id == v.id),
            href: format!("/o/{object}?view={}", v.id),
            label: v.name,
            color: if v.team_id.is_some() { "shared".into() } else { String::new() },
        });
    }
    let view_label = views.iter().find(|v| v.active).map(|v| v.label.clone()).unwrap_or_default();
    let mut conds = Vec::new();
    for c in &s.conds {
        conds.push(cond_row(&st, &u, &obj, c).await);
    }
    let can_update = u.actor.check(&obj, Action::Update).is_ok();
    let owners = if can_update && obj.field("owner").is_some_and(|f| u.actor.can_write_field(&obj, f)) {
        st.app.user_choices().await?.into_iter().map(|(id, n)| (id.to_string(), n)).collect()
    } else {
        Vec::new()
    };
    let set_fields: Vec<(String, String)> = obj
        .active()
        .filter(|f| u.actor.can_write_field(&obj, f) && !f.unique && f.api_name != "owner")
        .map(|f| (f.api_name.clone(), f.label.get(lang).to_string()))
        .collect();
    let plural = obj.plural.get(lang).to_string();
    let shell = Shell::new(&st, &u.ctx, &u.session, &u.actor, plural.clone()).await.crumb(plural.clone(), None);
    let next = next.map(|c| {
        format!(
            "/o/{object}?{}&cursor={}",
            state,
            url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
        )
    });
    let first = (!s.cursor.is_empty()).then(|| href(&s));
    let state_pairs = pairs(Some(&state));
    let search_pairs = pairs(Some(&s.with(|t| t.q.clear()).query()));
    let board_pairs = pairs(Some(
        &s.with(|t| {
            t.bf.clear();
            t.bs.clear();
            t.bc.clear();
        })
        .query(),
    ));
    let list_href = href(&s.with(|t| t.layout.clear()));
    let board_href = if board::settings(&u, &obj, &s).is_some() {
        href(&s.with(|t| t.layout = "board".into()))
    } else {
        String::new()
    };
    render(&ListPage {
        shell,
        object: object.clone(),
        plural,
        state,
        state_pairs,
        search_pairs,
        columns,
        add_columns,
        rows,
        total,
        next,
        first,
        can_create: u.actor.check(&obj, Action::Create).is_ok(),
        can_update,
        can_delete: u.actor.check(&obj, Action::Delete).is_ok(),
        can_export: u.actor.check(&obj, Action::Export).is_ok(),
        can_reveal: u.actor.can_reveal(),
        views,
        current_view,
        view_label,
        lifecycle,
        tags,
        conds,
        owners,
        has_tags: tag_field.as_ref().is_some_and(|f| u.actor.can_write_field(&obj, f)),
        set_fields,
        team: u.actor.teams.first().copied(),
        clear_href: href(&base.with(|t| {
            t.cols = s.cols.clone();
            t.sort = s.sort.clone();
            t.layout = s.layout.clone();
            t.bf = s.bf.clone();
            t.bs = s.bs.clone();
            t.bc = s.bc.clone();
        })),
        filtered: !s.conds.is_empty() || !s.lc.is_empty() || !s.tag.is_empty() || !s.q.trim().is_empty(),
        board,
        board_pairs,
        list_href,
        board_href,
        st: s,
    })
}

/// A value as a table cell: select options and tags as coloured badges.
fn cell(d: &Display, f: &FieldDef, v: &serde_json::Value, lang: &str, masked: bool) -> Cell {
    let mut badges = Vec::new();
    match (f.ftype, v) {
        (FieldType::Select, serde_json::Value::String(k)) => badges.push(badge(f, k, lang)),
        (FieldType::MultiSelect, serde_json::Value::Array(a)) => {
            badges.extend(a.iter().filter_map(|k| k.as_str()).map(|k| badge(f, k, lang)))
        }
        (FieldType::Tags, serde_json::Value::Array(a)) => badges
            .extend(a.iter().filter_map(|k| k.as_str()).map(|k| Badge { label: k.to_string(), color: "gray".into() })),
        _ => {}
    }
    Cell {
        label: f.label.get(lang).to_string(),
        text: if badges.is_empty() { d.text(f, v) } else { String::new() },
        badges,
        masked: masked && matches!(f.ftype, FieldType::Phone | FieldType::Email) && !v.is_null(),
    }
}

fn badge(f: &FieldDef, k: &str, lang: &str) -> Badge {
    match f.choice(k) {
        Some(c) => Badge {
            label: c.label.get(lang).to_string(),
            color: if kehu_core::meta::COLORS.contains(&c.color.as_str()) { c.color.clone() } else { "gray".into() },
        },
        None => Badge { label: k.to_string(), color: "gray".into() },
    }
}
