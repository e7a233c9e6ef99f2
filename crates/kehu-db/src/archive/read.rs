//! Reading an archive as a stream of checked events. The reader validates the structure as it
//! goes (a header first, rows only inside a table, row widths, `end` counts, the trailer's
//! table list and checksum, nothing after the trailer), so a loader that stops at the first
//! error inside its transaction writes nothing from a damaged file.

use super::tables::Class;
use super::write::hex;
use super::{FORMAT, FORMAT_VERSION};
use flate2::read::MultiGzDecoder;
use kehu_core::AppError;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The longest line a valid archive has (a row of a record table with long texts).
const MAX_LINE: u64 = 64 << 20;

/// The first line of an archive.
#[derive(Debug, Clone)]
pub struct Header {
    pub format_version: i64,
    pub kehu_version: String,
    pub source_backend: String,
    pub migrations: Vec<i64>,
    pub created_at: i64,
}

/// What the reader meets, in order.
#[derive(Debug)]
pub enum Event {
    Table {
        name: String,
        columns: Vec<(String, Class)>,
    },
    Row(Vec<Json>),
    End,
    /// The trailer, checked: the list of tables with their row counts.
    Trailer {
        tables: Vec<(String, u64)>,
    },
}

pub(crate) fn corrupt(what: impl Into<String>) -> AppError {
    AppError::invalid("archive.corrupt").with_detail(what.into())
}

fn read_err(e: std::io::Error) -> AppError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            AppError::invalid("archive.io").with_detail(e.to_string())
        }
        std::io::ErrorKind::UnexpectedEof => AppError::invalid("archive.truncated").with_detail(e.to_string()),
        _ => corrupt(e.to_string()),
    }
}

/// Whether the file starts like gzip (anything else is some other file, however short).
fn gzip_magic(path: &Path) -> Result<bool, AppError> {
    let mut head = [0u8; 2];
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    Ok(matches!(Read::read(&mut f, &mut head), Ok(2)) && head == [0x1f, 0x8b])
}

pub struct Reader {
    input: BufReader<MultiGzDecoder<BufReader<std::fs::File>>>,
    hash: Sha256,
    buf: Vec<u8>,
    pub header: Header,
    current: Option<(String, usize, u64)>,
    seen: Vec<(String, u64)>,
    done: bool,
    line_no: u64,
}

