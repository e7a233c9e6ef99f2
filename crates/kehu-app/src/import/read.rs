//! Reading an uploaded file into rows of text cells: CSV in any encoding a spreadsheet
//! program writes (UTF-8 with or without BOM, UTF-16 LE/BE, GBK/GB18030 from Chinese Excel or
//! WPS) with its delimiter detected, or the first (or a chosen) sheet of an XLSX workbook,
//! whose numbers and dates become the text the field parsers accept.
//!
//! Limits: `MAX_FILE_BYTES` for the upload; for XLSX also `MAX_UNPACKED_BYTES` for the sum of
//! the zip entries' sizes, read from the central directory before the workbook is opened (a
//! zip bomb is refused without inflating anything).

use crate::Result;
use kehu_core::AppError;
use std::io::Cursor;

/// Largest uploaded file.
pub const MAX_FILE_BYTES: usize = 256 * 1024 * 1024;
/// Largest XLSX upload (compressed).
pub const MAX_XLSX_BYTES: usize = 64 * 1024 * 1024;
/// Largest total of the unpacked entries of an XLSX file.
pub const MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;
/// Largest number of columns.
pub const MAX_COLUMNS: usize = 500;

/// What was read: the header row and how the file was understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub format: &'static str,
    /// `utf-8`, `utf-8-bom`, `utf-16le`, `utf-16be`, `gb18030`, or `xlsx`.
    pub encoding: &'static str,
    pub delimiter: char,
    pub headers: Vec<String>,
    /// Sheet names of a workbook (empty for CSV).
    pub sheets: Vec<String>,
}

/// Read `bytes` (file name `name`, for the format), calling `on_row` for each non-empty data
/// row after the header. Returns the header and how the file was read.
pub fn read_table(
    name: &str,
    bytes: &[u8],
    sheet: Option<&str>,
    mut on_row: impl FnMut(u64, Vec<String>) -> Result<()>,
) -> Result<TableInfo> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(AppError::invalid("import.file_too_large"));
    }
    if bytes.is_empty() {
        return Err(AppError::invalid("import.empty_file"));
    }
    let lower = name.to_lowercase();
    if bytes.starts_with(b"PK\x03\x04") || lower.ends_with(".xlsx") {
        return read_xlsx(bytes, sheet, &mut on_row);
    }
    let (text, encoding) = decode(bytes)?;
    read_csv(&text, encoding, &mut on_row)
}

/// Decode CSV bytes to text: BOMs first, then the NUL pattern of UTF-16 without BOM, then
/// UTF-8 if valid, else GB18030 (a superset of GBK). Refuses binary data.
pub fn decode(bytes: &[u8]) -> Result<(String, &'static str)> {
    let (text, enc) = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        (String::from_utf8(rest.to_vec()).map_err(|_| AppError::invalid("import.bad_encoding"))?, "utf-8-bom")
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        (utf16(rest, true)?, "utf-16le")
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        (utf16(rest, false)?, "utf-16be")
    } else if let Some(le) = utf16_without_bom(bytes) {
        (utf16(bytes, le)?, if le { "utf-16le" } else { "utf-16be" })
    } else if let Ok(s) = std::str::from_utf8(bytes) {
        (s.to_string(), "utf-8")
    } else {
        let (s, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
        if had_errors {
            return Err(AppError::invalid("import.bad_encoding"));
        }
        (s.into_owned(), "gb18030")
    };
    // Text files do not hold NULs or many other control characters.
    let sample: Vec<char> = text.chars().take(64 * 1024).collect();
    let bad = sample.iter().filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')).count();
    if bad > 0 && bad * 100 > sample.len() {
        return Err(AppError::invalid("import.not_a_table"));
    }
    if text.contains('\0') {
        return Err(AppError::invalid("import.not_a_table"));
    }
    Ok((text, enc))
}

/// UTF-16 without BOM: most ASCII characters have a zero high byte, so one of the two byte
/// positions is mostly NUL. Returns Some(little endian?).
fn utf16_without_bom(bytes: &[u8]) -> Option<bool> {
    let n = bytes.len().min(4096) / 2;
    if n < 2 {
        return None;
    }
    let (mut even, mut odd) = (0, 0);
    for i in 0..n {
        if bytes[2 * i] == 0 {
            even += 1;
        }
        if bytes[2 * i + 1] == 0 {
            odd += 1;
        }
    }
    if odd * 3 > n && even * 10 < n {
        Some(true)
    } else if even * 3 > n && odd * 10 < n {
        Some(false)
    } else {
        None
    }
}

fn utf16(bytes: &[u8], le: bool) -> Result<String> {
    let enc = if le { encoding_rs::UTF_16LE } else { encoding_rs::UTF_16BE };
    let (s, had_errors) = enc.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(AppError::invalid("import.bad_encoding"));
    }
    Ok(s.into_owned())
}

/// The delimiter whose column count is the most consistent over the first records (and the
/// largest among equally consistent ones); comma for a one-column file.
pub fn sniff_delimiter(text: &str) -> u8 {
    let head: String = text.chars().take(64 * 1024).collect();
    let mut best = (b',', 0usize, 0usize);
    for d in [b',', b';', b'\t', b'|'] {
        let mut rdr =
            csv::ReaderBuilder::new().delimiter(d).has_headers(false).flexible(true).from_reader(head.as_bytes());
        let counts: Vec<usize> = rdr.records().take(20).filter_map(|r| r.ok()).map(|r| r.len()).collect();
        let Some(&first) = counts.first() else { continue };
        if first < 2 {
            continue;
        }
        // The last sampled record may be cut off by the sample window.
        let considered =
            if counts.len() > 1 && head.len() < text.len() { &counts[..counts.len() - 1] } else { &counts[..] };
        let agree = considered.iter().filter(|&&c| c == first).count();
        if (agree, first) > (best.1, best.2) {
            best = (d, agree, first);
        }
    }
    best.0
}

