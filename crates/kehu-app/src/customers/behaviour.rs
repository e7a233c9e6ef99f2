//! The customers module's behaviours.

use crate::records::behaviour::Behaviour;
use kehu_core::meta::ObjectDef;
use serde_json::{Map, Value as Json};
use std::borrow::Cow;
use std::sync::Arc;

/// A Chinese name is one field; a Western one may come as first and last name. When a new
/// contact's `name` is missing or blank and it has a first or last name, the name is
/// "First Last".
pub(crate) struct FullName;

impl Behaviour for FullName {
    fn derive(&self, obj: &ObjectDef, input: &mut Cow<'_, Map<String, Json>>, creating: bool) {
        let has = |k: &str| input.get(k).and_then(Json::as_str).is_some_and(|s| !s.trim().is_empty());
        if !creating || has("name") || obj.field("first_name").is_none() || obj.field("last_name").is_none() {
            return;
        }
        let part = |k: &str| input.get(k).and_then(Json::as_str).map(str::trim).unwrap_or("");
        let full =
            [part("first_name"), part("last_name")].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ");
        if !full.is_empty() {
            input.to_mut().insert("name".into(), Json::String(full));
        }
    }
}

/// The module's behaviours, by object.
pub(crate) fn behaviours() -> Vec<(&'static str, Arc<dyn Behaviour>)> {
    vec![("contact", Arc::new(FullName))]
}
