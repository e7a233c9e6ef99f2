//! One row's decision, given the batch's lookups: find the record by the key (within the
//! update scope), turn the cells into the engine's input (relations by name or external id,
//! owners by name or e-mail, lists split on the usual separators), parse it with the engine's
//! own field parser, check unique values, and classify.

use super::mapping::ImportMode;
use super::plan::{clean_cell, split_list, storage_key, Col, Outcome, Plan, RowIssue, Session};
use crate::records::input::{parse_fields, Mode, Values};
use kehu_core::meta::FieldType;
use kehu_core::value::{parse_input, Value};
use kehu_core::Uuid;
use kehu_db::records::Record;
use serde_json::{Map, Value as Json};
use std::collections::{HashMap, HashSet};

impl Plan {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan_row(
        &self,
        session: &mut Session,
        holders: &HashMap<(Uuid, String), Vec<Uuid>>,
        matched: &HashMap<Uuid, Record>,
        related: &HashMap<(Uuid, String), Vec<(Uuid, bool)>>,
        row: u64,
        cells: Vec<String>,
        dup: Option<RowIssue>,
    ) -> Outcome {
        let obj = &self.obj;
        let mut issues: Vec<RowIssue> = Vec::new();
        let issue = |column: String, code: &str| RowIssue { row, column, code: code.to_string(), first_row: None };
        if let Some(d) = dup {
            issues.push(d);
        }
        if cells.len() > self.headers.len() && cells[self.headers.len()..].iter().any(|c| !c.trim().is_empty()) {
            issues.push(issue(format!("#{}", self.headers.len() + 1), "import.extra_cells"));
        }
        // Find the existing record by the key.
        let mut target: Option<&Record> = None;
        let mut key_found = false;
        if let Some((i, kf)) = &self.key {
            let raw = cells.get(*i).map(|c| clean_cell(c)).unwrap_or("");
            match Self::unique_value(kf, raw) {
                None if raw.is_empty() => {
                    if self.settings.mode == ImportMode::Update {
                        issues.push(issue(self.header(*i), "import.key_missing"));
                    }
                }
                None => {
                    let code = parse_input(kf, &Json::String(raw.to_string())).err().unwrap_or("import.key_missing");
                    issues.push(issue(self.header(*i), code));
                }
                Some(v) => {
                    if let Some(ids) = holders.get(&(kf.id, v)) {
                        key_found = true;
                        if ids.len() > 1 {
                            issues.push(issue(self.header(*i), "import.key_ambiguous"));
                        } else if self.settings.mode != ImportMode::Create {
                            match matched.get(&ids[0]) {
                                Some(r) => target = Some(r),
                                None => issues.push(issue(self.header(*i), "import.out_of_scope")),
                            }
                        }
                    }
                }
            }
        }
        if issues.is_empty() {
            match self.settings.mode {
                ImportMode::Create if key_found => return Outcome::Skipped,
                ImportMode::Update if !key_found => return Outcome::Skipped,
                _ => {}
            }
        }
        let creating = target.is_none();
        let scope = if creating { self.create_scope.as_ref() } else { self.update_scope.as_ref() };
        let Some(scope) = scope else {
            issues.push(issue(String::new(), "permission.denied"));
            return Outcome::Failed { row, cells, issues };
        };
        // Build the input the engine's parser takes.
        let mut input = Map::new();
        let mut placeholders: Vec<Uuid> = Vec::new();
        for (i, c) in self.cols.iter().enumerate() {
            let cell = cells.get(i).map(|c| clean_cell(c)).unwrap_or("");
            if cell.is_empty() {
                continue; // an empty cell leaves the value as it is (or the default)
            }
            match c {
                Col::Skip => {}
                Col::Field(f) => {
                    let v = match f.ftype {
                        FieldType::Tags | FieldType::MultiSelect => split_list(cell),
                        _ => Json::String(cell.to_string()),
                    };
                    input.insert(f.api_name.clone(), v);
                }
                Col::Owner(f) => {
                    let found = match self.users.by_email.get(&cell.to_lowercase()) {
                        Some(u) => Ok(*u),
                        None => match self.users.by_name.get(cell).map(Vec::as_slice) {
                            Some([u]) => Ok(*u),
                            Some([_, _, ..]) => Err("import.user_ambiguous"),
                            _ => Err("import.unknown_user"),
                        },
                    };
                    match found {
                        Ok((u, team)) => {
                            if f.api_name == "owner" && !self.actor.owner_in_scope(scope, Some(u), team) {
                                issues.push(issue(self.header(i), "permission.owner_out_of_scope"));
                            } else {
                                input.insert(f.api_name.clone(), Json::String(u.to_string()));
                            }
                        }
                        Err(code) => issues.push(issue(self.header(i), code)),
                    }
                }
                Col::Relation(f, t) => {
                    let by_ext = related.get(&(t.id, format!("\u{1}{cell}")));
                    let hits = by_ext.or_else(|| related.get(&(t.id, cell.to_string())));
                    match hits.map(Vec::as_slice) {
                        Some([(id, true)]) => {
                            input.insert(f.api_name.clone(), Json::String(id.to_string()));
                        }
                        Some([(_, false)]) => issues.push(issue(self.header(i), "import.reference_out_of_scope")),
                        Some([_, _, ..]) => issues.push(issue(self.header(i), "import.reference_ambiguous")),
                        _ if self.settings.create_missing => {
                            let k = (t.id, cell.to_string());
                            let p = *session.pending.entry(k).or_insert_with(kehu_core::new_id);
                            placeholders.push(p);
                            input.insert(f.api_name.clone(), Json::String(p.to_string()));
                        }
                        _ => issues.push(issue(self.header(i), "import.reference_not_found")),
                    }
                }
            }
        }
        let input = crate::records::behaviour::derive_owned(obj, input, creating);
        let (mut errors, mut denied) = (Vec::new(), Vec::new());
        let mode = if creating { Mode::Create } else { Mode::Update };
        let mut values = parse_fields(&self.actor, obj, &input, mode, "", &mut errors, &mut denied);
        for e in errors.into_iter().chain(denied) {
            issues.push(issue(self.column_of(&e.field), &e.code));
        }
        // Unique values held by another record (unless an earlier row freed them).
        for (f, v) in &values {
            if !f.unique {
                continue;
            }
            let Some(k) = storage_key(v) else { continue };
            if session.freed.contains(&(f.id, k.clone())) {
                continue;
            }
            if let Some(ids) = holders.get(&(f.id, k)) {
                if ids.iter().any(|id| Some(*id) != target.map(|t| t.id)) {
                    issues.push(issue(self.column_of(&f.api_name), "field.not_unique"));
                }
            }
        }
        if !issues.is_empty() {
            let mut seen = HashSet::new();
            issues.retain(|i| seen.insert((i.column.clone(), i.code.clone())));
            return Outcome::Failed { row, cells, issues };
        }
        session.used.extend(placeholders);
        match target {
            None => {
                if let Some(owner) = obj.field("owner") {
                    if !values.iter().any(|(f, _)| f.id == owner.id) {
                        values.push((owner.clone(), self.actor.user_id.map(Value::Ref).unwrap_or(Value::Null)));
                    }
                }
                Outcome::Create { row, values }
            }
            Some(cur) => {
                let changed: Values = values.into_iter().filter(|(f, v)| cur.get(&f.api_name) != v).collect();
                if changed.is_empty() {
                    return Outcome::Unchanged;
                }
                for (f, _) in &changed {
                    if f.unique {
                        if let Some(old) = storage_key(cur.get(&f.api_name)) {
                            session.freed.insert((f.id, old));
                        }
                    }
                }
                Outcome::Update { row, cur: Box::new(cur.clone()), values: changed }
            }
        }
    }
}
