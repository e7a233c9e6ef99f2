//! The search tokenizer, shared by indexing and querying so both always agree.
//!
//! - Latin letters form words, lower-cased, and runs of digits are words of their own
//!   (`Zhang.Wei88` → `zhang wei 88`).
//! - CJK text is indexed as overlapping bigrams (`张伟明` → `张伟 伟明`), so every Chinese
//!   word of two or more characters is found without a dictionary (a dictionary segmenter
//!   misses names it does not know); a lone CJK character is indexed as itself.
//! - Phone numbers also add a reversed-digits token (`13800138000` → `p00083100831`), so the
//!   last digits of a number are a prefix query.
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

fn runs(text: &str) -> Vec<Run> {
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
        self.groups.iter().all(|g| {
            g.iter().any(|a| toks.iter().any(|t| if a.prefix { t.starts_with(&a.token) } else { *t == a.token }))
        })
    }
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
}
