//! Event-name patterns of `[[plugins]] events`: `*` matches any run of
//! characters (dots included, so `order.*` covers `order.paid.late`), `?`
//! exactly one character, everything else itself. Pure string logic.

/// Does the event name `name` match `pattern`?
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and how much of the name it has eaten so far:
    // on a mismatch, let that star eat one more character and retry.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_event_names() {
        let cases = [
            ("*", "email.unsubscribed", true),
            ("*", "", true),
            ("email.unsubscribed", "email.unsubscribed", true),
            ("email.unsubscribed", "email.unsubscribed2", false),
            ("email.unsubscribed", "email.unsubscribe", false),
            ("email.*", "email.unsubscribed", true),
            ("email.*", "email.", true),
            ("email.*", "email", false),
            ("email.*", "emails.opened", false),
            ("order.*", "order.paid.late", true),
            ("*.paid", "order.paid", true),
            ("*.paid", "order.paid.late", false),
            ("order.*.late", "order.paid.late", true),
            ("order.*.late", "order.paid.on.time.late", true),
            ("order.*.late", "order.late", false),
            ("order.?aid", "order.paid", true),
            ("order.?aid", "order.aid", false),
            ("?", "é", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "abcb", false),
            ("**", "anything", true),
            ("Order.paid", "order.paid", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(matches(pattern, name), want, "{pattern:?} vs {name:?}");
        }
    }
}