fn read_csv(
    text: &str,
    encoding: &'static str,
    on_row: &mut dyn FnMut(u64, Vec<String>) -> Result<()>,
) -> Result<TableInfo> {
    let delimiter = sniff_delimiter(text);
    let mut rdr =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut headers: Option<Vec<String>> = None;
    for rec in rdr.records() {
        let rec = rec.map_err(|_| AppError::invalid("import.bad_csv"))?;
        let row_no = rec.position().map(|p| p.record() + 1).unwrap_or(0);
        let cells: Vec<String> = rec.iter().map(str::to_string).collect();
        match &headers {
            None => {
                if cells.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                headers = Some(clean_headers(cells)?);
            }
            Some(_) => {
                if cells.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                on_row(row_no, cells)?;
            }
        }
    }
    let headers = headers.ok_or_else(|| AppError::invalid("import.empty_file"))?;
    Ok(TableInfo { format: "csv", encoding, delimiter: delimiter as char, headers, sheets: Vec::new() })
}

fn clean_headers(cells: Vec<String>) -> Result<Vec<String>> {
    if cells.len() > MAX_COLUMNS {
        return Err(AppError::invalid("import.too_many_columns"));
    }
    let mut out: Vec<String> = Vec::with_capacity(cells.len());
    for (i, c) in cells.into_iter().enumerate() {
        let c = c.trim().trim_start_matches('\u{feff}').trim().to_string();
        out.push(if c.is_empty() { format!("#{}", i + 1) } else { c });
    }
    Ok(out)
}

/// Check the zip's central directory before anything is inflated.
fn check_zip(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_XLSX_BYTES {
        return Err(AppError::invalid("import.file_too_large"));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| AppError::invalid("import.bad_xlsx"))?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).map_err(|_| AppError::invalid("import.bad_xlsx"))?;
        total = total.saturating_add(f.size());
        // A deflate stream cannot expand more than about 1032:1; a larger claim is a lie.
        if f.size() > f.compressed_size().saturating_mul(1100).max(1 << 20) {
            return Err(AppError::invalid("import.xlsx_too_large_unpacked"));
        }
    }
    if total > MAX_UNPACKED_BYTES {
        return Err(AppError::invalid("import.xlsx_too_large_unpacked"));
    }
    Ok(())
}

fn read_xlsx(
    bytes: &[u8],
    sheet: Option<&str>,
    on_row: &mut dyn FnMut(u64, Vec<String>) -> Result<()>,
) -> Result<TableInfo> {
    use calamine::{Reader, Xlsx};
    check_zip(bytes)?;
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|_| AppError::invalid("import.bad_xlsx"))?;
    let sheets = wb.sheet_names().to_vec();
    let name = match sheet {
        Some(s) if !s.is_empty() => {
            sheets.iter().find(|n| n.as_str() == s).cloned().ok_or_else(|| AppError::invalid("import.no_such_sheet"))?
        }
        _ => sheets.first().cloned().ok_or_else(|| AppError::invalid("import.empty_file"))?,
    };
    let range = wb.worksheet_range(&name).map_err(|_| AppError::invalid("import.bad_xlsx"))?;
    let mut headers: Option<Vec<String>> = None;
    let first = range.start().map(|(r, _)| r as u64).unwrap_or(0);
    for (i, row) in range.rows().enumerate() {
        let row_no = first + i as u64 + 1;
        let cells: Vec<String> = row.iter().map(cell_text).collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match headers {
            None => headers = Some(clean_headers(trim_trailing(cells))?),
            Some(_) => on_row(row_no, trim_trailing(cells))?,
        }
    }
    let headers = headers.ok_or_else(|| AppError::invalid("import.empty_file"))?;
    Ok(TableInfo { format: "xlsx", encoding: "xlsx", delimiter: ',', headers, sheets })
}

fn trim_trailing(mut cells: Vec<String>) -> Vec<String> {
    while cells.last().is_some_and(|c| c.is_empty()) {
        cells.pop();
    }
    cells
}

/// A cell as the text a person would type: whole numbers without `.0` (phone numbers stay
/// digits), dates as `YYYY-MM-DD`, date-times as `YYYY-MM-DD HH:MM:SS`.
fn cell_text(c: &calamine::Data) -> String {
    use calamine::Data;
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(n) => n.to_string(),
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                format!("{f}")
            }
        }
        Data::Bool(b) => if *b { "true" } else { "false" }.to_string(),
        Data::DateTime(d) => match d.as_datetime() {
            Some(dt) if dt.time() == chrono::NaiveTime::MIN => dt.format("%Y-%m-%d").to_string(),
            Some(dt) => dt.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => d.as_f64().to_string(),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(sniff_delimiter("a;b;c\n1;2;3\n"), b';');
        assert_eq!(sniff_delimiter("a\tb\n1\t2,5\n"), b'\t');
        assert_eq!(sniff_delimiter("a|b|c\n\"x|y\"|2|3\n"), b'|');
        assert_eq!(sniff_delimiter("a,b\n1,2\n"), b',');
        assert_eq!(sniff_delimiter("name\nzhang\n"), b',');
    }

    #[test]
    fn encodings() {
        let (gbk, _, _) = encoding_rs::GBK.encode("姓名,公司\r\n张三,阿里\r\n");
        assert_eq!(decode(&gbk).unwrap(), ("姓名,公司\r\n张三,阿里\r\n".to_string(), "gb18030"));
        let le: Vec<u8> = "名\tb\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(decode(&le).unwrap().1, "utf-16le");
        assert!(decode(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08").is_err());
    }
}
