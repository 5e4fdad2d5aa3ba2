//! Reading EWS answers: one size cap, no DTD (so no entity expansion), and navigation by
//! local names — Exchange versions, proxies and Microsoft's own samples differ in
//! prefixes and even in the SOAP namespace, never in local names.

use quick_xml::escape::escape;
use roxmltree::{Document, Node, ParsingOptions};

use crate::error::EwsError;

/// The largest answer read: a page of a calendar view is far smaller.
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// Parses an answer. A DTD is refused (entity-expansion attacks), as is anything over
/// [`MAX_ANSWER`], an HTML error page, or text that is not XML.
pub fn parse(text: &str) -> Result<Document<'_>, EwsError> {
    if text.len() > MAX_ANSWER {
        return Err(EwsError::TooLarge { limit: MAX_ANSWER });
    }
    // Whitespace (or a byte-order mark) before the declaration is tolerated; a
    // declaration naming an XML version that does not exist is not.
    let text = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    check_declaration(text)?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: 4_000_000,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| {
        let start = text.trim_start();
        if start
            .get(..15)
            .is_some_and(|s| s.eq_ignore_ascii_case("<!doctype html>"))
            || start
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("<html"))
        {
            EwsError::Malformed("an HTML page, not a SOAP answer (a proxy or a login page?)".into())
        } else {
            EwsError::Malformed(e.to_string())
        }
    })?;
    let root = doc.root_element();
    if root.tag_name().name() == "html" {
        return Err(EwsError::Malformed(
            "an HTML page, not a SOAP answer (a proxy or a login page?)".into(),
        ));
    }
    Ok(doc)
}

/// The XML declaration, if there is one, must name version 1.x.
fn check_declaration(text: &str) -> Result<(), EwsError> {
    let Some(rest) = text.strip_prefix("<?xml") else {
        return Ok(());
    };
    let declaration = rest.split("?>").next().unwrap_or(rest);
    let version = declaration
        .split_once("version")
        .map(|(_, v)| v.trim_start().trim_start_matches('=').trim_start())
        .and_then(|v| {
            let quote = v.chars().next().filter(|q| matches!(q, '"' | '\''))?;
            v[quote.len_utf8()..].split(quote).next()
        });
    match version {
        Some(v)
            if v.starts_with("1.") && v.len() > 2 && v[2..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(())
        }
        Some(v) => Err(EwsError::Malformed(format!(
            "the XML declaration names version `{v}`, not 1.0"
        ))),
        None => Err(EwsError::Malformed(
            "an XML declaration without a version".into(),
        )),
    }
}

/// The first child element named `name`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The child elements named `name`.
pub fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The child elements.
pub fn elements<'a, 'i: 'a>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(Node::is_element)
}

/// The trimmed text of the child named `name`, if it has any.
pub fn text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The first element named `name` anywhere below `node`.
pub fn find<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.descendants()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// An attribute read as a boolean (`true`/`false`, `1`/`0`).
pub fn flag(node: Node<'_, '_>, attribute: &str) -> Option<bool> {
    node.attribute(attribute).and_then(parse_bool)
}

/// `true`/`false`/`1`/`0`.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// A tiny element writer for requests and the simulator's answers: quick-xml escapes;
/// the structure is the few lines below.
#[derive(Debug, Default)]
pub struct Writer(String);

impl Writer {
    fn start(&mut self, name: &str, attributes: &[(&str, &str)], empty: bool) -> &mut Self {
        self.0.push('<');
        self.0.push_str(name);
        for (k, v) in attributes {
            self.0.push(' ');
            self.0.push_str(k);
            self.0.push_str("=\"");
            self.0.push_str(&escape(*v));
            self.0.push('"');
        }
        self.0.push_str(if empty { "/>" } else { ">" });
        self
    }

    /// `<name attr="…">`.
    pub fn open(&mut self, name: &str, attributes: &[(&str, &str)]) -> &mut Self {
        self.start(name, attributes, false)
    }

    /// `<name attr="…"/>`.
    pub fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) -> &mut Self {
        self.start(name, attributes, true)
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.0.push_str("</");
        self.0.push_str(name);
        self.0.push('>');
        self
    }

    /// `<name>text</name>`.
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name, &[]);
        self.0.push_str(&escape(text));
        self.close(name)
    }

    /// Escaped text.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.0.push_str(&escape(text));
        self
    }

    /// `<name attr="…">text</name>`.
    pub fn leaf_with(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) -> &mut Self {
        self.open(name, attributes);
        self.0.push_str(&escape(text));
        self.close(name)
    }

    /// Raw XML, already well-formed.
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.0.push_str(xml);
        self
    }

    /// The text written.
    pub fn done(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/run.sh` (notification_bodies): a declaration whose version is not
    /// quoted but begins with a multi-byte character cut a string inside that character.
    #[test]
    fn an_unquoted_or_odd_version_is_refused_not_panicked_on() {
        for text in [
            " <?xml version=\u{79b}ncrypts>\n",
            "<?xml version=\u{79b}ncrypts>",
            "<?xml version=1.0?><a/>",
            "<?xml version=\"\u{e5}\"?><a/>",
            "<?xml version='1.0\u{e5}'?><a/>",
        ] {
            assert!(check_declaration(text.trim_start()).is_err(), "{text:?}");
        }
        assert!(check_declaration("<?xml version=\"1.0\"?><a/>").is_ok());
        assert!(check_declaration("<?xml version='1.1' encoding='utf-8'?><a/>").is_ok());
    }
}
