//! The search tokenizer, shared by indexing and querying so both always agree.
//!
//! - Latin letters form words, lower-cased, and runs of digits are words of their own
//!   (`Zhang.Wei88` → `zhang wei 88`).
//! - CJK text is indexed as overlapping bigrams (`张伟明` → `张伟 伟明`), so every Chinese
//!   word of two or more characters is found without a dictionary (a dictionary segmenter
//!   misses names it does not know); a lone CJK character is indexed as itself.
//! - Phone numbers also add a reversed-digits token (`13800138000` → `p00083100831`), so the
//!   last digits of a number are a prefix query; a query that looks like a phone number in
//!   any format (`176-7226-3394`, `+86 176 7226 3394`, `0571 8888 6666`) is its digits.
//! - Traditional Chinese is indexed and queried as simplified (`張學友` finds `张学友`).
//! - Names (a record's title) add their pinyin: the full spelling and the initials of each
//!   Chinese run (`郑敏` → `zhengmin zm`).
//!
//! The output is plain space-separated tokens of letters and digits only, which SQLite FTS5
//! (unicode61) and PostgreSQL (`array_to_tsvector`) both take as they are.

/// Longest token kept (longer runs are cut).
const MAX_TOKEN: usize = 48;

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // Compatibility ideographs
        | 0x20000..=0x2FA1F) // Extensions B–F
}

/// A piece of text: a latin word or a run of CJK characters.
enum Run {
    Word(String),
    Cjk(Vec<char>),
}

/// Traditional characters as simplified ones (text without CJK is returned as it is).
fn simplified(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_cjk) {
        std::borrow::Cow::Owned(fast2s::convert(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn runs(text: &str) -> Vec<Run> {
    let text = simplified(text);
    let text = text.as_ref();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    let flush = |word: &mut String, cjk: &mut Vec<char>, out: &mut Vec<Run>| {
        if !word.is_empty() {
            out.push(Run::Word(word.chars().take(MAX_TOKEN).collect()));
            word.clear();
        }
        if !cjk.is_empty() {
            out.push(Run::Cjk(std::mem::take(cjk)));
        }
    };
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                flush(&mut word, &mut Vec::new(), &mut out);
            }
            cjk.push(c);
        } else if c.is_alphanumeric() {
            if !cjk.is_empty() {
                flush(&mut String::new(), &mut cjk, &mut out);
            }
            // Letters and digits are separate words ("wei88" → "wei 88"): fewer distinct
            // terms in the index, and a name matches inside an e-mail address.
            if word.chars().last().is_some_and(|l| l.is_ascii_digit() != c.is_ascii_digit()) {
                flush(&mut word, &mut Vec::new(), &mut out);
            }
            word.extend(c.to_lowercase());
        } else {
            flush(&mut word, &mut cjk, &mut out);
        }
    }
    flush(&mut word, &mut cjk, &mut out);
    out
}

/// Append the index tokens of `text` to `out` (space separated).
pub fn index_text(text: &str, out: &mut String) {
    for run in runs(text) {
        match run {
            Run::Word(w) => push(out, &w),
            Run::Cjk(cs) if cs.len() == 1 => push(out, &cs[0].to_string()),
            Run::Cjk(cs) => {
                for pair in cs.windows(2) {
                    push(out, &pair.iter().collect::<String>());
                }
            }
        }
    }
}

/// Append the pinyin of the Chinese runs of a name: per run its full spelling and its
/// initials (`郑敏 Zheng` → `zhengmin zm`). Characters without a reading are skipped.
pub fn index_pinyin(name: &str, out: &mut String) {
    use pinyin::ToPinyin;
    for run in runs(name) {
        let Run::Cjk(cs) = run else { continue };
        let (mut full, mut initials) = (String::new(), String::new());
        for p in cs.iter().collect::<String>().as_str().to_pinyin().flatten() {
            full.push_str(p.plain());
            initials.push_str(p.first_letter());
        }
        if initials.chars().count() >= 2 {
            push(out, &full.chars().take(MAX_TOKEN).collect::<String>());
            push(out, &initials.chars().take(MAX_TOKEN).collect::<String>());
        } else if !full.is_empty() {
            push(out, &full);
        }
    }
}

/// The digits of a query that looks like a phone number in any format: an optional `+`,
/// digits with spaces, dashes, dots or brackets between them, at least seven digits.
fn phone_digits(raw: &str) -> Option<String> {
    let body = raw.strip_prefix('+').unwrap_or(raw);
    if !body.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')) {
        return None;
    }
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 7 && digits.len() <= 20).then_some(digits)
}

