//! Export of a list as CSV or XLSX: the chosen columns of every record the user can see that matches
//! the filter (or of a selection), as display values (option labels, names of users and
//! related records), UTF-8 with a byte-order mark so spreadsheet programs read Chinese text.
//! Needs the role's export permission; phone numbers and e-mails stay masked unless the user
//! reveals them (audited per record by the engine); the export itself is audited with its count.
//!
//! Cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
//! carriage return) get a leading `'` — except numbers and phone numbers such as
//! `+8613800138000`, which stay readable. The XLSX file holds every cell as typed text (never a
//! formula) or, for number fields, as a number; its text cells get the same neutralisation so a
//! copy saved as CSV stays safe.

use crate::display::Display;
use crate::{App, Count, ListRequest, RecordView, Result};
use kehu_core::meta::{FieldDef, FieldType, ObjectDef};
use kehu_core::perm::{Action, Actor};
use kehu_core::{now_micros, AppError, Uuid};
use kehu_db::journal::{self, AuditEntry};
use serde_json::{json, Value as Json};
use std::sync::Arc;

/// Most records one XLSX export (built in memory) or one selection export may hold; a CSV
/// of a whole list is streamed without a limit (`export_csv_stream`).
pub const EXPORT_MAX: u64 = 100_000;
/// Records read per page.
const STREAM_PAGE: u64 = crate::records::MAX_LIMIT;

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
    let s = safe_text(s);
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

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    #[default]
    Csv,
    Xlsx,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Self {
        if s.eq_ignore_ascii_case("xlsx") {
            Self::Xlsx
        } else {
            Self::Csv
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// One page of the export's records, after `cursor`.
fn page_request(req: &ExportRequest, cursor: Option<String>) -> ListRequest {
    ListRequest {
        filter: req.filter.clone(),
        sort: req.sort.clone().map(Json::String),
        limit: Some(STREAM_PAGE),
        cursor,
        count: Count::None,
        deleted: false,
    }
}

/// The neutralised text of a cell (no CSV quoting).
pub fn safe_text(s: &str) -> String {
    let danger = match s.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !numeric(s),
        _ => false,
    };
    if danger {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// Rows of an export: the header and the display texts, with which columns are numbers.
struct Table {
    header: Vec<String>,
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
}

fn to_csv(t: &Table) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    csv_line(&mut out, t.header.iter().cloned());
    for r in &t.rows {
        csv_line(&mut out, r.iter().cloned());
    }
    out.into_bytes()
}

fn to_xlsx(t: &Table) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| AppError::internal(format!("xlsx: {e}"));
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let bold = Format::new().set_bold();
    for (c, h) in t.header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, safe_text(h), &bold).map_err(err)?;
    }
    for (i, r) in t.rows.iter().enumerate() {
        let row = (i + 1) as u32;
        for (c, v) in r.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            let number = if t.numeric[c] { v.replace(',', "").trim_end_matches('%').parse::<f64>().ok() } else { None };
            match number {
                Some(n) if !v.ends_with('%') => ws.write_number(row, c as u16, n).map_err(err)?,
                _ => ws.write_string(row, c as u16, safe_text(v)).map_err(err)?,
            };
        }
    }
    ws.set_freeze_panes(1, 0).map_err(err)?;
    for c in 0..t.header.len() {
        let widest = std::iter::once(&t.header[c])
            .chain(t.rows.iter().take(200).map(|r| &r[c]))
            .map(|s| s.chars().map(|ch| if ch.is_ascii() { 1.0 } else { 2.0 }).sum::<f64>())
            .fold(8.0, f64::max);
        ws.set_column_width(c as u16, widest.min(60.0) + 2.0).map_err(err)?;
    }
    wb.save_to_buffer().map_err(err)
}

impl App {
    /// Build the CSV; returns it with the number of records in it.
    pub async fn export_csv(&self, actor: &Actor, req: &ExportRequest) -> Result<(Vec<u8>, u64)> {
        self.export(actor, req, ExportFormat::Csv).await
    }

