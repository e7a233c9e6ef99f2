//! The metadata model: objects (one real table each) and their fields (one real column each,
//! two for currency). Table and column names come from immutable ids, never from labels or api
//! names, so renaming is metadata only.

use crate::error::{AppError, FieldError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// A label in both shipped languages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub en: String,
    #[serde(rename = "zh-CN", alias = "zh")]
    pub zh: String,
}

impl Label {
    pub fn new(en: impl Into<String>, zh: impl Into<String>) -> Self {
        Self { en: en.into(), zh: zh.into() }
    }
    /// The label in `lang` ("zh-CN" or anything else for English).
    pub fn get(&self, lang: &str) -> &str {
        if lang.starts_with("zh") && !self.zh.is_empty() {
            &self.zh
        } else {
            &self.en
        }
    }
    fn validate(&self, field: &str, errs: &mut Vec<FieldError>) {
        for s in [&self.en, &self.zh] {
            let n = s.chars().count();
            if n == 0 || s.trim().is_empty() {
                errs.push(FieldError::new(field, "meta.label_required"));
                return;
            }
            if n > 80 || s.chars().any(char::is_control) {
                errs.push(FieldError::new(field, "meta.label_invalid"));
                return;
            }
        }
    }
}

/// Every type a field can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    Decimal,
    /// Integer minor units plus an ISO 4217 code (two columns).
    Currency,
    Percent,
    Boolean,
    Date,
    #[serde(rename = "datetime")]
    DateTime,
    Email,
    Phone,
    Url,
    Select,
    MultiSelect,
    /// Many-to-one link to a record of another object (its reverse list is derived).
    Relation,
    /// A user of Kehu (the owner field is one).
    User,
    Tags,
}

impl FieldType {
    pub const ALL: [FieldType; 17] = [
        FieldType::Text,
        FieldType::LongText,
        FieldType::Integer,
        FieldType::Decimal,
        FieldType::Currency,
        FieldType::Percent,
        FieldType::Boolean,
        FieldType::Date,
        FieldType::DateTime,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
        FieldType::Select,
        FieldType::MultiSelect,
        FieldType::Relation,
        FieldType::User,
        FieldType::Tags,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::LongText => "long_text",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Select => "select",
            FieldType::MultiSelect => "multi_select",
            FieldType::Relation => "relation",
            FieldType::User => "user",
            FieldType::Tags => "tags",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The physical storage class of the (first) column.
    pub fn storage(self) -> Storage {
        match self {
            FieldType::Integer
            | FieldType::Decimal
            | FieldType::Percent
            | FieldType::Currency
            | FieldType::DateTime => Storage::BigInt,
            FieldType::Boolean => Storage::Bool,
            FieldType::Relation | FieldType::User => Storage::Uuid,
            _ => Storage::Text,
        }
    }

    /// Whether values of this type feed the full-text index by default.
    pub fn searchable_by_default(self) -> bool {
        matches!(self, FieldType::Text | FieldType::Email | FieldType::Phone)
    }

    /// Whether values may be compared with <, >, between.
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            FieldType::Integer
                | FieldType::Decimal
                | FieldType::Currency
                | FieldType::Percent
                | FieldType::Date
                | FieldType::DateTime
        )
    }

    pub fn is_textual(self) -> bool {
        matches!(self, FieldType::Text | FieldType::LongText | FieldType::Email | FieldType::Phone | FieldType::Url)
    }
}

/// How a column is stored; the same on SQLite and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Text,
    BigInt,
    Bool,
    Uuid,
}

/// One option of a single or multi select.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub key: String,
    pub label: Label,
    #[serde(default = "default_color")]
    pub color: String,
    /// An archived option keeps the values records hold but is no longer offered for input.
    #[serde(default, skip_serializing_if = "is_false")]
    pub archived: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_color() -> String {
    "gray".into()
}

/// The colours a choice may take (named, so themes can restyle them).
pub const COLORS: [&str; 10] = ["gray", "red", "orange", "yellow", "green", "teal", "blue", "indigo", "purple", "pink"];

/// Type-specific settings of a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldOptions {
    /// Options of a select or multi select.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    /// The object a relation points to (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Uuid>,
    /// Digits after the decimal point for decimal and percent (default 4 and 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
    /// Maximum length in characters for text types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Default currency of a currency field (ISO 4217).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// A long text that holds sanitised rich text (HTML from an allow-list) instead of plain text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rich: bool,
}

/// A field of an object.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDef {
    pub id: Uuid,
    pub object_id: Uuid,
    pub api_name: String,
    /// Physical column (immutable). Currency adds `<column>_cur`.
    #[serde(skip)]
    pub column: String,
    #[serde(rename = "type")]
    pub ftype: FieldType,
    pub label: Label,
    pub help: Option<Label>,
    pub required: bool,
    pub unique: bool,
    pub filterable: bool,
    pub searchable: bool,
    pub default: Option<serde_json::Value>,
    pub options: FieldOptions,
    pub position: i32,
    pub archived: bool,
    /// Shown in the create form (required fields always are).
    pub in_form: bool,
    /// Shown as a column of the list by default.
    pub in_list: bool,
    /// Built-in columns every object has (owner, created_at, …); not stored in meta_fields.
    pub builtin: bool,
    /// Built-in fields other than the owner cannot be written.
    pub readonly: bool,
}