fn reversed(digits: &str) -> String {
    format!("p{}", digits.chars().rev().collect::<String>())
}

/// Append the tokens of a phone number: its digits and its reversed digits (for suffixes).
pub fn index_phone(phone: &str, out: &mut String) {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return;
    }
    push(out, &digits);
    push(out, &format!("p{}", digits.chars().rev().collect::<String>()));
}

fn push(out: &mut String, tok: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(tok);
}

/// One alternative of a query term: a token, matched exactly or as a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alt {
    pub token: String,
    pub prefix: bool,
}

/// A search query: every group must match; within a group any alternative may.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub groups: Vec<Vec<Alt>>,
    /// The trimmed raw text, for substring matching of e-mails and phone numbers.
    pub raw: String,
}

/// Most groups a query may have (longer inputs are cut).
const MAX_GROUPS: usize = 16;

/// Tokenise a user's query. Words of two or more characters match as prefixes (single
/// letters and digits are ignored); CJK runs match by their bigrams; a
/// run of 3+ digits also matches the end of phone numbers.
pub fn parse_query(q: &str) -> Query {
    let raw: String = q.trim().chars().take(200).collect();
    let mut groups = Vec::new();
    // A phone number in any format: the number's end matches (`p` + reversed digits), with
    // the trunk `0` of a domestic number dropped (stored numbers carry the country code).
    if let Some(digits) = phone_digits(&raw) {
        let mut alts =
            vec![Alt { token: reversed(&digits), prefix: true }, Alt { token: digits.clone(), prefix: true }];
        // Without the trunk `0` of a domestic number, or without China's country code (a
        // number may be stored either way).
        if let Some(national) = digits.strip_prefix('0').filter(|d| !d.starts_with('0')) {
            alts.push(Alt { token: reversed(national), prefix: true });
        }
        let without_cc = digits.strip_prefix("0086").or_else(|| digits.strip_prefix("86"));
        if let Some(national) = without_cc.filter(|d| d.len() >= 7) {
            alts.push(Alt { token: reversed(national), prefix: true });
        }
        return Query { groups: vec![alts], raw };
    }
    for run in runs(&raw) {
        match run {
            // One letter or digit narrows nothing and would expand to most of the index.
            Run::Word(w) if w.chars().count() == 1 => {}
            Run::Word(w) => {
                // Short numbers match whole: as prefixes they would expand to every number in
                // the index that starts with them.
                let digits = w.chars().all(|c| c.is_ascii_digit());
                let mut alts = vec![Alt { token: w.clone(), prefix: !digits || w.len() >= 3 }];
                if w.len() >= 3 && w.chars().all(|c| c.is_ascii_digit()) {
                    alts.push(Alt { token: format!("p{}", w.chars().rev().collect::<String>()), prefix: true });
                }
                groups.push(alts);
            }
            Run::Cjk(cs) if cs.len() == 1 => {
                let t = cs[0].to_string();
                groups.push(vec![Alt { token: t, prefix: true }]);
            }
            Run::Cjk(cs) => {
                for pair in cs.windows(2) {
                    groups.push(vec![Alt { token: pair.iter().collect(), prefix: false }]);
                }
            }
        }
    }
    groups.truncate(MAX_GROUPS);
    Query { groups, raw }
}

impl Query {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
    /// The query matching only the end of phone numbers, when it is one number (3+ digits or
    /// a phone number): searched first, so that a number's end ranks above digits inside
    /// other values.
    pub fn phone_end(&self) -> Option<Query> {
        let [g] = self.groups.as_slice() else { return None };
        let ends: Vec<Alt> = g
            .iter()
            .filter(|a| a.token.starts_with('p') && a.token[1..].chars().all(|c| c.is_ascii_digit()))
            .cloned()
            .collect();
        (!ends.is_empty()).then(|| Query { groups: vec![ends], raw: self.raw.clone() })
    }
    /// Whether the query is a phone number (no substring search of the raw text is needed).
    pub fn is_phone(&self) -> bool {
        phone_digits(&self.raw).is_some()
    }
    /// Whether some group of the query matches these tokens (which field of a hit matched).
    pub fn matches_some(&self, tokens: &str) -> bool {
        let toks: Vec<&str> = tokens.split(' ').collect();
        self.groups.iter().any(|g| group_matches(g, &toks))
    }
    /// FTS5 MATCH syntax (tokens hold only letters and digits, so quoting is safe).
    pub fn to_fts5(&self) -> String {
        self.join(" AND ", " OR ", |a| format!("\"{}\"{}", a.token, if a.prefix { "*" } else { "" }))
    }
    /// PostgreSQL tsquery syntax.
    pub fn to_tsquery(&self) -> String {
        self.join(" & ", " | ", |a| format!("'{}'{}", a.token, if a.prefix { ":*" } else { "" }))
    }
    fn join(&self, and: &str, or: &str, f: impl Fn(&Alt) -> String) -> String {
        self.groups
            .iter()
            .map(|g| format!("({})", g.iter().map(&f).collect::<Vec<_>>().join(or)))
            .collect::<Vec<_>>()
            .join(and)
    }
    /// Whether the tokens of some indexed text satisfy this query (used to re-check hits
    /// against only the fields an actor may read).
    pub fn matches_tokens(&self, tokens: &str) -> bool {
        let toks: Vec<&str> = tokens.split(' ').collect();
        self.groups.iter().all(|g| group_matches(g, &toks))
    }
}