    /// Build the file in `format`; returns it with the number of records in it.
    pub async fn export(&self, actor: &Actor, req: &ExportRequest, format: ExportFormat) -> Result<(Vec<u8>, u64)> {
        let (t, obj_id) = self.export_table(actor, req).await?;
        let n = t.rows.len() as u64;
        let bytes = match format {
            ExportFormat::Csv => to_csv(&t),
            ExportFormat::Xlsx => to_xlsx(&t)?,
        };
        self.audit_export(actor, obj_id, req, n, format, true).await?;
        Ok((bytes, n))
    }

    /// Check the request: the export permission, the reveal permission, readable columns.
    /// Returns the object, the reader (revealing or not) and the columns.
    async fn export_prepare(
        &self,
        actor: &Actor,
        req: &ExportRequest,
    ) -> Result<(Arc<ObjectDef>, Actor, Vec<Arc<FieldDef>>)> {
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
        Ok((obj, reader, fields))
    }

    async fn audit_export(
        &self,
        actor: &Actor,
        obj_id: Uuid,
        req: &ExportRequest,
        n: u64,
        format: ExportFormat,
        complete: bool,
    ) -> Result<()> {
        let mut tx = self.db.begin().await?;
        journal::audit(
            &mut tx,
            &[AuditEntry {
                at: now_micros(),
                actor: actor.user_id,
                object_id: obj_id,
                record_id: Uuid::nil(),
                action: "records.exported",
                changes: json!({
                    "count": n,
                    "format": format.extension(),
                    "columns": req.columns,
                    "filter": req.filter,
                    "revealed": req.reveal,
                    "complete": complete,
                }),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stream the whole list as CSV, with no size limit: pages of `STREAM_PAGE` records are
    /// read one after the other (keyset pages, so memory stays flat) and sent as they are
    /// ready. The permission checks happen before the first byte; the audit entry is written
    /// at the end with the count (and `complete: false` when the receiver went away).
    pub async fn export_csv_stream(
        self: &Arc<Self>,
        actor: &Actor,
        req: ExportRequest,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<Vec<u8>>>> {
        let (obj, reader, fields) = self.export_prepare(actor, &req).await?;
        // The first page is read before answering, so a bad filter or sort is a plain error.
        let first = self.list(&reader, &req.object, &page_request(&req, None)).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>>>(4);
        let app = self.clone();
        let actor = actor.clone();
        tokio::spawn(async move {
            let mut out = String::from("\u{feff}");
            csv_line(&mut out, fields.iter().map(|f| f.label.get(&req.lang).to_string()));
            let mut n = 0u64;
            let mut complete = true;
            let mut next = Some(first);
            while let Some(page) = next.take() {
                let names = match app.resolve_names(&reader, &fields, &page.records).await {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        complete = false;
                        break;
                    }
                };
                let d = Display { lang: &req.lang, names: &names, tz: req.tz.unwrap_or(chrono_tz::Asia::Shanghai) };
                for r in &page.records {
                    csv_line(&mut out, fields.iter().map(|f| d.text(f, r.get(&f.api_name))));
                }
                n += page.records.len() as u64;
                if tx.send(Ok(std::mem::take(&mut out).into_bytes())).await.is_err() {
                    complete = false;
                    break;
                }
                if let Some(c) = page.next_cursor {
                    match app.list(&reader, &req.object, &page_request(&req, Some(c))).await {
                        Ok(p) => next = Some(p),
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            complete = false;
                        }
                    }
                }
            }
            if let Err(e) = app.audit_export(&actor, obj.id, &req, n, ExportFormat::Csv, complete).await {
                tracing::warn!(error = %e, "export audit");
            }
        });
        Ok(rx)
    }

    async fn export_table(&self, actor: &Actor, req: &ExportRequest) -> Result<(Table, Uuid)> {
        let (obj, reader, fields) = self.export_prepare(actor, req).await?;
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
                    let page = self.list(&reader, &req.object, &page_request(req, cursor)).await?;
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
        let header = fields.iter().map(|f| f.label.get(&req.lang).to_string()).collect();
        let numeric = fields
            .iter()
            .map(|f| matches!(f.ftype, FieldType::Integer | FieldType::Decimal | FieldType::Percent))
            .collect();
        let rows = records.iter().map(|r| fields.iter().map(|f| d.text(f, r.get(&f.api_name))).collect()).collect();
        Ok((Table { header, numeric, rows }, obj.id))
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
