//! Typed field values: parsed from JSON input by field type ("parse, don't validate"), and
//! turned back into JSON for output. Every rejection carries a stable `field.*` code.

use crate::meta::{FieldDef, FieldType};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Value as Json};
use uuid::Uuid;

/// A valid value of some field. `Null` is the absence of a value (empty strings become `Null`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// text, long text, email (lower-cased), phone (normalised), url.
    Text(String),
    Int(i64),
    /// decimal and percent, scaled by the field's scale (12.5 at scale 2 is 1250).
    Scaled(i64),
    Money {
        minor: i64,
        currency: String,
    },
    Bool(bool),
    Date(NaiveDate),
    /// UTC microseconds since the epoch.
    DateTime(i64),
    /// A select option key.
    Choice(String),
    /// Multi-select option keys or tags, without duplicates, in input order.
    List(Vec<String>),
    /// A relation target or a user.
    Ref(Uuid),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

type VResult = Result<Value, &'static str>;

/// Parse a JSON input value for `field`. Errors are stable codes (`field.invalid_email`, …).
pub fn parse_input(field: &FieldDef, v: &Json) -> VResult {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match field.ftype {
        FieldType::Text | FieldType::LongText => {
            let s = as_text(v)?;
            text_value(field, s.trim(), field.ftype == FieldType::Text)
        }
        FieldType::Email => {
            let s = as_text(v)?.trim().to_lowercase();
            if s.is_empty() {
                return Ok(Value::Null);
            }
            if !is_email(&s) {
                return Err("field.invalid_email");
            }
            Ok(Value::Text(s))
        }
        FieldType::Phone => {
            let s = match v {
                Json::Number(n) if n.is_u64() => n.to_string(),
                _ => as_text(v)?.to_string(),
            };
            match normalize_phone(&s)? {
                Some(p) => Ok(Value::Text(p)),
                None => Ok(Value::Null),
            }
        }
        FieldType::Url => {
            let s = as_text(v)?.trim();
            if s.is_empty() {
                return Ok(Value::Null);
            }
            normalize_url(s, field.max_length()).map(Value::Text)
        }
        FieldType::Integer => match v {
            Json::Number(n) => n.as_i64().map(Value::Int).ok_or("field.invalid_integer"),
            Json::String(s) if s.trim().is_empty() => Ok(Value::Null),
            Json::String(s) => {
                s.trim().replace(',', "").parse::<i64>().map(Value::Int).map_err(|_| "field.invalid_integer")
            }
            _ => Err("field.invalid_integer"),
        },
        FieldType::Decimal | FieldType::Percent => {
            let s = number_text(v)?;
            if s.is_empty() {
                return Ok(Value::Null);
            }
            let s = if field.ftype == FieldType::Percent { s.trim_end_matches('%').trim().to_string() } else { s };
            parse_scaled(&s, field.scale()).map(Value::Scaled)
        }
        FieldType::Currency => parse_money(field, v),
        FieldType::Boolean => match v {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::Number(n) if n.as_i64() == Some(0) => Ok(Value::Bool(false)),
            Json::Number(n) if n.as_i64() == Some(1) => Ok(Value::Bool(true)),
            Json::String(s) => match s.trim().to_lowercase().as_str() {
                "" => Ok(Value::Null),
                "true" | "yes" | "y" | "1" | "是" | "对" => Ok(Value::Bool(true)),
                "false" | "no" | "n" | "0" | "否" | "不" => Ok(Value::Bool(false)),
                _ => Err("field.invalid_boolean"),
            },
            _ => Err("field.invalid_boolean"),
        },
        FieldType::Date => {
            let s = as_text(v)?.trim();
            if s.is_empty() {
                return Ok(Value::Null);
            }
            parse_date(s).map(Value::Date).ok_or("field.invalid_date")
        }
        FieldType::DateTime => {
            let s = as_text(v)?.trim();
            if s.is_empty() {
                return Ok(Value::Null);
            }
            parse_datetime(s).map(Value::DateTime).ok_or("field.invalid_datetime")
        }
        FieldType::Select => {
            let s = as_text(v)?.trim();
            if s.is_empty() {
                return Ok(Value::Null);
            }
            resolve_choice(field, s).map(Value::Choice)
        }
        FieldType::MultiSelect => {
            let items = as_list(v)?;
            let mut out: Vec<String> = Vec::new();
            for it in items {
                let k = resolve_choice(field, it.trim())?;
                if !out.contains(&k) {
                    out.push(k);
                }
            }
            Ok(if out.is_empty() { Value::Null } else { Value::List(out) })
        }
        FieldType::Tags => {
            let items = as_list(v)?;
            let mut out: Vec<String> = Vec::new();
            for it in items {
                let t = it.trim();
                if t.is_empty() {
                    continue;
                }
                if t.chars().count() > 50 || t.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
                    return Err("field.invalid_tag");
                }
                if !out.iter().any(|o| o == t) {
                    out.push(t.to_string());
                }
            }
            if out.len() > 50 {
                return Err("field.too_many_tags");
            }
            Ok(if out.is_empty() { Value::Null } else { Value::List(out) })
        }
        FieldType::Relation | FieldType::User => {
            let s = as_text(v)?.trim();
            if s.is_empty() {
                return Ok(Value::Null);
            }
            Uuid::parse_str(s).map(Value::Ref).map_err(|_| "field.invalid_reference")
        }
    }
}