impl FieldDef {
    /// Decimal places of decimal/percent values.
    pub fn scale(&self) -> u8 {
        self.options.scale.unwrap_or(match self.ftype {
            FieldType::Percent => 2,
            _ => 4,
        })
    }
    pub fn max_length(&self) -> usize {
        self.options.max_length.map(|n| n as usize).unwrap_or(match self.ftype {
            FieldType::LongText => 100_000,
            FieldType::Url => 2048,
            FieldType::Email => 254,
            _ => 255,
        })
    }
    /// The second column of a currency field.
    pub fn currency_column(&self) -> String {
        format!("{}_cur", self.column)
    }
    pub fn choice(&self, key: &str) -> Option<&Choice> {
        self.options.choices.iter().find(|c| c.key == key)
    }
}

/// An object: a kind of record with its own table.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectDef {
    pub id: Uuid,
    pub api_name: String,
    #[serde(skip)]
    pub table: String,
    pub label: Label,
    pub plural: Label,
    pub icon: String,
    pub is_system: bool,
    /// A deleted custom object: hidden everywhere, its table and records kept, restorable.
    pub archived: bool,
    /// All fields, built-in first, then by position; archived ones included (see `active`).
    pub fields: Vec<Arc<FieldDef>>,
    /// How pages show it.
    #[serde(default)]
    pub ui: ObjectUi,
}

/// An object's UI settings, as metadata: pages read these instead of naming fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectUi {
    /// The single select that is the record's status: list chips, the board's default
    /// columns, a header chip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_field: Option<String>,
    /// The tags field offered as list chips and bulk tag actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_field: Option<String>,
    /// Select, multi-select and tags fields shown as chips in the record header.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_chips: Vec<String>,
    /// Fields a board card shows under the title (at most three).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub card_fields: Vec<String>,
    /// The navigation group the object is listed under (e.g. `customers`, `sales`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nav_group: Option<String>,
}

/// Names of the built-in fields every object has, and their columns.
pub const BUILTIN_FIELDS: [(&str, &str, FieldType, &str, &str); 5] = [
    ("owner", "owner_id", FieldType::User, "Owner", "负责人"),
    ("created_at", "created_at", FieldType::DateTime, "Created at", "创建时间"),
    ("created_by", "created_by", FieldType::User, "Created by", "创建人"),
    ("updated_at", "updated_at", FieldType::DateTime, "Updated at", "更新时间"),
    ("updated_by", "updated_by", FieldType::User, "Updated by", "更新人"),
];

/// Api names nobody may give a custom field (they name columns or envelope keys).
pub const RESERVED_NAMES: [&str; 12] = [
    "id",
    "owner",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "version",
    "deleted_at",
    "deleted_by",
    "object",
    "fields",
    "cursor",
];

impl ObjectDef {
    /// The built-in field definitions for an object (ids derived from the object id, stable).
    pub fn builtin_fields(object_id: Uuid) -> Vec<Arc<FieldDef>> {
        BUILTIN_FIELDS
            .iter()
            .enumerate()
            .map(|(i, (api, col, t, en, zh))| {
                let mut b = *object_id.as_bytes();
                b[15] ^= (i as u8) + 1;
                b[14] ^= 0xB1;
                Arc::new(FieldDef {
                    id: Uuid::from_bytes(b),
                    object_id,
                    api_name: (*api).into(),
                    column: (*col).into(),
                    ftype: *t,
                    label: Label::new(*en, *zh),
                    help: None,
                    required: false,
                    unique: false,
                    filterable: true,
                    searchable: false,
                    default: None,
                    options: FieldOptions::default(),
                    position: -10 + i as i32,
                    archived: false,
                    in_form: false,
                    in_list: *api == "owner",
                    builtin: true,
                    readonly: *api != "owner",
                })
            })
            .collect()
    }

    /// A field by api name, archived ones excluded.
    pub fn field(&self, api: &str) -> Option<&Arc<FieldDef>> {
        self.fields.iter().find(|f| f.api_name == api && !f.archived)
    }
    /// A field by api name, archived ones included.
    pub fn field_any(&self, api: &str) -> Option<&Arc<FieldDef>> {
        self.fields.iter().find(|f| f.api_name == api)
    }
    /// Fields that are not archived.
    pub fn active(&self) -> impl Iterator<Item = &Arc<FieldDef>> {
        self.fields.iter().filter(|f| !f.archived)
    }
    /// Fields a user stores values in (not built-in, not archived).
    pub fn data_fields(&self) -> impl Iterator<Item = &Arc<FieldDef>> {
        self.fields.iter().filter(|f| !f.archived && !f.builtin)
    }
    /// The field that names a record in lists, search results and relation pickers.
    pub fn title_field(&self) -> Option<&Arc<FieldDef>> {
        self.field("name")
            .filter(|f| f.ftype == FieldType::Text)
            .or_else(|| self.data_fields().find(|f| f.ftype == FieldType::Text))
    }
}

