//! Record routes for any object: list, search, create, get, update (with `If-Match`), delete,
//! restore. Permissions, validation and masking happen in the record engine.

use super::{ErrorBody, JsonBody};
use crate::ctx::ApiCaller;
use crate::error::{WebError, WebResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use kehu_app::{Count, ListRequest, Page, RecordView};
use kehu_core::perm::Actor;
use kehu_core::{AppError, Uuid};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as JVal};
use utoipa::{IntoParams, ToSchema};

/// A record: its id, object, version (for `If-Match`) and the fields the caller may read.
/// Phone numbers and e-mails are masked unless the request asks `reveal=true` with the
/// permission (audited).
#[derive(Serialize, ToSchema)]
pub struct RecordOut {
    pub id: Uuid,
    pub object: String,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// Values by field api name; see the object's schema `<object>.fields`.
    #[schema(value_type = Object)]
    pub fields: Map<String, JVal>,
}

impl From<RecordView> for RecordOut {
    fn from(r: RecordView) -> Self {
        RecordOut { id: r.id, object: r.object, version: r.version, deleted_at: r.deleted_at, fields: r.fields }
    }
}

/// One page of records.
#[derive(Serialize, ToSchema)]
pub struct PageOut {
    pub data: Vec<RecordOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// `total` is a lower bound (the count stopped at 10,000).
    pub total_is_capped: bool,
}

impl From<Page> for PageOut {
    fn from(p: Page) -> Self {
        PageOut {
            data: p.records.into_iter().map(RecordOut::from).collect(),
            next_cursor: p.next_cursor,
            total: p.total,
            total_is_capped: p.total_is_capped,
        }
    }
}

/// Field values by api name, e.g. `{"name": "张伟", "email": "zhang.wei@example.com"}`;
/// unknown or read-only members are refused.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct RecordInput(#[allow(dead_code)] Map<String, JVal>);

/// The body of `POST /api/v1/{object}/search`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// A filter: `{"and": [...]}`, `{"or": [...]}` or `{"field", "op", "value"}` with ops eq,
    /// neq, lt, lte, gt, gte, contains, starts_with, in, is_empty, is_not_empty, between,
    /// relation_is.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub filter: Option<JVal>,
    /// `"-updated_at,name"` or `["-updated_at", "name"]`.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub sort: Option<JVal>,
    /// 1–200, default 50.
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub cursor: Option<String>,
    /// `none` (default), `exact` or `capped`.
    #[serde(default)]
    pub count: Option<String>,
    /// Full-text query instead of a filter (matches Chinese words, phone suffixes, e-mails).
    #[serde(default)]
    pub q: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–200, default 50.
    limit: Option<u64>,
    cursor: Option<String>,
    /// `"-updated_at,name"`.
    sort: Option<String>,
    /// A filter as JSON text (see the search route).
    filter: Option<String>,
    /// `none`, `exact` or `capped`.
    count: Option<String>,
    /// Show phone numbers and e-mails unmasked (needs the permission; audited).
    reveal: Option<bool>,
    /// The recycle bin instead of live records.
    deleted: Option<bool>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevealParam {
    /// Show phone numbers and e-mails unmasked (needs the permission; audited).
    reveal: Option<bool>,
}

fn parse_count(s: Option<&str>) -> Result<Count, AppError> {
    match s {
        None | Some("none") => Ok(Count::None),
        Some("exact") => Ok(Count::Exact),
        Some("capped") => Ok(Count::Capped),
        _ => Err(AppError::field("count", "field.invalid_choice")),
    }
}

fn actor_for(c: &ApiCaller, reveal: Option<bool>) -> Result<Actor, AppError> {
    if reveal == Some(true) {
        c.actor.revealing()
    } else {
        Ok(c.actor.clone())
    }
}

