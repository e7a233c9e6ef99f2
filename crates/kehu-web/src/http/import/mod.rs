//! Import pages (issue #5): upload → mapping → dry run → start → progress → report (failed
//! rows, undo), and the history of imports per object.

use crate::i18n::{I18n, Lang};
use kehu_app::import::RowIssue;

/// A row problem in the user's language: the column, then the reason.
pub fn issue_text(i18n: &I18n, lang: Lang, i: &RowIssue) -> String {
    let reason = match i.first_row {
        Some(first) => i18n.get(lang, "import-duplicate-first-seen", &[("row", &first.to_string())]),
        None => i18n.error(lang, &i.code),
    };
    if i.column.is_empty() {
        reason
    } else {
        format!("{}: {reason}", i.column)
    }
}
