//! Turning caller input into typed values: unknown, read-only and forbidden fields, per-type
//! validation, required fields and defaults; then the checks that need the database
//! (relations point at visible records, users exist, owners lie within the actor's scope).

use crate::{App, Result};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef, Schema};
use kehu_core::perm::{Action, Actor, ScopeFilter};
use kehu_core::value::{parse_input, Value};
use kehu_core::{AppError, FieldError, Uuid};
use kehu_db::records::{col, scope_expr};
use kehu_db::Tx;
use sea_query::{Alias, Query};
use serde_json::{Map, Value as Json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(crate) type Values = Vec<(Arc<FieldDef>, Value)>;

/// Largest number of members an input object may have.
const MAX_INPUT_FIELDS: usize = 500;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Create,
    Update,
}

/// Parse `input` for `obj`. Field errors are collected (prefixed with `prefix`, e.g. a row
/// number); fields the actor may not write make the whole request forbidden.
pub(crate) fn parse_fields(
    actor: &Actor,
    obj: &ObjectDef,
    input: &Map<String, Json>,
    mode: Mode,
    prefix: &str,
    errors: &mut Vec<FieldError>,
    denied: &mut Vec<FieldError>,
) -> Values {
    let name = |f: &str| format!("{prefix}{f}");
    let mut out: Values = Vec::with_capacity(input.len());
    if input.len() > MAX_INPUT_FIELDS {
        errors.push(FieldError::new(name("*"), "record.too_many_fields"));
        return out;
    }
    for (k, v) in input {
        let Some(f) = obj.field(k) else {
            errors.push(FieldError::new(name(k), "field.unknown"));
            continue;
        };
        if f.readonly {
            errors.push(FieldError::new(name(k), "field.readonly"));
            continue;
        }
        if !actor.can_write_field(obj, f) {
            denied.push(FieldError::new(name(k), "permission.field_denied"));
            continue;
        }
        match parse_input(f, v) {
            Ok(Value::Null) if f.required => errors.push(FieldError::new(name(k), "field.required")),
            Ok(Value::Text(html)) if f.options.rich => match crate::rich::sanitize(&html) {
                Some(clean) => out.push((f.clone(), Value::Text(clean))),
                None if f.required => errors.push(FieldError::new(name(k), "field.required")),
                None => out.push((f.clone(), Value::Null)),
            },
            Ok(val) => out.push((f.clone(), val)),
            Err(code) => errors.push(FieldError::new(name(k), code)),
        }
    }
    if mode == Mode::Create {
        for f in obj.data_fields() {
            if out.iter().any(|(g, _)| g.id == f.id) || errors.iter().any(|e| e.field == name(&f.api_name)) {
                continue;
            }
            let val = f.default.as_ref().and_then(|d| parse_input(f, d).ok()).unwrap_or(Value::Null);
            if val.is_null() && f.required {
                errors.push(FieldError::new(name(&f.api_name), "field.required"));
            } else if !val.is_null() {
                out.push((f.clone(), val));
            }
        }
    }
    out
}

/// Raise collected errors: forbidden fields first, then invalid ones.
pub(crate) fn raise(errors: Vec<FieldError>, denied: Vec<FieldError>) -> Result<()> {
    if !denied.is_empty() {
        let mut e = AppError::forbidden("permission.field_denied");
        e.fields = denied;
        return Err(e);
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    Ok(())
}

/// Check references in `rows` (each a set of values, named by `prefix(i)`): relation targets
/// must exist, not be deleted and be readable by the actor; users must exist and be active;
/// owners must lie within `scope` (the actor's scope for the action being done).
pub(crate) async fn check_refs(
    app: &App,
    tx: &mut Tx,
    actor: &Actor,
    schema: &Schema,
    scope: &ScopeFilter,
    rows: &[(String, &Values)],
) -> Result<()> {
    // Collect ids per relation target object and all user ids.
    let mut rel: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    let mut users: HashSet<Uuid> = HashSet::new();
    for (_, vals) in rows {
        for (f, v) in vals.iter() {
            if let Value::Ref(id) = v {
                match f.ftype {
                    FieldType::Relation => {
                        if let Some(t) = f.options.target {
                            rel.entry(t).or_default().insert(*id);
                        }
                    }
                    FieldType::User => {
                        users.insert(*id);
                    }
                    _ => {}
                }
            }
        }
    }
    let mut visible: HashSet<Uuid> = HashSet::new();
    for (target, ids) in &rel {
        let Some(tobj) = schema.object_by_id(*target) else {
            continue;
        };
        let Ok(tscope) = actor.check(tobj, Action::Read) else {
            continue;
        };
        let ids: Vec<Uuid> = ids.iter().copied().collect();
        for chunk in ids.chunks(500) {
            let mut q = Query::select();
            q.column(Alias::new("id"))
                .from(Alias::new(&tobj.table))
                .and_where(col("id").is_in(chunk.iter().copied()))
                .and_where(col("deleted_at").is_null());
            if let Some(s) = scope_expr(&tscope, "owner_id") {
                q.and_where(s);
            }
            visible.extend(tx.all(&q).await?.iter().filter_map(|r| r.uuid(0)));
        }
    }
    let user_ids: Vec<Uuid> = users.into_iter().collect();
    let teams = app.user_teams(tx, &user_ids).await?;
    let mut errors = Vec::new();
    let mut denied = Vec::new();
    for (prefix, vals) in rows {
        for (f, v) in vals.iter() {
            let Value::Ref(id) = v else { continue };
            let name = format!("{prefix}{}", f.api_name);
            match f.ftype {
                FieldType::Relation if !visible.contains(id) => {
                    errors.push(FieldError::new(name, "field.invalid_reference"))
                }
                FieldType::User if !teams.contains_key(id) => {
                    errors.push(FieldError::new(name, "field.invalid_reference"))
                }
                FieldType::User if f.api_name == "owner" && !actor.owner_in_scope(scope, Some(*id), teams[id]) => {
                    denied.push(FieldError::new(name, "permission.owner_out_of_scope"))
                }
                _ => {}
            }
        }
    }
    raise(errors, denied)
}
