//! The checker's three reports: lines a student reads on the terminal as
//! the checks finish, and JSON and JUnit XML for graders (classroom
//! autograders and CI systems read JUnit).

use std::fmt::Write as _;
use std::time::Duration;

use conformance::catalog::Check;
use serde_json::{Value, json};

use crate::run::Verdict;

/// One finished check.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub check: Check,
    pub verdict: Verdict,
    pub elapsed: Duration,
}

/// `(passed, failed, skipped)`.
pub fn counts(outcomes: &[Outcome]) -> (usize, usize, usize) {
    let count = |wanted: fn(&Verdict) -> bool| {
        outcomes
            .iter()
            .filter(|outcome| wanted(&outcome.verdict))
            .count()
    };
    (
        count(|verdict| matches!(verdict, Verdict::Pass)),
        count(|verdict| matches!(verdict, Verdict::Fail { .. })),
        count(|verdict| matches!(verdict, Verdict::Skip(_))),
    )
}

/// The summary line.
pub fn summary(outcomes: &[Outcome]) -> String {
    let (passed, failed, skipped) = counts(outcomes);
    format!("{passed} passed, {failed} failed, {skipped} skipped")
}

/// The terminal lines for one check: one line for a pass or a skip; for a
/// failure also the rule, the book section, what happened and the
/// conversation.
pub fn text(outcome: &Outcome) -> String {
    let Outcome {
        check,
        verdict,
        elapsed,
    } = outcome;
    let seconds = format!("{:.2}s", elapsed.as_secs_f64());
    match verdict {
        Verdict::Pass => format!("pass     {:<46} {seconds:>7}\n", check.name),
        Verdict::Skip(reason) => format!("skipped  {:<46} {reason}\n", check.name),
        Verdict::Fail {
            message,
            transcript,
        } => {
            let mut text = format!("FAIL     {:<46} {seconds:>7}\n", check.name);
            let _ = writeln!(text, "    rule:  {}", check.rule);
            let _ = writeln!(text, "    book:  docs/src/{}", check.book);
            let _ = writeln!(text, "    got:   {}", indent(message, "           "));
            if !transcript.is_empty() {
                let _ = writeln!(text, "    conversation (first bytes, time since start):");
                for line in transcript {
                    let _ = writeln!(text, "           {line}");
                }
            }
            text
        }
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.trim_end().replace('\n', &format!("\n{prefix}"))
}

/// The whole run as JSON.
pub fn json(target: &str, outcomes: &[Outcome]) -> Value {
    let (passed, failed, skipped) = counts(outcomes);
    let checks: Vec<Value> = outcomes
        .iter()
        .map(|outcome| {
            let mut entry = json!({
                "name": outcome.check.name,
                "mode": outcome.check.mode,
                "rule": outcome.check.rule,
                "book": format!("docs/src/{}", outcome.check.book),
                "seconds": outcome.elapsed.as_secs_f64(),
            });
            match &outcome.verdict {
                Verdict::Pass => entry["verdict"] = "pass".into(),
                Verdict::Skip(reason) => {
                    entry["verdict"] = "skipped".into();
                    entry["reason"] = reason.as_str().into();
                }
                Verdict::Fail {
                    message,
                    transcript,
                } => {
                    entry["verdict"] = "fail".into();
                    entry["message"] = message.as_str().into();
                    entry["transcript"] = transcript.clone().into();
                }
            }
            entry
        })
        .collect();
    json!({
        "target": target,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "checks": checks,
    })
}

/// The whole run as JUnit XML: one testcase per check, classed by mode.
pub fn junit(target: &str, outcomes: &[Outcome]) -> String {
    let (_, failed, skipped) = counts(outcomes);
    let total: f64 = outcomes
        .iter()
        .map(|outcome| outcome.elapsed.as_secs_f64())
        .sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"check\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{total:.3}\">",
        outcomes.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total:.3}\">",
        escape(target),
        outcomes.len()
    );
    for outcome in outcomes {
        let _ = write!(
            xml,
            "    <testcase classname=\"conformance.{}\" name=\"{}\" time=\"{:.3}\"",
            outcome.check.mode,
            outcome.check.name,
            outcome.elapsed.as_secs_f64()
        );
        match &outcome.verdict {
            Verdict::Pass => xml.push_str("/>\n"),
            Verdict::Skip(reason) => {
                let _ = writeln!(
                    xml,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(reason)
                );
            }
            Verdict::Fail {
                message,
                transcript,
            } => {
                let details = format!(
                    "rule: {}\nbook: docs/src/{}\n{}",
                    outcome.check.rule,
                    outcome.check.book,
                    transcript.join("\n")
                );
                let _ = writeln!(
                    xml,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    escape(message),
                    escape(&details)
                );
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Text fit for an XML attribute or element: markup escaped, and the
/// control characters XML 1.0 forbids dropped (a server's bytes can be
/// anything).
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\n' => escaped.push_str("&#10;"),
            '\t' | '\r' => escaped.push(' '),
            _ if character.is_control() => {}
            _ => escaped.push(character),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes() -> Vec<Outcome> {
        let check = |name| *conformance::catalog::find(name).expect("a check");
        vec![
            Outcome {
                check: check("http_get"),
                verdict: Verdict::Pass,
                elapsed: Duration::from_millis(30),
            },
            Outcome {
                check: check("http_split_request"),
                verdict: Verdict::Fail {
                    message: "bad <status> \"line\"\u{1}".into(),
                    transcript: vec!["+0.001s sent 1 bytes: \"G\"".into()],
                },
                elapsed: Duration::from_secs(1),
            },
            Outcome {
                check: check("sigterm_finishes_in_flight_request"),
                verdict: Verdict::Skip("needs --exe".into()),
                elapsed: Duration::ZERO,
            },
        ]
    }

    #[test]
    fn the_summary_counts_each_verdict() {
        assert_eq!(summary(&outcomes()), "1 passed, 1 failed, 1 skipped");
    }

    #[test]
    fn a_failure_names_its_rule_and_book_section() {
        let text = text(&outcomes()[1]);
        assert!(text.starts_with("FAIL     http_split_request"), "{text}");
        assert!(text.contains("rule:  a request may arrive"), "{text}");
        assert!(text.contains("book:  docs/src/contract.md#"), "{text}");
        assert!(text.contains("sent 1 bytes"), "{text}");
    }

    #[test]
    fn junit_is_escaped_and_counts() {
        let xml = junit("a <server>", &outcomes());
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"a &lt;server&gt;\""), "{xml}");
        assert!(
            xml.contains("message=\"bad &lt;status&gt; &quot;line&quot;\""),
            "{xml}"
        );
        assert!(!xml.contains('\u{1}'));
        assert!(xml.contains("<skipped message=\"needs --exe\"/>"), "{xml}");
    }

    #[test]
    fn json_has_a_verdict_per_check() {
        let value = json("t", &outcomes());
        assert_eq!(value["failed"], 1);
        assert_eq!(value["checks"][1]["verdict"], "fail");
        assert_eq!(value["checks"][2]["reason"], "needs --exe");
    }
}
