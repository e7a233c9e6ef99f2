//! Values as a person reads them: option labels in the user's language, names of users and
//! titles of related records, dates in the user's time zone. Names for a page of records are
//! resolved with one query for users and one per related object (never one per row), and
//! related titles only within the reader's scope.

use crate::{App, RecordView, Result};
use kehu_core::meta::{FieldDef, FieldType};
use kehu_core::perm::{Action, Actor};
use kehu_core::Uuid;
use kehu_db::records::{col, scope_expr};
use sea_query::{Alias, Query};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};

/// Names of users and titles of related records, by id.
pub type Names = HashMap<Uuid, String>;

impl App {
    /// Names for every user and related record that `fields` of `records` point to.
    pub async fn resolve_names(
        &self,
        actor: &Actor,
        fields: &[std::sync::Arc<FieldDef>],
        records: &[RecordView],
    ) -> Result<Names> {
        let schema = self.schema().await?;
        let mut users: HashSet<Uuid> = HashSet::new();
        let mut rel: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
        for f in fields {
            if !matches!(f.ftype, FieldType::User | FieldType::Relation) {
                continue;
            }
            for r in records {
                let Some(id) = r.get(&f.api_name).as_str().and_then(|s| s.parse::<Uuid>().ok()) else { continue };
                match (f.ftype, f.options.target) {
                    (FieldType::User, _) => {
                        users.insert(id);
                    }
                    (_, Some(t)) => {
                        rel.entry(t).or_default().insert(id);
                    }
                    _ => {}
                }
            }
        }
        let mut out = self.user_names(&users.into_iter().collect::<Vec<_>>()).await?;
        for (target, ids) in rel {
            let Some(tobj) = schema.object_by_id(target) else { continue };
            let Some(tf) = tobj.title_field().filter(|f| actor.can_read_field(tobj, f)) else { continue };
            let Ok(scope) = actor.check(tobj, Action::Read) else { continue };
            let ids: Vec<Uuid> = ids.into_iter().collect();
            for chunk in ids.chunks(500) {
                let mut q = Query::select();
                q.columns([Alias::new("id"), Alias::new(&tf.column)])
                    .from(Alias::new(&tobj.table))
                    .and_where(col("id").is_in(chunk.iter().copied()))
                    .and_where(col("deleted_at").is_null());
                if let Some(s) = scope_expr(&scope, "owner_id") {
                    q.and_where(s);
                }
                for r in self.db.all(&q).await? {
                    if let (Some(id), Some(t)) = (r.uuid(0), r.string(1)) {
                        let t = if crate::records::is_contact(tf) && !actor.sees_unmasked() {
                            crate::records::mask(tf, &t)
                        } else {
                            t
                        };
                        out.insert(id, t);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// How to show values: the language ("zh-CN" / "en"), resolved names, the time zone.
pub struct Display<'a> {
    pub lang: &'a str,
    pub names: &'a Names,
    pub tz: chrono_tz::Tz,
}

impl Display<'_> {
    /// The label of an option key (the key itself when the option is gone).
    pub fn choice(&self, f: &FieldDef, k: &str) -> String {
        f.choice(k).map(|c| c.label.get(self.lang).to_string()).unwrap_or_else(|| k.to_string())
    }

    /// One value as text.
    pub fn text(&self, f: &FieldDef, v: &Json) -> String {
        match (f.ftype, v) {
            (_, Json::Null) => String::new(),
            (FieldType::Select, Json::String(k)) => self.choice(f, k),
            (FieldType::MultiSelect, Json::Array(a)) => {
                a.iter().filter_map(Json::as_str).map(|k| self.choice(f, k)).collect::<Vec<_>>().join("、")
            }
            (FieldType::Tags, Json::Array(a)) => a.iter().filter_map(Json::as_str).collect::<Vec<_>>().join("、"),
            (FieldType::Relation | FieldType::User, Json::String(s)) => {
                s.parse::<Uuid>().ok().and_then(|id| self.names.get(&id).cloned()).unwrap_or_else(|| "—".into())
            }
            (FieldType::Boolean, Json::Bool(b)) => if *b { "✓" } else { "✗" }.to_string(),
            (FieldType::Currency, Json::Object(m)) => format!(
                "{} {}",
                m.get("currency").and_then(Json::as_str).unwrap_or(""),
                m.get("amount").and_then(Json::as_str).unwrap_or("")
            ),
            (FieldType::Percent, Json::String(s)) => format!("{s}%"),
            (FieldType::DateTime, Json::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&self.tz).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|_| s.clone()),
            (_, Json::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        }
    }
}
