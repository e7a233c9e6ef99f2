//! The state of a list page, kept in its URL so every link (sort, page, column, chip, view)
//! keeps the rest: `cols=name,city&sort=-updated_at&m=or&cf=city&co=eq&cv=上海&lc=lead&tag=vip&q=…`.
//! Conditions are `cf`/`co`/`cv` triples in order; `lc` and `tag` are the lifecycle and tag
//! chips; `m=or` joins the conditions with OR (chips always AND). The filter sent to the engine
//! is the filter JSON language of `kehu_core::filter`; saved views store that JSON and are read
//! back into this shape.

use crate::http::enc;
use kehu_core::meta::{FieldType, ObjectDef};
use serde_json::{json, Value as Json};

/// The object's status field (its `ui.status_field`), offered as chips (`lc`).
pub fn status_field(obj: &ObjectDef) -> &str {
    obj.ui.status_field.as_deref().unwrap_or("")
}

/// The object's tags field (its `ui.tags_field`), offered as chips (`tag`) and bulk actions.
pub fn tags_field(obj: &ObjectDef) -> &str {
    obj.ui.tags_field.as_deref().unwrap_or("")
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cond {
    pub field: String,
    pub op: String,
    pub value: String,
}

#[derive(Debug, Clone, Default)]
pub struct ListState {
    pub cols: Vec<String>,
    pub conds: Vec<Cond>,
    pub any: bool,
    pub lc: String,
    pub tag: String,
    pub sort: String,
    pub q: String,
    pub view: String,
    /// `board` shows the records as a board (`bf` its field, `bs` the summed field, `bc` the
    /// card fields).
    pub layout: String,
    pub bf: String,
    pub bs: String,
    pub bc: Vec<String>,
    pub cursor: String,
    /// The URL carries explicit state (a saved view is then only the label).
    pub explicit: bool,
}

impl ListState {
    pub fn parse(pairs: &[(String, String)]) -> ListState {
        let mut s = ListState::default();
        let (mut cf, mut co, mut cv) = (Vec::new(), Vec::new(), Vec::new());
        for (k, v) in pairs {
            match k.as_str() {
                "cols" => {
                    s.cols = v.split(',').map(str::trim).filter(|c| !c.is_empty()).take(50).map(String::from).collect()
                }
                "cf" => cf.push(v.clone()),
                "co" => co.push(v.clone()),
                "cv" => cv.push(v.clone()),
                "m" => s.any = v == "or",
                "lc" => s.lc = v.clone(),
                "tag" => s.tag = v.trim().to_string(),
                "sort" => s.sort = v.clone(),
                "q" => s.q = v.clone(),
                "view" => s.view = v.clone(),
                "lay" => s.layout = if v == "board" { v.clone() } else { String::new() },
                "bf" => s.bf = v.clone(),
                "bs" => s.bs = v.clone(),
                "bc" => s.bc.extend(v.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from)),
                "cursor" => s.cursor = v.clone(),
                "st" => s.explicit = true,
                _ => {}
            }
        }
        for (i, f) in cf.into_iter().enumerate().take(kehu_core::filter::MAX_CONDITIONS) {
            if f.is_empty() {
                continue;
            }
            let op = co.get(i).cloned().unwrap_or_else(|| "eq".into());
            s.conds.push(Cond { field: f, op, value: cv.get(i).cloned().unwrap_or_default() });
        }
        s
    }

    /// The state as a query string (no cursor), always marked explicit.
    pub fn query(&self) -> String {
        let mut p: Vec<String> = vec!["st=1".into()];
        if !self.view.is_empty() {
            p.push(format!("view={}", enc(&self.view)));
        }
        if !self.cols.is_empty() {
            p.push(format!("cols={}", enc(&self.cols.join(","))));
        }
        if !self.layout.is_empty() {
            p.push(format!("lay={}", enc(&self.layout)));
            if !self.bf.is_empty() {
                p.push(format!("bf={}", enc(&self.bf)));
            }
            if !self.bs.is_empty() {
                p.push(format!("bs={}", enc(&self.bs)));
            }
            if !self.bc.is_empty() {
                p.push(format!("bc={}", enc(&self.bc.join(","))));
            }
        }
        if !self.sort.is_empty() {
            p.push(format!("sort={}", enc(&self.sort)));
        }
        if self.any {
            p.push("m=or".into());
        }
        for c in &self.conds {
            p.push(format!("cf={}&co={}&cv={}", enc(&c.field), enc(&c.op), enc(&c.value)));
        }
        if !self.lc.is_empty() {
            p.push(format!("lc={}", enc(&self.lc)));
        }
        if !self.tag.is_empty() {
            p.push(format!("tag={}", enc(&self.tag)));
        }
        if !self.q.is_empty() {
            p.push(format!("q={}", enc(&self.q)));
        }
        p.join("&")
    }

    pub fn href(&self, object: &str) -> String {
        format!("/o/{object}?{}", self.query())
    }

    /// A copy changed by `f`.
    pub fn with(&self, f: impl FnOnce(&mut ListState)) -> ListState {
        let mut s = self.clone();
        s.cursor.clear();
        f(&mut s);
        s
    }

    fn cond_json(obj: &ObjectDef, c: &Cond) -> Json {
        if c.op == "is_empty" || c.op == "is_not_empty" {
            return json!({"field": c.field, "op": c.op});
        }
        let t = obj.field(&c.field).map(|f| f.ftype);
        let v = match t {
            Some(FieldType::Boolean) => Json::Bool(c.value == "true"),
            Some(FieldType::Integer) => c.value.trim().parse::<i64>().map(Json::from).unwrap_or(json!(c.value)),
            _ => Json::String(c.value.clone()),
        };
        json!({"field": c.field, "op": c.op, "value": v})
    }

    /// The filter for the engine (None: every record).
    pub fn filter(&self, obj: &ObjectDef) -> Option<Json> {
        let conds: Vec<Json> = self.conds.iter().map(|c| Self::cond_json(obj, c)).collect();
        let mut chips = Vec::new();
        if !self.lc.is_empty() && !status_field(obj).is_empty() {
            chips.push(json!({"field": status_field(obj), "op": "eq", "value": self.lc}));
        }
        if !self.tag.is_empty() && !tags_field(obj).is_empty() {
            chips.push(json!({"field": tags_field(obj), "op": "contains", "value": self.tag}));
        }
        let group = if conds.is_empty() {
            None
        } else if self.any && conds.len() > 1 {
            Some(json!({"or": conds}))
        } else if chips.is_empty() {
            return Some(json!({"and": conds}));
        } else {
            Some(json!({"and": conds}))
        };
        match (group, chips.is_empty()) {
            (None, true) => None,
            (Some(g), true) => Some(g),
            (g, false) => {
                let mut all: Vec<Json> = Vec::new();
                if let Some(g) = g {
                    match g.get("and").and_then(Json::as_array) {
                        Some(a) => all.extend(a.iter().cloned()),
                        None => all.push(g),
                    }
                }
                all.extend(chips);
                Some(json!({"and": all}))
            }
        }
    }

    /// Read a stored filter back into conditions and chips (the shapes `filter` writes;
    /// anything else is dropped).
    pub fn set_filter(&mut self, obj: &ObjectDef, f: Option<&Json>) {
        self.conds.clear();
        self.any = false;
        self.lc.clear();
        self.tag.clear();
        let Some(f) = f else { return };
        let simple = |j: &Json| -> Option<Cond> {
            let m = j.as_object()?;
            let value = match m.get("value") {
                None | Some(Json::Null) => String::new(),
                Some(Json::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            Some(Cond { field: m.get("field")?.as_str()?.to_string(), op: m.get("op")?.as_str()?.to_string(), value })
        };
        if let Some(c) = simple(f) {
            self.conds.push(c);
            return;
        }
        if let Some(items) = f.get("or").and_then(Json::as_array) {
            self.any = true;
            self.conds.extend(items.iter().filter_map(simple));
            return;
        }
        let Some(items) = f.get("and").and_then(Json::as_array) else { return };
        for it in items {
            if let Some(c) = simple(it) {
                if c.field == status_field(obj) && c.op == "eq" && self.lc.is_empty() {
                    self.lc = c.value;
                } else if c.field == tags_field(obj) && c.op == "contains" && self.tag.is_empty() {
                    self.tag = c.value;
                } else {
                    self.conds.push(c);
                }
            } else if let Some(g) = it.get("or").and_then(Json::as_array) {
                self.any = true;
                self.conds.extend(g.iter().filter_map(simple));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pairs: Vec<(String, String)> = [
            ("cf", "city"),
            ("co", "eq"),
            ("cv", "上海"),
            ("cf", "score"),
            ("co", "gte"),
            ("cv", "80"),
            ("m", "or"),
            ("lc", "lead"),
            ("tag", "vip"),
            ("cols", "name,city"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let s = ListState::parse(&pairs);
        assert_eq!(s.conds.len(), 2);
        let q = s.query();
        let back: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        let s2 = ListState::parse(&back);
        assert_eq!(s2.conds, s.conds);
        assert!(s2.any && s2.lc == "lead" && s2.tag == "vip" && s2.cols == vec!["name", "city"]);
    }
}