pub(super) fn with_etag(r: RecordView, status: StatusCode) -> Response {
    let etag = format!("\"{}\"", r.version);
    let mut resp = (status, Json(RecordOut::from(r))).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// List records.
#[utoipa::path(get, path = "/api/v1/{object}", tag = "records",
    params(("object" = String, Path, description = "Object api name, e.g. `contact`"), ListParams),
    responses((status = 200, body = PageOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_records(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(object): Path<String>,
    Query(p): Query<ListParams>,
) -> WebResult<Json<PageOut>> {
    let filter = match p.filter.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => Some(serde_json::from_str(s).map_err(|_| AppError::field("filter", "filter.invalid"))?),
        None => None,
    };
    let req = ListRequest {
        filter,
        sort: p.sort.map(JVal::String),
        limit: p.limit,
        cursor: p.cursor,
        count: parse_count(p.count.as_deref())?,
        deleted: p.deleted.unwrap_or(false),
    };
    let actor = actor_for(&c, p.reveal)?;
    Ok(Json(st.app.list(&actor, &object, &req).await?.into()))
}

/// Search records with a filter (the engine's filter language) or a full-text query.
#[utoipa::path(post, path = "/api/v1/{object}/search", tag = "records",
    params(("object" = String, Path, description = "Object api name"), RevealParam),
    request_body = SearchBody,
    responses((status = 200, body = PageOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn search_records(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(object): Path<String>,
    Query(rp): Query<RevealParam>,
    JsonBody(b): JsonBody<SearchBody>,
) -> WebResult<Json<PageOut>> {
    let actor = actor_for(&c, rp.reveal)?;
    if let Some(q) = b.q.as_deref().filter(|q| !q.trim().is_empty()) {
        let limit = b.limit.unwrap_or(50).clamp(1, 100) as u32;
        let hits = st.app.search(&actor, q, Some(&[object.as_str()]), limit).await?;
        let mut data = Vec::with_capacity(hits.len());
        for h in hits {
            if let Ok(r) = st.app.get(&actor, &object, h.id).await {
                data.push(RecordOut::from(r));
            }
        }
        let total = Some(data.len() as u64);
        return Ok(Json(PageOut { data, next_cursor: None, total, total_is_capped: false }));
    }
    let req = ListRequest {
        filter: b.filter,
        sort: b.sort,
        limit: b.limit,
        cursor: b.cursor,
        count: parse_count(b.count.as_deref())?,
        deleted: false,
    };
    Ok(Json(st.app.list(&actor, &object, &req).await?.into()))
}

/// Create a record.
#[utoipa::path(post, path = "/api/v1/{object}", tag = "records",
    params(("object" = String, Path, description = "Object api name")),
    request_body = RecordInput,
    responses((status = 201, body = RecordOut), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_record(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(object): Path<String>,
    JsonBody(input): JsonBody<Map<String, JVal>>,
) -> WebResult {
    let r = st.app.create(&c.actor, &object, &input).await?;
    Ok(with_etag(r, StatusCode::CREATED))
}

/// Get one record (`ETag` is its version).
#[utoipa::path(get, path = "/api/v1/{object}/{id}", tag = "records",
    params(("object" = String, Path, description = "Object api name"), ("id" = Uuid, Path), RevealParam),
    responses((status = 200, body = RecordOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_record(
    State(st): State<AppState>,
    c: ApiCaller,
    Path((object, id)): Path<(String, String)>,
    Query(rp): Query<RevealParam>,
) -> WebResult {
    let actor = actor_for(&c, rp.reveal)?;
    let r = st.app.get(&actor, &object, parse_id(&id)?).await?;
    Ok(with_etag(r, StatusCode::OK))
}

pub(super) fn parse_id(s: &str) -> Result<Uuid, AppError> {
    s.parse().map_err(|_| AppError::not_found("record.not_found"))
}

/// The version in `If-Match` (`"3"`, `W/"3"` or `3`).
pub(super) fn if_match(h: &HeaderMap) -> Result<Option<i64>, AppError> {
    let Some(v) = h.get(header::IF_MATCH) else { return Ok(None) };
    let s = v.to_str().map_err(|_| AppError::invalid("request.bad_if_match"))?.trim();
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse().map(Some).map_err(|_| AppError::invalid("request.bad_if_match"))
}

pub(super) fn precondition(e: AppError) -> WebError {
    if e.code == "record.version_conflict" {
        WebError(AppError::new(kehu_core::ErrorKind::Conflict, "record.precondition_failed"))
    } else {
        WebError(e)
    }
}

/// Change some fields. `If-Match` with the version read is required: a stale version gets
/// 412 and nothing is written.
#[utoipa::path(patch, path = "/api/v1/{object}/{id}", tag = "records",
    params(("object" = String, Path, description = "Object api name"), ("id" = Uuid, Path),
        ("If-Match" = String, Header, description = "The record's version, as in its ETag")),
    request_body = RecordInput,
    responses((status = 200, body = RecordOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody), (status = 428, body = ErrorBody)))]
pub async fn update_record(
    State(st): State<AppState>,
    c: ApiCaller,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<Map<String, JVal>>,
) -> WebResult {
    let version = if_match(&headers)?.ok_or_else(|| AppError::invalid("request.precondition_required"))?;
    let r = st.app.update(&c.actor, &object, parse_id(&id)?, version, &input).await.map_err(precondition)?;
    Ok(with_etag(r, StatusCode::OK))
}

/// Move a record to the recycle bin (`If-Match` optional).
#[utoipa::path(delete, path = "/api/v1/{object}/{id}", tag = "records",
    params(("object" = String, Path, description = "Object api name"), ("id" = Uuid, Path),
        ("If-Match" = Option<String>, Header, description = "The record's version")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete_record(
    State(st): State<AppState>,
    c: ApiCaller,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> WebResult {
    let version = if_match(&headers)?;
    st.app.delete(&c.actor, &object, parse_id(&id)?, version).await.map_err(precondition)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Bring a record back from the recycle bin.
#[utoipa::path(post, path = "/api/v1/{object}/{id}/restore", tag = "records",
    params(("object" = String, Path, description = "Object api name"), ("id" = Uuid, Path)),
    responses((status = 200, body = RecordOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn restore_record(
    State(st): State<AppState>,
    c: ApiCaller,
    Path((object, id)): Path<(String, String)>,
) -> WebResult {
    let r = st.app.restore(&c.actor, &object, parse_id(&id)?).await?;
    Ok(with_etag(r, StatusCode::OK))
}

/// One group key of an aggregation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupByIn {
    /// A select, multi-select, tags, boolean, user, relation, text or date field.
    pub field: String,
    /// Date fields only: `day`, `week`, `month` (default), `quarter`, `year`.
    #[serde(default)]
    pub bucket: Option<String>,
}

/// One measure of an aggregation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureIn {
    /// `count`, `count_distinct`, `sum`, `avg`, `min`, `max`, `empty_share`.
    pub op: String,
    /// The field measured (all but `count`). `sum` and `avg` take number, decimal, percent or
    /// currency fields (currency is summed per currency code); `min`/`max` dates too.
    #[serde(default)]
    pub field: Option<String>,
}

/// Group the records a list would show (same filter, same scope) and measure them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateBody {
    /// The list filter language (see `GET /api/v1/{object}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<JVal>,
    /// Up to two keys.
    #[serde(default)]
    pub group_by: Vec<GroupByIn>,
    /// Default: a count.
    #[serde(default)]
    pub measures: Vec<MeasureIn>,
    /// IANA zone for date buckets; default the caller's, else the organisation's.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `monday` (default) … `sunday`.
    #[serde(default)]
    pub week_start: Option<String>,
    /// The fiscal year's first month, 1 (default) … 12: quarters and years count from it.
    #[serde(default)]
    pub fiscal_year_start: Option<u32>,
    /// Values kept per user, relation, text or tags key (default 50, at most 500); the rest
    /// form one "other" group.
    #[serde(default)]
    pub limit: Option<u64>,
}

/// One key of a group.
#[derive(Serialize, ToSchema)]
pub struct KeyOut {
    /// The stored value (option key, id, boolean) or the date bucket's first day; null for
    /// the empty and "other" groups.
    #[schema(value_type = Object)]
    pub value: JVal,
    pub label: String,
    pub empty: bool,
    pub other: bool,
}

/// One group: keys, one value per measure (numbers; decimals as strings; currency as
/// `{"CNY": "12.50"}`), and the filter that lists exactly its records.
#[derive(Serialize, ToSchema)]
pub struct GroupOut {
    pub keys: Vec<KeyOut>,
    #[schema(value_type = Vec<Object>)]
    pub values: Vec<JVal>,
    #[schema(value_type = Option<Object>)]
    pub filter: Option<JVal>,
}

/// The groups, in key order (select options in their order, dates ascending, other keys by
/// count), and the total over every matching record.
#[derive(Serialize, ToSchema)]
pub struct AggregateOut {
    pub groups: Vec<GroupOut>,
    pub total: GroupOut,
    /// A key had more values than `limit`.
    pub capped: bool,
    pub time_zone: String,
}

fn group_out(g: kehu_app::records::aggregate::Group) -> GroupOut {
    GroupOut {
        keys: g
            .keys
            .into_iter()
            .map(|k| KeyOut { value: k.value, label: k.label, empty: k.empty, other: k.other })
            .collect(),
        values: g.values,
        filter: g.filter,
    }
}

#[utoipa::path(post, path = "/api/v1/{object}/aggregate", tag = "records",
    params(("object" = String, Path, description = "Object api name")),
    request_body = AggregateBody,
    responses((status = 200, body = AggregateOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn aggregate_records(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(object): Path<String>,
    JsonBody(b): JsonBody<AggregateBody>,
) -> WebResult<Json<AggregateOut>> {
    use kehu_app::records::aggregate as a;
    let req = a::AggregateRequest {
        filter: b.filter,
        group_by: b.group_by.into_iter().map(|g| a::GroupBy { field: g.field, bucket: g.bucket }).collect(),
        measures: b.measures.into_iter().map(|m| a::MeasureSpec { op: m.op, field: m.field }).collect(),
        time_zone: b.time_zone,
        week_start: b.week_start,
        fiscal_year_start: b.fiscal_year_start,
        limit: b.limit,
    };
    let r = st.app.aggregate(&c.actor, &object, &req, c.ctx.lang.code()).await?;
    Ok(Json(AggregateOut {
        groups: r.groups.into_iter().map(group_out).collect(),
        total: group_out(r.total),
        capped: r.capped,
        time_zone: r.time_zone,
    }))
}
