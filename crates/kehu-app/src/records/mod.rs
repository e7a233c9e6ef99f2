//! RecordService — the one path by which any record of any object is created, read, changed,
//! deleted or restored. Each write checks the actor's permissions before touching data, then
//! in one transaction writes the row, the audit entry, the field history, the outbox event
//! and the search document. Reads apply the actor's record scope and field permissions.

pub mod aggregate;
pub mod behaviour;
pub mod bin;
pub mod history;
pub(crate) mod input;
mod merge;
pub mod pick;
mod read;
pub mod reindex;
pub(crate) mod write;

pub use merge::MergeRequest;
pub use read::{Count, ListRequest, MatchedField, Page, SearchResult, MAX_LIMIT};

use kehu_core::meta::{FieldDef, FieldType, ObjectDef};
use kehu_core::perm::Actor;
use kehu_core::value::{to_json, Value};
use kehu_core::{text, Uuid};
use kehu_db::records::Record;
use kehu_db::search::SearchDoc;
use serde::Serialize;
use serde_json::{Map, Value as Json};

/// A record as an actor sees it: only the fields they may read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordView {
    pub id: Uuid,
    pub object: String,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    pub fields: Map<String, Json>,
}

impl RecordView {
    pub fn get(&self, api: &str) -> &Json {
        self.fields.get(api).unwrap_or(&Json::Null)
    }
    /// The record's name (its object's title field), empty when unset or not readable.
    pub fn title(&self, obj: &ObjectDef) -> &str {
        obj.title_field().and_then(|f| self.get(&f.api_name).as_str()).unwrap_or("")
    }
}

/// A keyset cursor `<micros>_<id>` (time, then id as the tiebreak); a malformed one is an
/// error on `field`.
pub(crate) fn parse_time_cursor(c: &str, field: &str) -> crate::Result<(i64, Uuid)> {
    let bad = || kehu_core::AppError::field(field, "query.invalid_cursor");
    let (at, id) = c.split_once('_').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.parse().map_err(|_| bad())?))
}

pub(crate) fn view(actor: &Actor, obj: &ObjectDef, r: &Record) -> RecordView {
    let mut fields = Map::new();
    let unmasked = actor.sees_unmasked();
    for (f, v) in &r.values {
        if actor.can_read_field(obj, f) {
            let json = match v {
                Value::Text(s) if !unmasked && is_contact(f) => Json::String(mask(f, s)),
                _ => to_json(f, v),
            };
            fields.insert(f.api_name.clone(), json);
        }
    }
    RecordView {
        id: r.id,
        object: obj.api_name.clone(),
        version: r.version,
        deleted_at: r.deleted_at.map(kehu_core::value::format_datetime),
        fields,
    }
}

/// Phone and e-mail fields are masked unless the actor reveals them.
pub(crate) fn is_contact(f: &FieldDef) -> bool {
    matches!(f.ftype, FieldType::Phone | FieldType::Email)
}

/// The masked form of a phone or e-mail value.
pub(crate) fn mask(f: &FieldDef, s: &str) -> String {
    match f.ftype {
        FieldType::Phone => kehu_core::perm::mask_phone(s),
        FieldType::Email => kehu_core::perm::mask_email(s),
        _ => s.to_string(),
    }
}

/// The search document of a record, from the fields `include` lets through.
pub(crate) fn search_doc(
    obj: &ObjectDef,
    id: Uuid,
    values: &[(std::sync::Arc<FieldDef>, Value)],
    include: impl Fn(&FieldDef) -> bool,
) -> SearchDoc {
    let title_field = obj.title_field().map(|f| f.id);
    let mut words = String::new();
    let mut ident = String::new();
    let mut title = None;
    let mut owner = None;
    for (f, v) in values {
        if f.api_name == "owner" {
            if let Value::Ref(u) = v {
                owner = Some(*u);
            }
            continue;
        }
        let Value::Text(s) = v else { continue };
        if Some(f.id) == title_field {
            title = Some(s.clone());
        }
        if !(f.searchable || Some(f.id) == title_field) || !include(f) {
            continue;
        }
        index_value(f, s, Some(f.id) == title_field, &mut words);
        if matches!(f.ftype, FieldType::Phone | FieldType::Email) {
            push_ident(&mut ident, s);
        }
    }
    SearchDoc { record_id: id, object_id: obj.id, owner_id: owner, title, words, ident }
}

/// Append the index tokens of one field's value: a phone's digits, other text's words, and
/// for the record's name (`title`) its pinyin too. Search explains a hit with the same tokens.
pub(crate) fn index_value(f: &FieldDef, s: &str, title: bool, words: &mut String) {
    match f.ftype {
        FieldType::Phone => text::index_phone(s, words),
        _ => text::index_text(s, words),
    }
    if title {
        text::index_pinyin(s, words);
    }
}

/// E-mails and phones for substring search, lower-cased (SQLite matches them with GLOB).
fn push_ident(ident: &mut String, s: &str) {
    if !ident.is_empty() {
        ident.push(' ');
    }
    ident.extend(s.chars().flat_map(char::to_lowercase));
}
