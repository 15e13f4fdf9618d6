//! The start of a receiver's answer to a failed attempt, as the delivery
//! log keeps it: a CRM's `400 {"message": "email is invalid"}` says why a
//! request was refused, where the status code alone does not. Text is
//! kept up to [`EXCERPT_BYTES`] (cut at a character boundary, `…` when
//! there was more); a body that is not UTF-8 is summarised by its size and
//! type. Successes keep nothing, so the hot path writes nothing more.
//!
//! The caller's `redact` sees the whole body read before it is cut, so a
//! secret can never be shown in part at the cut.

use super::outcome::{AttemptOutcome, AttemptReport};

/// Most of a response body the delivery log keeps.
pub const EXCERPT_BYTES: usize = 2048;

/// What to keep of `report`'s response, if anything: for an answer that
/// is not a success. `redact` takes the body read as text and whether it
/// was cut short, and returns it without secret values.
pub fn response_excerpt(
    report: &AttemptReport,
    redact: impl FnOnce(&str, bool) -> String,
) -> Option<String> {
    if report.status_code.is_none()
        || matches!(report.outcome, AttemptOutcome::Succeeded)
        || report.response_bytes.is_empty()
    {
        return None;
    }
    let bytes = &report.response_bytes;
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // The read stopped inside a character.
        Err(e) if e.error_len().is_none() && report.response_truncated => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => {
            let kind = report
                .response_content_type
                .as_deref()
                .map_or(String::new(), |t| format!(" of {t}"));
            let more = if report.response_truncated {
                "at least "
            } else {
                ""
            };
            return Some(format!("({more}{} bytes{kind}, not text)", bytes.len()));
        }
    };
    let clean = redact(text, report.response_truncated);
    let mut end = clean.len().min(EXCERPT_BYTES);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    let more = end < clean.len() || report.response_truncated;
    Some(format!("{}{}", &clean[..end], if more { "…" } else { "" }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn report(status: u16, body: &[u8], truncated: bool) -> AttemptReport {
        AttemptReport {
            status_code: Some(status),
            error: None,
            duration: Duration::ZERO,
            outcome: super::super::outcome::classify_status(status, None),
            response_bytes: body.to_vec(),
            response_truncated: truncated,
            response_content_type: Some("application/octet-stream".into()),
            remote_addr: None,
            redirects: 0,
            denied_by_policy: false,
            timed_out: false,
        }
    }

    fn keep(text: &str, _cut: bool) -> String {
        text.to_owned()
    }

    #[test]
    fn refusals_keep_the_start_of_their_answer_and_successes_nothing() {
        let body = br#"{"message":"email is invalid"}"#;
        assert_eq!(
            response_excerpt(&report(400, body, false), keep).as_deref(),
            Some(r#"{"message":"email is invalid"}"#)
        );
        assert_eq!(response_excerpt(&report(200, body, false), keep), None);
        assert_eq!(response_excerpt(&report(503, b"", false), keep), None);
        // Long answers are cut at a character boundary and say so.
        let long = "é".repeat(EXCERPT_BYTES);
        let got = response_excerpt(&report(500, long.as_bytes(), false), keep).unwrap();
        assert!(got.ends_with("é…"), "{got}");
        assert_eq!(got.len(), EXCERPT_BYTES + "…".len());
        // A read cut inside a character is text up to there.
        let cut = &"ok é".as_bytes()[..4];
        assert_eq!(
            response_excerpt(&report(502, cut, true), keep).as_deref(),
            Some("ok …")
        );
    }

    #[test]
    fn binary_answers_are_summarised_and_redaction_sees_the_whole_text() {
        assert_eq!(
            response_excerpt(&report(415, &[0xff, 0, 1], false), keep).as_deref(),
            Some("(3 bytes of application/octet-stream, not text)")
        );
        let body = format!("{}SECRET", "x".repeat(EXCERPT_BYTES - 3));
        let got = response_excerpt(&report(400, body.as_bytes(), true), |t, cut| {
            assert!(cut);
            t.replace("SECRET", "{{secret:S}}")
        })
        .unwrap();
        assert!(!got.contains("SEC"), "{got}");
        assert!(got.ends_with('…'), "{got}");
    }
}
