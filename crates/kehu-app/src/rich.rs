//! Rich text (notes, e-mail logs): HTML reduced to an allow-list of formatting tags, links that
//! cannot run script and open without referrer, no attributes beyond `href`. Plain text typed
//! without an editor becomes paragraphs. The same cleaner runs on write and again on display.

use std::sync::LazyLock;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::empty();
    b.add_tags([
        "p",
        "br",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "s",
        "ul",
        "ol",
        "li",
        "a",
        "blockquote",
        "code",
        "pre",
        "div",
    ])
    .add_tag_attributes("a", ["href"])
    .url_schemes(["http", "https", "mailto", "tel"].into_iter().collect())
    .link_rel(Some("noopener noreferrer nofollow"))
    .strip_comments(true);
    b
});

/// Clean `input`; `None` when nothing readable is left.
pub fn sanitize(input: &str) -> Option<String> {
    let html = if input.contains('<') { input.to_string() } else { paragraphs(input) };
    let clean = CLEANER.clean(&html).to_string();
    (!plain(&clean).trim().is_empty()).then_some(clean)
}

/// Plain text typed into a textarea: escaped, blank lines start paragraphs, lines break.
fn paragraphs(text: &str) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", esc(p.trim()).replace('\n', "<br>")))
        .collect()
}

/// The text of cleaned HTML, for previews, search and mentions: tags dropped, block ends and
/// `<br>` become line breaks, the entities the cleaner writes decoded.
pub fn plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim_start_matches('/').to_ascii_lowercase();
        let name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        if matches!(name, "br" | "p" | "li" | "div" | "blockquote" | "pre") && !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_and_handlers_are_removed() {
        let out = sanitize(r#"<p onclick="x()">Hi <script>alert(1)</script><b>there</b> <a href="javascript:alert(1)">x</a> <img src=x onerror=alert(1)></p>"#).unwrap();
        assert!(
            !out.contains("script") && !out.contains("onclick") && !out.contains("onerror") && !out.contains("img"),
            "{out}"
        );
        assert!(!out.contains("javascript"), "{out}");
        assert!(out.contains("<b>there</b>"), "{out}");
    }

    #[test]
    fn links_get_rel_and_plain_text_becomes_paragraphs() {
        let out = sanitize(r#"<a href="https://kehu.example">site</a>"#).unwrap();
        assert!(out.contains(r#"rel="noopener noreferrer nofollow""#), "{out}");
        assert_eq!(sanitize("a & b > c\n\nline1\nline2").unwrap(), "<p>a &amp; b &gt; c</p><p>line1<br>line2</p>");
        assert_eq!(sanitize("<p> </p>"), None);
    }

    #[test]
    fn plain_text_of_html() {
        assert_eq!(plain("<p>Call @张伟 &amp; co</p><p>next</p>"), "Call @张伟 & co\nnext");
    }
}