/// All objects and fields, as loaded at one schema epoch.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub epoch: i64,
    /// Objects in use (archived ones left out: they vanish from navigation, API and search).
    objects: Vec<Arc<ObjectDef>>,
    /// Deleted (archived) custom objects, for the settings page that restores them.
    archived: Vec<Arc<ObjectDef>>,
    by_api: HashMap<String, usize>,
    by_id: HashMap<Uuid, usize>,
}

impl Schema {
    pub fn new(epoch: i64, mut objects: Vec<ObjectDef>) -> Self {
        for o in &mut objects {
            o.fields.sort_by_key(|f| (!f.builtin, f.position));
        }
        let (archived, objects): (Vec<ObjectDef>, Vec<ObjectDef>) = objects.into_iter().partition(|o| o.archived);
        let objects: Vec<Arc<ObjectDef>> = objects.into_iter().map(Arc::new).collect();
        let archived: Vec<Arc<ObjectDef>> = archived.into_iter().map(Arc::new).collect();
        let by_api = objects.iter().enumerate().map(|(i, o)| (o.api_name.clone(), i)).collect();
        let by_id = objects.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
        Self { epoch, objects, archived, by_api, by_id }
    }
    pub fn objects(&self) -> &[Arc<ObjectDef>] {
        &self.objects
    }
    /// Deleted (archived) custom objects.
    pub fn archived_objects(&self) -> &[Arc<ObjectDef>] {
        &self.archived
    }
    /// An object by api name, archived ones included.
    pub fn object_any(&self, api: &str) -> Option<&Arc<ObjectDef>> {
        self.object(api).ok().or_else(|| self.archived.iter().find(|o| o.api_name == api))
    }
    pub fn object(&self, api: &str) -> Result<&Arc<ObjectDef>> {
        self.by_api.get(api).map(|&i| &self.objects[i]).ok_or_else(|| AppError::not_found("object.not_found"))
    }
    pub fn object_by_id(&self, id: Uuid) -> Option<&Arc<ObjectDef>> {
        self.by_id.get(&id).map(|&i| &self.objects[i])
    }
    /// Relation fields of other objects that point at `object_id` (the reverse lists).
    pub fn reverse_relations(&self, object_id: Uuid) -> Vec<(&Arc<ObjectDef>, &Arc<FieldDef>)> {
        let mut out = Vec::new();
        for o in &self.objects {
            for f in o.active() {
                if f.ftype == FieldType::Relation && f.options.target == Some(object_id) {
                    out.push((o, f));
                }
            }
        }
        out
    }
}

/// Check an api name: lower-case ASCII letter first, then letters, digits or `_`, 1–40 long.
pub fn validate_api_name(name: &str, field: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.as_bytes()[0].is_ascii_lowercase()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(AppError::field(field, "meta.invalid_api_name"));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(AppError::field(field, "meta.reserved_api_name"));
    }
    Ok(())
}

/// Validate labels of a new or edited object or field.
pub fn validate_labels(pairs: &[(&str, &Label)]) -> Result<()> {
    let mut errs = Vec::new();
    for (name, label) in pairs {
        label.validate(name, &mut errs);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::fields(errs))
    }
}

/// Validate the type-specific options of a field definition.
pub fn validate_options(ftype: FieldType, opts: &FieldOptions) -> Result<()> {
    let bad = |code: &str| Err(AppError::field("options", code.to_string()));
    match ftype {
        FieldType::Select | FieldType::MultiSelect => {
            if opts.choices.is_empty() || opts.choices.len() > 500 {
                return bad("meta.choices_required");
            }
            let mut seen = std::collections::HashSet::new();
            for c in &opts.choices {
                let key_ok = !c.key.is_empty()
                    && c.key.chars().count() <= 64
                    && !c.key.chars().any(|ch| ch.is_control() || ch == '"' || ch == '\\');
                if !key_ok || !seen.insert(c.key.as_str()) {
                    return bad("meta.invalid_choice");
                }
                if !COLORS.contains(&c.color.as_str()) {
                    return bad("meta.invalid_color");
                }
                validate_labels(&[("options", &c.label)])?;
            }
        }
        FieldType::Relation if opts.target.is_none() => return bad("meta.relation_target_required"),
        FieldType::Decimal | FieldType::Percent if opts.scale.is_some_and(|s| s > 8) => {
            return bad("meta.invalid_scale")
        }
        FieldType::Currency => {
            if let Some(c) = &opts.currency {
                if !crate::value::is_currency_code(c) {
                    return bad("meta.invalid_currency");
                }
            }
        }
        FieldType::Text | FieldType::LongText if opts.max_length.is_some_and(|n| n == 0 || n > 1_000_000) => {
            return bad("meta.invalid_max_length")
        }
        _ => {}
    }
    Ok(())
}