impl Reader {
    /// Open an archive and read its header.
    pub fn open(path: &Path) -> Result<Reader, AppError> {
        if !gzip_magic(path)? {
            return Err(AppError::invalid("archive.not_archive").with_detail("not gzip"));
        }
        let file = std::fs::File::open(path).map_err(read_err)?;
        let input = BufReader::with_capacity(1 << 20, MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)));
        let mut r = Reader {
            input,
            hash: Sha256::new(),
            buf: Vec::with_capacity(4096),
            header: Header {
                format_version: 0,
                kehu_version: String::new(),
                source_backend: String::new(),
                migrations: Vec::new(),
                created_at: 0,
            },
            current: None,
            seen: Vec::new(),
            done: false,
            line_no: 0,
        };
        let first = match r.raw_line(true)? {
            Some(l) => l,
            None => return Err(AppError::invalid("archive.not_archive").with_detail("empty file")),
        };
        let h = first.as_object().ok_or_else(|| AppError::invalid("archive.not_archive"))?;
        if h.get("format").and_then(Json::as_str) != Some(FORMAT) {
            return Err(AppError::invalid("archive.not_archive").with_detail("no kehu-archive header"));
        }
        let version = h.get("format_version").and_then(Json::as_i64).unwrap_or(0);
        if version != FORMAT_VERSION {
            return Err(AppError::invalid("archive.version").with_detail(format!("format version {version}")));
        }
        let migrations = h
            .get("migrations")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_i64).collect())
            .ok_or_else(|| corrupt("header without migrations"))?;
        r.header = Header {
            format_version: version,
            kehu_version: h.get("kehu_version").and_then(Json::as_str).unwrap_or_default().to_string(),
            source_backend: h.get("source_backend").and_then(Json::as_str).unwrap_or_default().to_string(),
            migrations,
            created_at: h.get("created_at").and_then(Json::as_i64).unwrap_or(0),
        };
        Ok(r)
    }

    /// One line as JSON, hashed unless it is the trailer (the caller decides: the trailer is
    /// recognised before hashing).
    fn raw_line(&mut self, at_start: bool) -> Result<Option<Json>, AppError> {
        self.buf.clear();
        let n = (&mut self.input).take(MAX_LINE).read_until(b'\n', &mut self.buf).map_err(read_err)?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        if self.buf.last() != Some(&b'\n') {
            return Err(if n as u64 >= MAX_LINE {
                corrupt(format!("line {} too long", self.line_no))
            } else {
                AppError::invalid("archive.truncated").with_detail(format!("line {} unfinished", self.line_no))
            });
        }
        let v: Json = serde_json::from_slice(&self.buf).map_err(|e| {
            if at_start && self.line_no == 1 {
                AppError::invalid("archive.not_archive").with_detail(e.to_string())
            } else {
                corrupt(format!("line {}: {e}", self.line_no))
            }
        })?;
        let is_trailer = v.as_object().is_some_and(|o| o.contains_key("trailer"));
        if !is_trailer {
            self.hash.update(&self.buf);
        }
        Ok(Some(v))
    }

    /// The next event, or None after the trailer (and the end of the file).
    pub fn next_event(&mut self) -> Result<Option<Event>, AppError> {
        if self.done {
            return match self.raw_line(false)? {
                None => Ok(None),
                Some(_) => Err(corrupt("data after the trailer")),
            };
        }
        let line = self.raw_line(false)?.ok_or_else(|| AppError::invalid("archive.truncated"))?;
        if let Json::Array(vals) = line {
            let (name, width, count) = self.current.as_mut().ok_or_else(|| corrupt("a row outside a table"))?;
            if vals.len() != *width {
                return Err(corrupt(format!("{name}: a row of {} values for {width} columns", vals.len())));
            }
            *count += 1;
            return Ok(Some(Event::Row(vals)));
        }
        let o = line.as_object().ok_or_else(|| corrupt(format!("line {}", self.line_no)))?;
        if let Some(name) = o.get("table") {
            if self.current.is_some() {
                return Err(corrupt("a table inside a table"));
            }
            let name = name.as_str().ok_or_else(|| corrupt("table name"))?.to_string();
            if self.seen.iter().any(|(n, _)| *n == name) {
                return Err(corrupt(format!("table {name} twice")));
            }
            let mut columns = Vec::new();
            for c in o.get("columns").and_then(Json::as_array).ok_or_else(|| corrupt("columns"))? {
                let pair = c.as_array().filter(|p| p.len() == 2).ok_or_else(|| corrupt("column"))?;
                let cname = pair[0].as_str().ok_or_else(|| corrupt("column name"))?.to_string();
                let class = match pair[1].as_str() {
                    Some("uuid") => Class::Uuid,
                    Some("int") => Class::Int,
                    Some("bool") => Class::Bool,
                    Some("text") => Class::Text,
                    _ => return Err(corrupt(format!("{name}.{cname}: column class"))),
                };
                columns.push((cname, class));
            }
            self.current = Some((name.clone(), columns.len(), 0));
            return Ok(Some(Event::Table { name, columns }));
        }
        if let Some(name) = o.get("end") {
            let (cur, _, count) = self.current.take().ok_or_else(|| corrupt("end outside a table"))?;
            if name.as_str() != Some(cur.as_str()) || o.get("rows").and_then(Json::as_u64) != Some(count) {
                return Err(corrupt(format!("{cur}: end marker does not match {count} rows")));
            }
            self.seen.push((cur, count));
            return Ok(Some(Event::End));
        }
        if let Some(t) = o.get("trailer") {
            if self.current.is_some() {
                return Err(corrupt("trailer inside a table"));
            }
            let sha = hex(&std::mem::take(&mut self.hash).finalize());
            if t.get("sha256").and_then(Json::as_str) != Some(sha.as_str()) {
                return Err(AppError::invalid("archive.checksum"));
            }
            let listed: Vec<(String, u64)> = t
                .get("tables")
                .and_then(Json::as_array)
                .ok_or_else(|| corrupt("trailer tables"))?
                .iter()
                .filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_u64()?)))
                .collect();
            if listed != self.seen {
                return Err(corrupt("trailer does not list the tables read"));
            }
            self.done = true;
            return Ok(Some(Event::Trailer { tables: listed }));
        }
        Err(corrupt(format!("line {}: unknown entry", self.line_no)))
    }
}

/// Read a whole archive, checking everything, without touching any database. Returns the
/// header and the tables with their row counts.
pub fn verify(path: &Path) -> Result<(Header, Vec<(String, u64)>), AppError> {
    let mut r = Reader::open(path)?;
    let mut tables = None;
    while let Some(e) = r.next_event()? {
        if let Event::Trailer { tables: t } = e {
            tables = Some(t);
        }
    }
    let tables = tables.ok_or_else(|| AppError::invalid("archive.truncated"))?;
    Ok((r.header, tables))
}
