//! The OpenAPI 3.1 document: the static part comes from the handlers' `#[utoipa::path]`
//! annotations (collected by `OpenApiRouter`, so a documented route is a routed route); the
//! dynamic part is generated per request from object metadata — every object, custom ones
//! included, gets typed paths (`/api/v1/contact`, …) and schemas (`contact.fields`,
//! `contact.record`, `contact.page`).

use crate::AppState;
use axum::extract::State;
use axum::response::Json;
use kehu_core::meta::{FieldDef, FieldType, ObjectDef, Schema};
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kehu CRM API",
        description = "Records of every object (standard and custom), metadata, and operations. \
            Authenticate with `Authorization: Bearer <API token>` (create tokens under Account → API tokens \
            or with `kehu token create`). Errors are `{\"error\": {\"code\", \"message\", \"fields\"}}` \
            with the message in the caller's language. Phone numbers and e-mails are masked unless \
            `reveal=true` is asked with the permission (audited)."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "records", description = "Records of any object: `{object}` is the object's api name."),
        (name = "metadata", description = "Objects and fields."),
        (name = "webhooks", description = "Signed webhooks (Standard Webhooks): endpoints, secrets, delivery log and replays. Administrators only."),
        (name = "ops", description = "Health, readiness and metrics.")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("kehu_…").build()),
        );
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The JSON schema of one field's value.
fn field_schema(f: &FieldDef) -> Value {
    let mut s = match f.ftype {
        FieldType::Text | FieldType::LongText | FieldType::Phone => json!({"type": "string"}),
        FieldType::Email => json!({"type": "string", "format": "email"}),
        FieldType::Url => json!({"type": "string", "format": "uri"}),
        FieldType::Integer => json!({"type": "integer", "format": "int64"}),
        FieldType::Decimal | FieldType::Percent => {
            json!({"type": "string", "description": format!("decimal with up to {} digits after the point", f.scale())})
        }
        FieldType::Currency => json!({
            "type": "object",
            "description": "money: input `\"CNY 12.50\"`, a number in the field's currency, or this object",
            "properties": {"amount": {"type": "string"}, "currency": {"type": "string"}, "minor": {"type": "integer"}}
        }),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::DateTime => json!({"type": "string", "format": "date-time"}),
        FieldType::Select => {
            json!({"type": "string", "enum": f.options.choices.iter().map(|c| c.key.clone()).collect::<Vec<_>>()})
        }
        FieldType::MultiSelect => json!({"type": "array", "items": {
            "type": "string", "enum": f.options.choices.iter().map(|c| c.key.clone()).collect::<Vec<_>>()}}),
        FieldType::Tags => json!({"type": "array", "items": {"type": "string"}}),
        FieldType::Relation | FieldType::User => json!({"type": "string", "format": "uuid"}),
    };
    if let Some(m) = s.as_object_mut() {
        let title = format!("{} / {}", f.label.en, f.label.zh);
        m.insert("title".into(), json!(title));
        if f.ftype.is_textual() && !matches!(f.ftype, FieldType::Email | FieldType::Url) {
            m.insert("maxLength".into(), json!(f.max_length()));
        }
        if f.readonly {
            m.insert("readOnly".into(), json!(true));
        }
        if f.ftype == FieldType::Relation {
            m.insert("description".into(), json!("id of the related record"));
        }
    }
    s
}

fn object_schemas(o: &ObjectDef) -> (Value, Value, Value) {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in o.active() {
        props.insert(f.api_name.clone(), field_schema(f));
        if f.required {
            required.push(f.api_name.clone());
        }
    }
    let fields = json!({
        "type": "object",
        "title": format!("{} / {}", o.label.en, o.label.zh),
        "properties": props,
        "required": required,
        "additionalProperties": false
    });
    let api = &o.api_name;
    let record = json!({
        "type": "object",
        "required": ["id", "object", "version", "fields"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "object": {"type": "string", "const": api},
            "version": {"type": "integer", "format": "int64"},
            "deleted_at": {"type": "string", "format": "date-time"},
            "fields": {"$ref": format!("#/components/schemas/{api}.fields")}
        }
    });
    let page = json!({
        "type": "object",
        "required": ["data", "total_is_capped"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": format!("#/components/schemas/{api}.record")}},
            "next_cursor": {"type": ["string", "null"]},
            "total": {"type": "integer", "minimum": 0},
            "total_is_capped": {"type": "boolean"}
        }
    });
    (fields, record, page)
}

/// Replace generic schema references with an object's typed ones, everywhere in `v`.
fn retype(v: &mut Value, api: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                let new = match r.as_str() {
                    "#/components/schemas/RecordInput" => Some(format!("#/components/schemas/{api}.fields")),
                    "#/components/schemas/RecordOut" => Some(format!("#/components/schemas/{api}.record")),
                    "#/components/schemas/PageOut" => Some(format!("#/components/schemas/{api}.page")),
                    _ => None,
                };
                if let Some(n) = new {
                    *r = n;
                }
            }
            for x in m.values_mut() {
                retype(x, api);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| retype(x, api)),
        _ => {}
    }
}

/// The whole document for the current metadata.
pub fn document(base: &Value, schema: &Schema) -> Value {
    let mut doc = base.clone();
    let generic: Vec<(String, Value)> = doc["paths"]
        .as_object()
        .map(|p| p.iter().filter(|(k, _)| k.contains("{object}")).map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut objects: Vec<&ObjectDef> = schema.objects().iter().map(|o| &**o).collect();
    objects.sort_by(|a, b| a.api_name.cmp(&b.api_name));
    for o in objects {
        let api = &o.api_name;
        let (fields, record, page) = object_schemas(o);
        let schemas = &mut doc["components"]["schemas"];
        schemas[format!("{api}.fields")] = fields;
        schemas[format!("{api}.record")] = record;
        schemas[format!("{api}.page")] = page;
        for (path, item) in &generic {
            let mut item = item.clone();
            if let Some(ops) = item.as_object_mut() {
                for (_, op) in ops.iter_mut() {
                    if let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) {
                        params.retain(|p| p.get("name").and_then(|n| n.as_str()) != Some("object"));
                    }
                    if let Some(id) = op.get("operationId").and_then(|i| i.as_str()).map(str::to_owned) {
                        op["operationId"] = json!(format!("{id}_{api}"));
                    }
                    op["tags"] = json!([format!("{} ({})", o.plural.en, api)]);
                }
            }
            retype(&mut item, api);
            doc["paths"][path.replace("{object}", api)] = item;
        }
    }
    doc
}

/// `GET /api/openapi.json` — for signed-in users and API tokens (object and field names are
/// business information, not for anonymous visitors).
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops",
    responses((status = 200, description = "This document"), (status = 401, description = "Not signed in")))]
pub async fn openapi_json(
    State(st): State<AppState>,
    _caller: crate::ctx::ApiCaller,
) -> crate::error::WebResult<Json<Value>> {
    let schema = st.app.schema().await?;
    Ok(Json(document(&st.openapi, &schema)))
}
