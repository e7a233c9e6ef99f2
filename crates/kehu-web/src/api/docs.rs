//! `/api/docs`: the OpenAPI document as a readable page, rendered on the server (no CDN, no
//! script), in the reader's language for its headings.

use crate::ctx::Ctx;
use crate::error::WebResult;
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use serde_json::Value;

pub struct Op {
    pub method: String,
    pub path: String,
    pub summary: String,
    pub params: Vec<(String, String, bool, String)>,
    pub body: String,
    pub responses: Vec<(String, String)>,
    pub anchor: String,
}

pub struct TagGroup {
    pub name: String,
    pub description: String,
    pub ops: Vec<Op>,
}

pub struct SchemaDoc {
    pub name: String,
    pub props: Vec<(String, String, bool)>,
}

pub struct DocsData {
    title: String,
    version: String,
    description: String,
    groups: Vec<TagGroup>,
    schemas: Vec<SchemaDoc>,
}

#[derive(Template)]
#[template(path = "api/docs.html")]
struct DocsPage {
    shell: Shell,
    d: DocsData,
}

fn ref_name(v: &Value) -> String {
    if let Some(r) = v.get("$ref").and_then(|r| r.as_str()) {
        return r.rsplit('/').next().unwrap_or("").to_string();
    }
    match v.get("type") {
        Some(Value::String(t)) if t == "array" => format!("[{}]", ref_name(&v["items"])),
        Some(Value::String(t)) => {
            let mut s = t.clone();
            if let Some(f) = v.get("format").and_then(|f| f.as_str()) {
                s.push_str(&format!(" ({f})"));
            }
            if let Some(e) = v.get("enum").and_then(|e| e.as_array()) {
                let keys: Vec<&str> = e.iter().filter_map(|x| x.as_str()).collect();
                s.push_str(&format!(": {}", keys.join(" | ")));
            }
            s
        }
        Some(Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).collect::<Vec<_>>().join(" | "),
        _ => {
            if let Some(one) = v.get("oneOf").or_else(|| v.get("allOf")).and_then(|o| o.as_array()) {
                one.iter().map(ref_name).filter(|s| !s.is_empty() && s != "null").collect::<Vec<_>>().join(" | ")
            } else {
                "object".into()
            }
        }
    }
}

/// `GET /api/docs`
pub async fn docs(State(st): State<AppState>, ctx: Ctx) -> WebResult {
    let Some((session, actor)) = ctx.session() else {
        return Ok(crate::ctx::redirect_for(&ctx, "/login"));
    };
    let doc = super::openapi::document(&st.openapi, &*st.app.schema().await?);
    let mut groups: Vec<TagGroup> = Vec::new();
    if let Some(tags) = doc["tags"].as_array() {
        for t in tags {
            groups.push(TagGroup {
                name: t["name"].as_str().unwrap_or("").into(),
                description: t["description"].as_str().unwrap_or("").into(),
                ops: vec![],
            });
        }
    }
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(item) = item.as_object() else { continue };
            for (method, op) in item {
                let tag = op["tags"][0].as_str().unwrap_or("").to_string();
                let params = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                (
                                    p["name"].as_str().unwrap_or("").to_string(),
                                    p["in"].as_str().unwrap_or("").to_string(),
                                    p["required"].as_bool().unwrap_or(false),
                                    p["description"].as_str().unwrap_or("").to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
                let responses = op["responses"]
                    .as_object()
                    .map(|rs| {
                        rs.iter()
                            .map(|(code, r)| {
                                let schema = &r["content"]["application/json"]["schema"];
                                let what = if schema.is_null() {
                                    r["description"].as_str().unwrap_or("").to_string()
                                } else {
                                    ref_name(schema)
                                };
                                (code.clone(), what)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let o = Op {
                    method: method.to_uppercase(),
                    anchor: format!("{}-{}", method, path.replace(['/', '{', '}', '.'], "-")),
                    path: path.clone(),
                    summary: op["summary"].as_str().or(op["description"].as_str()).unwrap_or("").to_string(),
                    params,
                    body: if body.is_null() { String::new() } else { ref_name(&body) },
                    responses,
                };
                match groups.iter_mut().find(|g| g.name == tag) {
                    Some(g) => g.ops.push(o),
                    None => groups.push(TagGroup { name: tag, description: String::new(), ops: vec![o] }),
                }
            }
        }
    }
    let mut schemas = Vec::new();
    if let Some(s) = doc["components"]["schemas"].as_object() {
        for (name, v) in s {
            let required: Vec<&str> =
                v["required"].as_array().map(|r| r.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
            let props = v["properties"]
                .as_object()
                .map(|p| p.iter().map(|(k, pv)| (k.clone(), ref_name(pv), required.contains(&k.as_str()))).collect())
                .unwrap_or_default();
            schemas.push(SchemaDoc { name: name.clone(), props });
        }
    }
    let title = st.i18n.get(ctx.lang, "nav-api-docs", &[]);
    let d = DocsData {
        title: title.clone(),
        version: doc["info"]["version"].as_str().unwrap_or("").into(),
        description: doc["info"]["description"].as_str().unwrap_or("").into(),
        groups: groups.into_iter().filter(|g| !g.ops.is_empty()).collect(),
        schemas,
    };
    render(&DocsPage { shell: Shell::new(&st, &ctx, session, actor, title.clone()).await.crumb(title, None), d })
}
