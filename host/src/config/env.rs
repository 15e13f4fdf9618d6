//! `${VAR}` and `${file:PATH}` expansion in the string values of a config
//! document.
//!
//! Runs on the parsed TOML tree before it is deserialised, so a variable
//! can stand anywhere a string can (`listen = "${LISTEN}"`), and an unset
//! variable is reported at the exact string that names it. `${file:PATH}`
//! stands for the contents of a file (a mounted secret: a token, a signing
//! secret). `$${` is a literal `${`. Keys are never expanded. The
//! environment and the files are functions so tests can inject them; this
//! module never reads the process environment or the file system.

use std::borrow::Cow;

use toml::de::{DeTable, DeValue};

use super::error::{Issue, KeyPath};

/// Looks up an environment variable; `None` when unset.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the file a `${file:PATH}` names (PATH as written); why not when
/// it cannot.
pub(crate) type FileLookup<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Where expanded values come from.
#[derive(Clone, Copy)]
pub(crate) struct Sources<'a> {
    /// `${VAR}`.
    pub(crate) env: EnvLookup<'a>,
    /// `${file:PATH}`.
    pub(crate) files: FileLookup<'a>,
}

/// Expand every string value in `table`, in place. Returns the problem that
/// comes first in the file, if any.
pub(crate) fn expand_table(table: &mut DeTable<'_>, env: Sources<'_>) -> Result<(), Issue> {
    let mut issues = Vec::new();
    walk_table(table, &KeyPath::root(), env, &mut issues);
    match issues
        .into_iter()
        .min_by_key(|i| i.span.as_ref().map_or(0, |s| s.start))
    {
        Some(issue) => Err(issue),
        None => Ok(()),
    }
}

fn walk_table(table: &mut DeTable<'_>, path: &KeyPath, env: Sources<'_>, issues: &mut Vec<Issue>) {
    for (key, value) in table.iter_mut() {
        let child = path.key(key.get_ref().as_ref());
        let span = value.span();
        walk_value(value.get_mut(), span, &child, env, issues);
    }
}

fn walk_value(
    value: &mut DeValue<'_>,
    span: std::ops::Range<usize>,
    path: &KeyPath,
    env: Sources<'_>,
    issues: &mut Vec<Issue>,
) {
    match value {
        DeValue::String(s) => match expand(s, env) {
            Ok(Some(expanded)) => *s = Cow::Owned(expanded),
            Ok(None) => {}
            Err(message) => issues.push(Issue {
                path: path.clone(),
                span: Some(span),
                message,
            }),
        },
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let span = item.span();
                walk_value(item.get_mut(), span, &path.index(i), env, issues);
            }
        }
        DeValue::Table(table) => walk_table(table, path, env, issues),
        _ => {}
    }
}

/// Expand `${VAR}` and `${file:PATH}` references in `s`. `Ok(None)` when
/// `s` has none (and no `$${` escape), so unchanged strings are not copied.
pub(crate) fn expand(s: &str, sources: Sources<'_>) -> Result<Option<String>, String> {
    if !s.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err(format!(
                    "unterminated ${{ in {s:?} (write $${{ for a literal ${{)"
                ));
            };
            let name = &tail[..end];
            if let Some(file) = name.strip_prefix("file:") {
                if file.is_empty() {
                    return Err(format!("${{file:}} in {s:?} names no file"));
                }
                out.push_str(&(sources.files)(file)?);
                rest = &tail[end + 1..];
                continue;
            }
            if !is_var_name(name) {
                return Err(format!(
                    "invalid environment variable name {name:?} in ${{…}} (write $${{ for a literal ${{)"
                ));
            }
            match (sources.env)(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("environment variable {name} is not set")),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

