//! CSV export of a list: the chosen columns of every record the user can see that matches
//! the filter (or of a selection), as display values (option labels, names of users and
//! related records), UTF-8 with a byte-order mark so spreadsheet programs read Chinese text.
//! Needs the role's export permission; phone numbers and e-mails stay masked unless the user
//! reveals them (audited per record by the engine); the export itself is audited with its count.
//!
//! Cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
//! carriage return) get a leading `'` — except numbers and phone numbers such as
//! `+8613800138000`, which stay readable.

use crate::display::Display;
use crate::{App, Count, ListRequest, RecordView, Result};
use kehu_core::perm::{Action, Actor};
use kehu_core::{now_micros, AppError, Uuid};
use kehu_db::journal::{self, AuditEntry};
use serde_json::{json, Value as Json};

/// Most records one export may hold.
pub const EXPORT_MAX: u64 = 100_000;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub object: String,
    /// Field api names, in order (empty: the title field).
    pub columns: Vec<String>,
    pub filter: Option<Json>,
    pub sort: Option<String>,
    /// Only these records (still within the user's scope and the filter).
    pub ids: Option<Vec<Uuid>>,
    /// Show phone numbers and e-mails unmasked (needs the reveal permission).
    pub reveal: bool,
    pub lang: String,
    pub tz: Option<chrono_tz::Tz>,
}

/// Whether a cell that starts with `+` or `-` is a plain number or phone number.
fn numeric(s: &str) -> bool {
    let rest = &s[1..];
    rest.chars().any(|c| c.is_ascii_digit()) && rest.chars().all(|c| c.is_ascii_digit() || " ().-".contains(c))
}

/// One CSV cell: neutralised against formulas, quoted when needed.
pub fn csv_cell(s: &str) -> String {
    let danger = match s.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !numeric(s),
        _ => false,
    };
    let s = if danger { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_line(out: &mut String, cells: impl Iterator<Item = String>) {
    let cells: Vec<String> = cells.map(|c| csv_cell(&c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

impl App {
    /// Build the CSV; returns it with the number of records in it.
    pub async fn export_csv(&self, actor: &Actor, req: &ExportRequest) -> Result<(Vec<u8>, u64)> {
        let schema = self.schema().await?;
        let obj = schema.object(&req.object)?.clone();
        actor.check(&obj, Action::Export)?;
        let reader = if req.reveal { actor.revealing()? } else { actor.clone() };
        let mut fields = Vec::new();
        for c in &req.columns {
            match obj.field(c) {
                Some(f) if actor.can_read_field(&obj, f) => fields.push(f.clone()),
                _ => return Err(AppError::field("columns", "view.invalid_columns")),
            }
        }
        if fields.is_empty() {
            fields.extend(obj.title_field().cloned());
        }
        let records: Vec<RecordView> = match &req.ids {
            Some(ids) => self.list_by_ids(&reader, &req.object, ids, req.filter.as_ref(), req.sort.as_deref()).await?,
            None => {
                let total = self.count(actor, &req.object, req.filter.as_ref()).await?;
                if total > EXPORT_MAX {
                    return Err(AppError::invalid("export.too_many"));
                }
                let mut all = Vec::new();
                let mut cursor = None;
                loop {
                    let lr = ListRequest {
                        filter: req.filter.clone(),
                        sort: req.sort.clone().map(Json::String),
                        limit: Some(200),
                        cursor,
                        count: Count::None,
                        deleted: false,
                    };
                    let page = self.list(&reader, &req.object, &lr).await?;
                    all.extend(page.records);
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                all
            }
        };
        let names = self.resolve_names(&reader, &fields, &records).await?;
        let d = Display { lang: &req.lang, names: &names, tz: req.tz.unwrap_or(chrono_tz::Asia::Shanghai) };
        let mut out = String::from("\u{feff}");
        csv_line(&mut out, fields.iter().map(|f| f.label.get(&req.lang).to_string()));
        for r in &records {
            csv_line(&mut out, fields.iter().map(|f| d.text(f, r.get(&f.api_name))));
        }
        let n = records.len() as u64;
        let mut tx = self.db.begin().await?;
        journal::audit(
            &mut tx,
            &[AuditEntry {
                at: now_micros(),
                actor: actor.user_id,
                object_id: obj.id,
                record_id: Uuid::nil(),
                action: "records.exported",
                changes: json!({"count": n, "columns": req.columns, "filter": req.filter, "revealed": req.reveal}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok((out.into_bytes(), n))
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn cells() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+8613800138000"), "+8613800138000");
        assert_eq!(csv_cell("+86 138 0013 8000"), "+86 138 0013 8000");
        assert_eq!(csv_cell("-12.5"), "-12.5");
        assert_eq!(csv_cell("-cmd|' /C calc'!A0"), "'-cmd|' /C calc'!A0");
        assert_eq!(csv_cell("+1+2"), "'+1+2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("张伟, 上海"), "\"张伟, 上海\"");
    }
}