fn as_text(v: &Json) -> Result<&str, &'static str> {
    v.as_str().ok_or("field.expected_text")
}

fn text_value(field: &FieldDef, s: &str, single_line: bool) -> VResult {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    if s.chars().count() > field.max_length() {
        return Err("field.too_long");
    }
    if s.chars().any(|c| c == '\0' || (c.is_control() && !(c == '\n' || c == '\t' || (!single_line && c == '\r')))) {
        return Err("field.invalid_characters");
    }
    if single_line && s.contains('\n') {
        return Err("field.single_line");
    }
    Ok(Value::Text(s.to_string()))
}

fn number_text(v: &Json) -> Result<String, &'static str> {
    match v {
        Json::Number(n) => Ok(n.to_string()),
        Json::String(s) => Ok(s.trim().replace(',', "")),
        _ => Err("field.invalid_number"),
    }
}

fn as_list(v: &Json) -> Result<Vec<&str>, &'static str> {
    match v {
        Json::Array(a) => {
            if a.len() > 500 {
                return Err("field.too_many_values");
            }
            a.iter().map(|x| x.as_str().ok_or("field.expected_text")).collect()
        }
        Json::String(s) => Ok(split_list(s)),
        _ => Err("field.expected_list"),
    }
}

/// What separates tags (or multi-select options) typed as one text: `,` `;` `、` `|` and the
/// full-width `，` `；`.
pub const LIST_SEPARATORS: [char; 6] = [',', '，', ';', '；', '、', '|'];

/// Split tags or multi-select options typed as one text into trimmed, non-empty items. The one
/// rule for every such input: a string given to the API or a form, the record page's editor,
/// an import cell. (A JSON list is taken as it is, one item per element.)
pub fn split_list(s: &str) -> Vec<&str> {
    s.split(LIST_SEPARATORS).map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// A select option by key, or by its label in either language (case-insensitive).
fn resolve_choice(field: &FieldDef, s: &str) -> Result<String, &'static str> {
    if let Some(c) = field.choice(s) {
        return Ok(c.key.clone());
    }
    let lower = s.to_lowercase();
    field
        .options
        .choices
        .iter()
        .find(|c| c.label.en.to_lowercase() == lower || c.label.zh == s)
        .map(|c| c.key.clone())
        .ok_or("field.invalid_option")
}

/// A basic but strict e-mail check (already trimmed and lower-cased).
pub fn is_email(s: &str) -> bool {
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || local.contains('@') || local.starts_with('.') || local.ends_with('.') {
        return false;
    }
    if local.contains("..") || local.contains(['"', '(', ')', ',', ':', ';', '<', '>', '[', ']', '\\']) {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()))
}

/// Normalise a phone number: keep digits and a leading `+`, drop spaces, dashes, dots and
/// brackets. 5–20 digits. `Ok(None)` for an empty input.
pub fn normalize_phone(s: &str) -> Result<Option<String>, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '+' if i == 0 => out.push('+'),
            '0'..='9' => out.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{3000}' => {}
            _ => return Err("field.invalid_phone"),
        }
    }
    let digits = out.trim_start_matches('+').len();
    if !(5..=20).contains(&digits) {
        return Err("field.invalid_phone");
    }
    Ok(Some(out))
}

fn normalize_url(s: &str, max: usize) -> Result<String, &'static str> {
    let with_scheme = if s.contains("://") { s.to_string() } else { format!("https://{s}") };
    let u = url::Url::parse(&with_scheme).map_err(|_| "field.invalid_url")?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(|h| !h.contains('.') && h != "localhost") {
        return Err("field.invalid_url");
    }
    let out = u.to_string();
    if out.chars().count() > max {
        return Err("field.too_long");
    }
    Ok(out)
}

/// Parse a decimal number into an integer scaled by `scale` digits, exactly.
pub fn parse_scaled(s: &str, scale: u8) -> Result<i64, &'static str> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("field.invalid_number");
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale as usize {
        return Err("field.too_many_decimals");
    }
    let mut digits = String::with_capacity(int.len() + scale as usize);
    digits.push_str(if int.is_empty() { "0" } else { int });
    digits.push_str(frac);
    for _ in frac.len()..scale as usize {
        digits.push('0');
    }
    let n: i64 = digits.parse().map_err(|_| "field.out_of_range")?;
    Ok(if neg { -n } else { n })
}