/// Whether any alternative of a query group matches one of the tokens.
fn group_matches(g: &[Alt], toks: &[&str]) -> bool {
    g.iter().any(|a| toks.iter().any(|t| if a.prefix { t.starts_with(&a.token) } else { *t == a.token }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(s: &str) -> String {
        let mut o = String::new();
        index_text(s, &mut o);
        o
    }

    #[test]
    fn tokens() {
        assert_eq!(idx("张伟明 Zhang.Wei88@Example.com"), "张伟 伟明 zhang wei 88 example com");
        assert_eq!(idx("销售合同ABC公司"), "销售 售合 合同 abc 公司");
        assert_eq!(idx("王"), "王");
        let mut p = String::new();
        index_phone("+86 138", &mut p);
        assert_eq!(p, "86138 p83168");
    }

    #[test]
    fn queries() {
        let q = parse_query("张伟");
        assert_eq!(q.to_fts5(), "(\"张伟\")");
        assert!(q.matches_tokens(&idx("张伟明")));
        assert!(!q.matches_tokens(&idx("张明伟")));
        let q = parse_query("8000");
        assert_eq!(q.to_tsquery(), "('8000':* | 'p0008':*)");
        let mut p = String::new();
        index_phone("13800138000", &mut p);
        assert!(q.matches_tokens(&p));
        let q = parse_query("zh 合同 \" OR * ( ' :");
        assert_eq!(q.groups.len(), 3, "zh, 合同 and the word or");
        assert!(parse_query("  \"'*() ").is_empty());
        assert_eq!(parse_query("wang f").groups.len(), 1, "one letter is ignored");
        assert_eq!(parse_query("lina12").to_fts5(), "(\"lina\"*) AND (\"12\")", "short numbers match whole");
        assert_eq!(parse_query("张").groups.len(), 1, "one Chinese character is a word");
    }

    #[test]
    fn phones_in_any_format() {
        let mut stored = String::new();
        index_phone("+8617672263394", &mut stored);
        let mut national = String::new();
        index_phone("17672263394", &mut national);
        for q in [
            "176-7226-3394",
            "+86 176 7226 3394",
            "17672263394",
            "(176) 7226.3394",
            "8617672263394",
            "0086 17672263394",
        ] {
            let q = parse_query(q);
            assert!(q.is_phone() && q.matches_tokens(&stored) && q.matches_tokens(&national), "{q:?}");
        }
        assert!(!parse_query("176-7226-3395").matches_tokens(&stored));
        let mut landline = String::new();
        index_phone("+8657188886666", &mut landline);
        assert!(parse_query("0571-8888 6666").matches_tokens(&landline));
        // The end of a number ranks first: a 4-digit query has a phone-end form.
        let q = parse_query("3394");
        assert_eq!(q.phone_end().unwrap().to_fts5(), "(\"p4933\"*)");
        assert!(parse_query("张伟").phone_end().is_none());
    }

    #[test]
    fn traditional_and_pinyin() {
        assert_eq!(idx("張學友"), idx("张学友"));
        assert!(parse_query("張學友").matches_tokens(&idx("张学友")));
        let mut py = String::new();
        index_pinyin("郑敏", &mut py);
        assert_eq!(py, "zhengmin zm");
        for q in ["zhengmin", "zm", "zheng"] {
            assert!(parse_query(q).matches_tokens(&py), "{q}");
        }
        let mut co = String::new();
        index_pinyin("沈阳腾飞物流有限公司", &mut co);
        assert!(parse_query("sytf").matches_tokens(&co), "{co}");
    }
}