/// `message` with every environment value in `read` (name, value) shown as
/// the `${NAME}` it was read from, longest values first. Values under 3
/// bytes are left alone: too short to be a secret, too likely to match
/// unrelated text.
/// Each value is also looked for as a message would quote it (`{:?}`:
/// line breaks and quotes escaped), and line by line (a token file holds
/// one token per line, and a message may quote one of them).
pub(crate) fn redact(message: &str, read: &[(String, String)]) -> String {
    let mut forms: Vec<(String, &str)> = Vec::new();
    for (name, value) in read {
        let lines = value.lines().map(str::trim).filter(|l| *l != value);
        for piece in std::iter::once(value.as_str()).chain(lines) {
            let quoted = format!("{piece:?}");
            for form in [piece, &quoted[1..quoted.len() - 1]] {
                if form.len() >= 3 {
                    forms.push((form.to_owned(), name));
                }
            }
        }
    }
    forms.sort_by_key(|(form, _)| std::cmp::Reverse(form.len()));
    let mut out = message.to_owned();
    for (form, name) in forms {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), &format!("${{{name}}}"));
        }
    }
    out
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the portable shell variable name.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_redacted_as_messages_quote_it_and_line_by_line() {
        let read = vec![(
            "file:tokens".to_owned(),
            "tok-AAAA\ntok-\"BBBB\"\n".to_owned(),
        )];
        let quoted = format!("invalid type: string {:?}, expected u64", read[0].1);
        let out = redact(&quoted, &read);
        assert_eq!(out, "invalid type: string \"${file:tokens}\", expected u64");
        let one = redact("token tok-AAAA is also an admin token", &read);
        assert_eq!(one, "token ${file:tokens} is also an admin token");
        let other = redact("value \"tok-\\\"BBBB\\\"\" refused", &read);
        assert!(!other.contains("BBBB"), "{other}");
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            "DOLLAR" => Some("${TOKEN}".into()),
            _ => None,
        }
    }

    fn files(path: &str) -> Result<String, String> {
        match path {
            "/run/secrets/admin" => Ok("from-a-file".into()),
            other => Err(format!("cannot read {other}: No such file")),
        }
    }

    const SOURCES: Sources<'static> = Sources {
        env: &env,
        files: &files,
    };

    #[test]
    fn expands_variables_and_escapes() {
        let cases: &[(&str, Result<Option<&str>, &str>)] = &[
            ("plain", Ok(None)),
            ("costs $5", Ok(None)),
            ("${TOKEN}", Ok(Some("s3cret"))),
            ("Bearer ${TOKEN}!", Ok(Some("Bearer s3cret!"))),
            ("${TOKEN}${TOKEN}", Ok(Some("s3crets3cret"))),
            ("x${EMPTY}y", Ok(Some("xy"))),
            ("$${TOKEN}", Ok(Some("${TOKEN}"))),
            ("$5 and ${TOKEN}", Ok(Some("$5 and s3cret"))),
            ("${DOLLAR}", Ok(Some("${TOKEN}"))),
            ("${file:/run/secrets/admin}", Ok(Some("from-a-file"))),
            (
                "Bearer ${file:/run/secrets/admin}",
                Ok(Some("Bearer from-a-file")),
            ),
            ("$${file:/x}", Ok(Some("${file:/x}"))),
            ("${file:/nope}", Err("cannot read /nope: No such file")),
            ("${file:}", Err("${file:} in \"${file:}\" names no file")),
            ("${MISSING}", Err("environment variable MISSING is not set")),
            (
                "a ${TOKEN",
                Err("unterminated ${ in \"a ${TOKEN\" (write $${ for a literal ${)"),
            ),
            (
                "${}",
                Err("invalid environment variable name \"\" in ${…} (write $${ for a literal ${)"),
            ),
            (
                "${1X}",
                Err(
                    "invalid environment variable name \"1X\" in ${…} (write $${ for a literal ${)",
                ),
            ),
        ];
        for (input, want) in cases {
            let got = expand(input, SOURCES);
            let want = want.map(|o| o.map(str::to_owned)).map_err(str::to_owned);
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn variable_names_are_portable_shell_names() {
        for (name, ok) in [
            ("A", true),
            ("_a1", true),
            ("A_B_9", true),
            ("", false),
            ("9A", false),
            ("A-B", false),
        ] {
            assert_eq!(is_var_name(name), ok, "{name:?}");
        }
    }

    #[test]
    fn the_first_unset_variable_in_the_file_is_reported_at_its_string() {
        let doc = "[z]\nb = \"${NOPE_B}\"\n[a]\nlist = [\"ok\", \"${NOPE_A}\"]\n";
        let mut root = DeTable::parse(doc).expect("parses").into_inner();
        let issue = expand_table(&mut root, SOURCES).expect_err("unset variables");
        assert_eq!(issue.path.to_string(), "z.b");
        assert_eq!(issue.span.map(|s| &doc[s]), Some("\"${NOPE_B}\""));
        assert_eq!(issue.message, "environment variable NOPE_B is not set");
    }
}