/// Format a scaled integer as a decimal string without trailing zeros ("12.5", "-3", "0.07").
pub fn format_scaled(n: i64, scale: u8) -> String {
    if scale == 0 {
        return n.to_string();
    }
    let neg = n < 0;
    let abs = n.unsigned_abs().to_string();
    let s = scale as usize;
    let padded = if abs.len() <= s { format!("{}{}", "0".repeat(s + 1 - abs.len()), abs) } else { abs };
    let (i, f) = padded.split_at(padded.len() - s);
    let f = f.trim_end_matches('0');
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(i);
    if !f.is_empty() {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// ISO 4217 codes are three upper-case ASCII letters.
pub fn is_currency_code(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Minor-unit digits of a currency (0 for JPY, KRW, …; 3 for KWD, …; else 2).
pub fn currency_digits(code: &str) -> u8 {
    match code {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "PYG" => 0,
        "KWD" | "BHD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
        _ => 2,
    }
}

fn parse_money(field: &FieldDef, v: &Json) -> VResult {
    let default_cur = field.options.currency.clone().unwrap_or_else(|| "CNY".into());
    let (amount, minor, currency) = match v {
        Json::Object(m) => {
            if m.keys().any(|k| !matches!(k.as_str(), "minor" | "amount" | "currency")) {
                return Err("field.invalid_money");
            }
            let cur = match m.get("currency") {
                Some(Json::String(c)) => c.trim().to_uppercase(),
                None | Some(Json::Null) => default_cur,
                _ => return Err("field.invalid_currency"),
            };
            match (m.get("minor"), m.get("amount")) {
                (Some(Json::Number(n)), None) => (None, Some(n.as_i64().ok_or("field.invalid_money")?), cur),
                (None, Some(a)) => (Some(number_text(a)?), None, cur),
                _ => return Err("field.invalid_money"),
            }
        }
        Json::Number(_) | Json::String(_) => {
            let t = number_text(v)?;
            if t.is_empty() {
                return Ok(Value::Null);
            }
            // "CNY 12.50" or "12.50 USD" or "¥12.50"
            let (cur, num) = split_currency(&t, &default_cur);
            (Some(num), None, cur)
        }
        _ => return Err("field.invalid_money"),
    };
    if !is_currency_code(&currency) {
        return Err("field.invalid_currency");
    }
    let minor = match (minor, amount) {
        (Some(m), _) => m,
        (None, Some(a)) => parse_scaled(&a, currency_digits(&currency))?,
        (None, None) => return Err("field.invalid_money"),
    };
    Ok(Value::Money { minor, currency })
}

fn split_currency(t: &str, default: &str) -> (String, String) {
    let t = t.trim();
    for (sym, code) in [("¥", "CNY"), ("￥", "CNY"), ("$", "USD"), ("€", "EUR"), ("£", "GBP")] {
        if let Some(rest) = t.strip_prefix(sym) {
            return (code.into(), rest.trim().into());
        }
    }
    let alpha: String = t.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    if alpha.len() == 3 {
        let num: String = t.chars().filter(|c| !c.is_ascii_alphabetic()).collect();
        return (alpha.to_uppercase(), num.trim().into());
    }
    (default.into(), t.into())
}

/// `YYYY-MM-DD` (also `YYYY/MM/DD` and `YYYY.MM.DD`, as spreadsheets write them).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d"].iter().find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

/// RFC 3339 (any offset, stored as UTC), or a bare date meaning midnight UTC.
pub fn parse_datetime(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc).timestamp_micros());
    }
    if let Ok(ndt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Some(ndt.and_utc().timestamp_micros());
    }
    parse_date(s).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc().timestamp_micros())
}

/// Format UTC microseconds as RFC 3339 with a `Z`.
pub fn format_datetime(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// The JSON output form of a value of `field`.
pub fn to_json(field: &FieldDef, v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Text(s) | Value::Choice(s) => Json::String(s.clone()),
        Value::Int(n) => json!(n),
        Value::Scaled(n) => Json::String(format_scaled(*n, field.scale())),
        Value::Money { minor, currency } => json!({
            "minor": minor,
            "currency": currency,
            "amount": format_scaled(*minor, currency_digits(currency)),
        }),
        Value::Bool(b) => json!(b),
        Value::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
        Value::DateTime(m) => Json::String(format_datetime(*m)),
        Value::List(l) => json!(l),
        Value::Ref(id) => Json::String(id.to_string()),
    }
}

