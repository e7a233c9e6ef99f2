//! Duplicates and merging, for any object with e-mail or phone fields: the warning the create
//! form fetches while the user types, the duplicates page (likely duplicate groups, by rule),
//! and the merge page (side by side, survivor and value per field). Detection, permissions
//! and the merge itself live in kehu-app.

use crate::ctx::UserCtx;
use crate::error::WebResult;
use crate::http::enc;
use crate::http::records::Display;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use kehu_app::customers::duplicates::{rules, MatchKind};
use kehu_app::records::MergeRequest;
use kehu_app::RecordView;
use kehu_core::meta::{FieldType, ObjectDef, Schema};
use kehu_core::perm::Action;
use kehu_core::{AppError, Uuid};
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;

/// Most records on one merge page.
const MAX_RECORDS: usize = 5;

/// Api names of the create-form inputs that trigger the duplicate check.
pub fn watched(schema: &Schema, obj: &ObjectDef) -> Vec<String> {
    let mut out = Vec::new();
    for r in rules(schema, obj) {
        out.push(r.field.api_name.clone());
        if let Some(c) = r.company {
            out.push(c.api_name.clone());
        }
    }
    out
}

fn kind_label(st: &AppState, u: &UserCtx, k: MatchKind) -> String {
    st.i18n.get(u.ctx.lang, &format!("dup-kind-{}", k.as_str()), &[])
}

pub struct MatchView {
    pub href: Option<String>,
    pub title: String,
    pub reasons: String,
}

#[derive(Template)]
#[template(path = "merge/warning_partial.html")]
struct WarningPartial {
    shell: Shell,
    matches: Vec<MatchView>,
}

/// `GET /o/{object}/duplicates/check?<form fields>` — the warning under the create form.
pub async fn check(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?;
    let mut input = Map::new();
    for (k, v) in pairs {
        if obj.field(&k).is_some() && !v.trim().is_empty() && v.len() <= 1000 {
            input.insert(k, Json::String(v));
        }
    }
    let found = st.app.find_duplicates(&u.actor, &object, &input, None).await?;
    let matches = found
        .into_iter()
        .map(|m| MatchView {
            href: m.record.as_ref().map(|r| format!("/o/{object}/{}", r.id)),
            title: m.record.map(|r| r.title).unwrap_or_default(),
            reasons: m.kinds.iter().map(|k| kind_label(&st, &u, *k)).collect::<Vec<_>>().join("、"),
        })
        .collect();
    let shell = Shell::bare(&st, &u.ctx, String::new());
    Ok(render(&WarningPartial { shell, matches })?.into_response())
}

pub struct RuleTab {
    pub href: String,
    pub label: String,
    pub active: bool,
}

pub struct GroupView {
    pub value: String,
    pub records: Vec<(Uuid, String)>,
    pub hidden: usize,
    pub merge_href: Option<String>,
}

