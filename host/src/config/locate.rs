//! Maps between byte spans in a TOML file, line:column positions and key
//! paths, using the spanned document tree of the `toml` crate.
//!
//! Deserialisation errors come with a span and need a key path; semantic
//! errors come with a key path and need a span. Both go through here, so
//! every error names the same kind of location. Knows nothing about what
//! the keys mean.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::error::{KeyPath, Segment};

/// 1-based line and column (in characters) of a byte offset in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The key path of the innermost key or value whose span contains `span`
/// (for a tie, the deepest one). The root path when nothing contains it.
pub(crate) fn path_at(root: &DeTable<'_>, span: &Range<usize>) -> KeyPath {
    let mut best: Option<(usize, usize, KeyPath)> = None;
    search_table(root, &KeyPath::root(), 0, span, &mut best);
    best.map(|(_, _, path)| path).unwrap_or_default()
}

fn consider(
    node: &Range<usize>,
    path: &KeyPath,
    depth: usize,
    span: &Range<usize>,
    best: &mut Option<(usize, usize, KeyPath)>,
) {
    if node.start > span.start || span.end > node.end || node.is_empty() {
        return;
    }
    let len = node.end - node.start;
    let better = match best {
        None => true,
        Some((best_len, best_depth, _)) => {
            len < *best_len || (len == *best_len && depth > *best_depth)
        }
    };
    if better {
        *best = Some((len, depth, path.clone()));
    }
}

fn search_table(
    table: &DeTable<'_>,
    path: &KeyPath,
    depth: usize,
    span: &Range<usize>,
    best: &mut Option<(usize, usize, KeyPath)>,
) {
    for (key, value) in table.iter() {
        let child = path.key(key.get_ref().as_ref());
        consider(&key.span(), &child, depth + 1, span, best);
        consider(&value.span(), &child, depth + 1, span, best);
        search_value(value.get_ref(), &child, depth + 1, span, best);
    }
}

fn search_value(
    value: &DeValue<'_>,
    path: &KeyPath,
    depth: usize,
    span: &Range<usize>,
    best: &mut Option<(usize, usize, KeyPath)>,
) {
    match value {
        DeValue::Table(table) => search_table(table, path, depth, span, best),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let child = path.index(i);
                consider(&item.span(), &child, depth + 1, span, best);
                search_value(item.get_ref(), &child, depth + 1, span, best);
            }
        }
        _ => {}
    }
}

/// The span of the value at `path`; when the path does not exist (a value
/// left to its default), the span of its deepest existing ancestor (for a
/// table, its `[header]`). `None` when not even the first key exists.
pub(crate) fn span_of(root: &DeTable<'_>, path: &KeyPath) -> Option<Range<usize>> {
    let mut found = None;
    let mut current: Option<&DeValue<'_>> = None;
    for segment in &path.0 {
        let next = match (segment, current) {
            (Segment::Key(k), None) => root.get(k.as_str()),
            (Segment::Key(k), Some(DeValue::Table(t))) => t.get(k.as_str()),
            (Segment::Index(i), Some(DeValue::Array(a))) => a.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        found = Some(next.span());
        current = Some(next.get_ref());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# comment\n[auth]\ningest_tokens = [\"a\", \"b\"]\n\n[[plugins]]\nname = \"x\"\n[plugins.delivery]\ntimeout_s = 3\n\n[[plugins]]\nname = \"é\"\ndelivery.timeout_s = 4\n";

    fn root() -> DeTable<'static> {
        DeTable::parse(DOC)
            .expect("test document parses")
            .into_inner()
    }

    fn offset_of(needle: &str) -> usize {
        DOC.find(needle).expect("needle in test document")
    }

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let cases = [
            (0, (1, 1)),
            (offset_of("[auth]"), (2, 1)),
            (offset_of("\"b\""), (3, 23)),
            (offset_of("\"é\"") + 3, (11, 10)),
            (DOC.len() + 10, (13, 1)),
        ];
        for (offset, want) in cases {
            assert_eq!(line_col(DOC, offset), want, "offset {offset}");
        }
    }

    #[test]
    fn spans_map_to_the_innermost_key_path() {
        let root = root();
        let at = |needle: &str| {
            let start = offset_of(needle);
            path_at(&root, &(start..start + needle.len())).to_string()
        };
        assert_eq!(at("\"b\""), "auth.ingest_tokens[1]");
        assert_eq!(at("ingest_tokens"), "auth.ingest_tokens");
        assert_eq!(at("[auth]"), "auth");
        assert_eq!(at("[[plugins]]"), "plugins[0]");
        assert_eq!(at("[plugins.delivery]"), "plugins[0].delivery");
        assert_eq!(at("3"), "plugins[0].delivery.timeout_s");
        assert_eq!(at("4"), "plugins[1].delivery.timeout_s");
        assert_eq!(path_at(&root, &(0..1)).to_string(), "");
    }

    #[test]
    fn key_paths_map_to_the_value_or_nearest_ancestor() {
        let root = root();
        let span = |path: KeyPath| span_of(&root, &path).map(|s| &DOC[s]);
        let plugin = |i| KeyPath::root().key("plugins").index(i);
        assert_eq!(span(plugin(1).key("name")), Some("\"é\""));
        assert_eq!(span(plugin(0).key("delivery").key("timeout_s")), Some("3"));
        assert_eq!(span(plugin(0).key("events")), Some("[[plugins]]"));
        assert_eq!(
            span(KeyPath::root().key("auth").key("admin_tokens")),
            Some("[auth]")
        );
        assert_eq!(span(KeyPath::root().key("server").key("listen")), None);
    }
}