/// The text a value contributes to the search index (empty for non-text values).
pub fn search_text(v: &Value) -> Option<&str> {
    match v {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{Choice, FieldOptions, Label};
    use std::sync::Arc;

    fn field(t: FieldType) -> FieldDef {
        let mut f = (*crate::meta::ObjectDef::builtin_fields(Uuid::nil())[0]).clone();
        f.ftype = t;
        f.builtin = false;
        f.api_name = "x".into();
        f.options = FieldOptions {
            choices: vec![Choice {
                key: "vip".into(),
                label: Label::new("VIP", "重要"),
                color: "red".into(),
                archived: false,
            }],
            ..Default::default()
        };
        f
    }

    #[test]
    fn scaled_round_trip() {
        assert_eq!(parse_scaled("12.5", 2), Ok(1250));
        assert_eq!(parse_scaled("-0.07", 2), Ok(-7));
        assert_eq!(parse_scaled(".5", 1), Ok(5));
        assert_eq!(parse_scaled("1.234", 2), Err("field.too_many_decimals"));
        assert_eq!(parse_scaled("1.2300", 2), Ok(123));
        assert_eq!(parse_scaled("abc", 2), Err("field.invalid_number"));
        assert_eq!(parse_scaled("99999999999999999999", 2), Err("field.out_of_range"));
        assert_eq!(format_scaled(1250, 2), "12.5");
        assert_eq!(format_scaled(-7, 2), "-0.07");
        assert_eq!(format_scaled(300, 2), "3");
    }

    #[test]
    fn emails_and_phones() {
        assert!(is_email("zhang.wei@example.com"));
        assert!(is_email("王@例子.中国"));
        for bad in ["a@b", "@x.com", "a b@x.com", "a@@x.com", "a@x..com", "a@-x.com", "a@x.1"] {
            assert!(!is_email(bad), "{bad}");
        }
        assert_eq!(normalize_phone("+86 138-0013 8000"), Ok(Some("+8613800138000".into())));
        assert_eq!(normalize_phone("(010) 6552.1234"), Ok(Some("01065521234".into())));
        assert_eq!(normalize_phone("12"), Err("field.invalid_phone"));
        assert_eq!(normalize_phone("138abc"), Err("field.invalid_phone"));
        assert_eq!(normalize_phone(" "), Ok(None));
    }

    #[test]
    fn parse_by_type() {
        let f = field(FieldType::Select);
        assert_eq!(parse_input(&f, &json!("重要")), Ok(Value::Choice("vip".into())));
        assert_eq!(parse_input(&f, &json!("nope")), Err("field.invalid_option"));
        let f = field(FieldType::Tags);
        assert_eq!(parse_input(&f, &json!("a, b，a")), Ok(Value::List(vec!["a".into(), "b".into()])));
        let abcde = Value::List(["a", "b", "c", "d", "e"].map(String::from).to_vec());
        assert_eq!(parse_input(&f, &json!(" a、b;c,d|e ；")), Ok(abcde));
        assert_eq!(parse_input(&f, &json!(["a;b"])), Ok(Value::List(vec!["a;b".into()])), "a list stays a list");
        assert_eq!(split_list("重点客户、华北 | |"), ["重点客户", "华北"]);
        let f = field(FieldType::Currency);
        assert_eq!(
            parse_input(&f, &json!({"amount": "12.34", "currency": "usd"})),
            Ok(Value::Money { minor: 1234, currency: "USD".into() })
        );
        assert_eq!(parse_input(&f, &json!("¥8")), Ok(Value::Money { minor: 800, currency: "CNY".into() }));
        assert_eq!(parse_input(&f, &json!({"minor": 5, "currency": "rmb1"})), Err("field.invalid_currency"));
        let f = field(FieldType::Url);
        assert_eq!(parse_input(&f, &json!("example.com")), Ok(Value::Text("https://example.com/".into())));
        assert_eq!(parse_input(&f, &json!("javascript:alert(1)")), Err("field.invalid_url"));
        let f = field(FieldType::Text);
        assert_eq!(parse_input(&f, &json!("a\u{0}b")), Err("field.invalid_characters"));
        assert_eq!(parse_input(&f, &json!("x".repeat(256))), Err("field.too_long"));
        assert_eq!(parse_input(&f, &json!(12)), Err("field.expected_text"));
        assert_eq!(parse_input(&f, &json!("  ")), Ok(Value::Null));
        let f = field(FieldType::DateTime);
        let v = parse_input(&f, &json!("2026-01-02T03:04:05+08:00")).unwrap();
        assert_eq!(to_json(&f, &v), json!("2026-01-01T19:04:05Z"));
        let f = field(FieldType::Integer);
        assert_eq!(parse_input(&f, &json!(1.5)), Err("field.invalid_integer"));
        let _ = Arc::new(f);
    }
}