#[derive(Template)]
#[template(path = "merge/duplicates.html")]
struct DuplicatesPage {
    shell: Shell,
    object: String,
    tabs: Vec<RuleTab>,
    groups: Vec<GroupView>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct DupQuery {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /o/{object}/duplicates?by=<field>&cursor=…` — likely duplicate groups by one rule.
pub async fn duplicates(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    Query(dq): Query<DupQuery>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    u.actor.check(&obj, Action::Read)?;
    let lang = u.ctx.lang.code();
    let all_rules = rules(&schema, &obj);
    let by = dq.by.clone().or_else(|| all_rules.first().map(|r| r.key().to_string()));
    let tabs = all_rules
        .iter()
        .map(|r| RuleTab {
            href: format!("/o/{object}/duplicates?by={}", enc(r.key())),
            label: st.i18n.get(u.ctx.lang, "dup-by", &[("field", r.field.label.get(lang))]),
            active: Some(r.key()) == by.as_deref(),
        })
        .collect();
    let can_merge = u.actor.check(&obj, Action::Update).is_ok() && u.actor.check(&obj, Action::Delete).is_ok();
    let (groups, next) = match &by {
        Some(rule) => {
            let page = st.app.duplicate_groups(&u.actor, &object, rule, dq.cursor.as_deref()).await?;
            let groups = page
                .groups
                .into_iter()
                .map(|g| {
                    let ids: Vec<String> = g.records.iter().take(MAX_RECORDS).map(|r| r.id.to_string()).collect();
                    GroupView {
                        value: g.value,
                        merge_href: (can_merge && ids.len() >= 2)
                            .then(|| format!("/o/{object}/merge?ids={}", ids.join(","))),
                        records: g.records.into_iter().map(|r| (r.id, r.title)).collect(),
                        hidden: g.hidden,
                    }
                })
                .collect();
            let next = page.next.map(|c| format!("/o/{object}/duplicates?by={}&cursor={}", enc(rule), enc(&c)));
            (groups, next)
        }
        None => (Vec::new(), None),
    };
    let plural = obj.plural.get(lang).to_string();
    let title = st.i18n.get(u.ctx.lang, "dup-title", &[]);
    let shell = Shell::new(&st, &u.ctx, &u.session, &u.actor, title.clone())
        .await
        .crumb(plural, Some(&format!("/o/{object}")))
        .crumb(title, None);
    render(&DuplicatesPage { shell, object, tabs, groups, next })
}

/// A record as a column of the merge page.
pub struct MergeCol {
    pub id: Uuid,
    pub title: String,
    pub version: i64,
    pub survivor: bool,
    pub href: String,
}

/// One cell: the record, its value as shown, whether its radio is picked.
pub struct MergeCell {
    pub id: Uuid,
    pub value: String,
    pub checked: bool,
}

/// A field row: a choice when the values differ (and the user may write the field).
pub struct MergeRow {
    pub api: String,
    pub label: String,
    pub cells: Vec<MergeCell>,
    pub choose: bool,
    pub union: bool,
}

#[derive(Template)]
#[template(path = "merge/merge.html")]
struct MergePage {
    shell: Shell,
    object: String,
    ids: String,
    cols: Vec<MergeCol>,
    rows: Vec<MergeRow>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct MergeQuery {
    #[serde(default)]
    ids: String,
    #[serde(default)]
    survivor: Option<Uuid>,
}

fn parse_ids(s: &str) -> Result<Vec<Uuid>, AppError> {
    let mut out: Vec<Uuid> = Vec::new();
    for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id: Uuid = p.parse().map_err(|_| AppError::invalid("merge.invalid_selection"))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if !(2..=MAX_RECORDS).contains(&out.len()) {
        return Err(AppError::invalid("merge.invalid_selection"));
    }
    Ok(out)
}

/// Build the merge page for `ids` with `survivor` (the first when none), values `chosen`
/// where given, defaults elsewhere: the survivor's non-empty value, else the first non-empty.
async fn merge_view(
    st: &AppState,
    u: &UserCtx,
    obj: &ObjectDef,
    ids: &[Uuid],
    survivor: Option<Uuid>,
    chosen: &HashMap<String, Uuid>,
    error: Option<String>,
) -> WebResult<MergePage> {
    let object = obj.api_name.clone();
    let mut recs: Vec<RecordView> = Vec::new();
    for id in ids {
        recs.push(st.app.get(&u.actor, &object, *id).await?);
    }
    let survivor = survivor.filter(|s| ids.contains(s)).unwrap_or(ids[0]);
    let lang = u.ctx.lang.code();
    let names = crate::http::records::names(st, &u.actor, obj, &recs).await;
    let tz = u.session.user.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let d = Display { lang, names: &names, tz };
    let title_api = obj.title_field().map(|f| f.api_name.clone()).unwrap_or_default();
    let cols = recs
        .iter()
        .map(|r| MergeCol {
            id: r.id,
            title: r.get(&title_api).as_str().filter(|s| !s.is_empty()).unwrap_or("—").to_string(),
            version: r.version,
            survivor: r.id == survivor,
            href: format!("/o/{object}/{}", r.id),
        })
        .collect();
    // Survivor first when looking for the default value.
    let order: Vec<&RecordView> =
        recs.iter().filter(|r| r.id == survivor).chain(recs.iter().filter(|r| r.id != survivor)).collect();
    let mut rows = Vec::new();
    for f in obj.active().filter(|f| !f.readonly && recs.iter().any(|r| r.fields.contains_key(&f.api_name))) {
        let vals: Vec<&Json> = recs.iter().map(|r| r.get(&f.api_name)).collect();
        let union = matches!(f.ftype, FieldType::Tags | FieldType::MultiSelect);
        let differ = vals.iter().any(|v| v != &vals[0]);
        let choose = differ && !union && u.actor.can_write_field(obj, f);
        let default = order.iter().find(|r| !r.get(&f.api_name).is_null()).map(|r| r.id).unwrap_or(survivor);
        let pick = chosen.get(&f.api_name).copied().filter(|c| ids.contains(c)).unwrap_or(default);
        rows.push(MergeRow {
            api: f.api_name.clone(),
            label: f.label.get(lang).to_string(),
            cells: recs
                .iter()
                .map(|r| MergeCell { id: r.id, value: d.value(f, r.get(&f.api_name)), checked: r.id == pick })
                .collect(),
            choose,
            union: union && differ,
        });
    }
    let plural = obj.plural.get(lang).to_string();
    let title = st.i18n.get(u.ctx.lang, "merge-title", &[]);
    let shell = Shell::new(st, &u.ctx, &u.session, &u.actor, title.clone())
        .await
        .crumb(plural, Some(&format!("/o/{object}")))
        .crumb(st.i18n.get(u.ctx.lang, "dup-title", &[]), Some(&format!("/o/{object}/duplicates")))
        .crumb(title, None);
    let ids = ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",");
    Ok(MergePage { shell, object, ids, cols, rows, error })
}

/// `GET /o/{object}/merge?ids=a,b[,…]&survivor=a` — the comparison and choices.
pub async fn merge_page(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    Query(mq): Query<MergeQuery>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    u.actor.check(&obj, Action::Update)?;
    u.actor.check(&obj, Action::Delete)?;
    let ids = parse_ids(&mq.ids)?;
    let page = merge_view(&st, &u, &obj, &ids, mq.survivor, &HashMap::new(), None).await?;
    render(&page)
}

/// `POST /o/{object}/merge` — `ids`, `survivor`, `v.<id>` (versions read) and `f.<field>`
/// (the record whose value stays). Lands on the survivor's page.
pub async fn merge(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let ids = parse_ids(get("ids"))?;
    let survivor: Uuid = get("survivor").parse().map_err(|_| AppError::field("survivor", "merge.invalid_selection"))?;
    let mut versions = HashMap::new();
    let mut values = HashMap::new();
    for (k, v) in &pairs {
        if let Some(id) = k.strip_prefix("v.") {
            if let (Ok(id), Ok(v)) = (id.parse::<Uuid>(), v.parse::<i64>()) {
                versions.insert(id, v);
            }
        } else if let Some(api) = k.strip_prefix("f.") {
            let id: Uuid = v.parse().map_err(|_| AppError::field(k.clone(), "merge.invalid_source"))?;
            values.insert(api.to_string(), id);
        }
    }
    // Only fields whose value is a real choice are sent as chosen; the others follow the
    // engine's default for the chosen survivor.
    let req = MergeRequest {
        survivor,
        merge: ids.iter().copied().filter(|i| *i != survivor).collect(),
        versions,
        values: values.clone(),
    };
    match st.app.merge(&u.actor, &object, &req).await {
        Ok(r) => Ok(crate::http::auth::redirect_flash(&u.ctx, &format!("/o/{object}/{}", r.id), "flash-merged")),
        Err(e) if matches!(e.kind, kehu_core::ErrorKind::Conflict | kehu_core::ErrorKind::Invalid) => {
            let msg = st.i18n.error_of(u.ctx.lang, &e);
            let page = merge_view(&st, &u, &obj, &ids, Some(survivor), &values, Some(msg)).await?;
            let mut r = render(&page)?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}
