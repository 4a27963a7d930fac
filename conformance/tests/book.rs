//! The book must never drift from the code. mdBook renders a missing
//! include file or anchor as an empty code block and still exits 0, so this
//! test checks every `{{#include ...}}` in `docs/src` itself: the file must
//! exist and a named anchor must have both `ANCHOR: name` and
//! `ANCHOR_END: name` in it. It also checks that the committed diffs between
//! neighbouring models (made by `scripts/book-diffs.sh`) are current.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("conformance/ sits in the workspace")
        .into()
}

/// One problem with one include, as a readable line.
fn check_includes(docs_source: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for page in markdown_files(docs_source) {
        let text = fs::read_to_string(&page).expect("read a book page");
        for (target, anchor) in includes(&text) {
            let file = page.parent().expect("a page is in a folder").join(&target);
            let Ok(content) = fs::read_to_string(&file) else {
                problems.push(format!(
                    "{}: includes missing file {target}",
                    page.display()
                ));
                continue;
            };
            let Some(anchor) = anchor else { continue };
            // Line ranges (`file:3:10`, `file:3:`) are not anchors.
            if anchor
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_digit())
            {
                continue;
            }
            let has = |marker: &str| {
                content.lines().any(|line| {
                    line.split_once(marker)
                        .is_some_and(|(_, rest)| anchor_name(rest) == anchor)
                })
            };
            if !has("ANCHOR:") || !has("ANCHOR_END:") {
                problems.push(format!(
                    "{}: anchor `{anchor}` not found (ANCHOR: and ANCHOR_END:) in {target}",
                    page.display()
                ));
            }
        }
    }
    problems
}

/// The name after `ANCHOR:` as mdBook reads it: the word that follows, so
/// that `<!-- ANCHOR: lab -->` in a generated Markdown file names `lab`.
fn anchor_name(rest: &str) -> &str {
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Every `ANCHOR: name` in the workspace's Rust files that no page of the
/// book includes: a marker that promises a listing nobody shows.
fn orphan_anchors(root: &Path, docs_source: &Path) -> Vec<String> {
    let mut included = std::collections::BTreeSet::new();
    for page in markdown_files(docs_source) {
        let text = fs::read_to_string(&page).expect("read a book page");
        for (target, anchor) in includes(&text) {
            let file = page.parent().expect("a page is in a folder").join(&target);
            if let (Ok(file), Some(anchor)) = (file.canonicalize(), anchor) {
                included.insert((file, anchor));
            }
        }
    }
    let mut orphans = Vec::new();
    for file in rust_files(root) {
        let text = fs::read_to_string(&file).expect("read a source file");
        let file = file.canonicalize().expect("an existing file");
        // Anchors open here, by name; one nested in an included anchor is
        // shown with it.
        let mut open: Vec<(String, bool)> = Vec::new();
        for line in text.lines() {
            let line = line.trim_start();
            if let Some(name) = line.strip_prefix("// ANCHOR_END: ") {
                open.retain(|(open_name, _)| open_name != name.trim());
                continue;
            }
            let Some(name) = line.strip_prefix("// ANCHOR: ") else {
                continue;
            };
            let name = name.trim().to_owned();
            let shown = included.contains(&(file.clone(), name.clone()))
                || open.iter().any(|(_, shown)| *shown);
            if !shown {
                orphans.push(format!("{}: anchor `{name}` is in no page", file.display()));
            }
            open.push((name, shown));
        }
    }
    orphans
}

/// `{{#include path}}`, `{{#include path:anchor}}`, `{{#rustdoc_include ...}}`
/// -> (path, anchor).
fn includes(text: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{#") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else { break };
        let directive = after[..end].trim();
        rest = &after[end..];
        let argument = directive
            .strip_prefix("include ")
            .or_else(|| directive.strip_prefix("rustdoc_include "));
        if let Some(argument) = argument {
            let argument = argument.trim();
            match argument.split_once(':') {
                Some((path, anchor)) => found.push((path.into(), Some(anchor.into()))),
                None => found.push((argument.into(), None)),
            }
        }
    }
    found
}

/// The files under `folder` whose names end in `.extension`, sorted,
/// without build output (`target/`) and hidden folders.
fn files_ending_in(folder: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(folder) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            files.extend(files_ending_in(&path, extension));
        } else if path.extension().is_some_and(|found| found == extension) {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn markdown_files(folder: &Path) -> Vec<PathBuf> {
    files_ending_in(folder, "md")
}

/// The workspace's `.rs` files.
fn rust_files(folder: &Path) -> Vec<PathBuf> {
    files_ending_in(folder, "rs")
}

#[test]
fn every_include_in_the_book_resolves() {
    let docs = workspace_root().join("docs/src");
    assert!(docs.is_dir(), "the book's sources are in docs/src");
    let problems = check_includes(&docs);
    assert!(
        problems.is_empty(),
        "broken includes:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_anchor_in_the_code_is_shown_in_the_book() {
    let root = workspace_root();
    let orphans = orphan_anchors(&root, &root.join("docs/src"));
    assert!(
        orphans.is_empty(),
        "anchors no page includes:\n{}",
        orphans.join("\n")
    );
}

/// The check itself: an anchor that no page includes is reported.
#[test]
fn an_anchor_no_page_includes_is_reported() {
    let folder = std::env::temp_dir().join(format!("book-orphans-{}", std::process::id()));
    let docs = folder.join("docs");
    fs::create_dir_all(&docs).expect("make a scratch folder");
    fs::write(docs.join("page.md"), "{{#include ../model.rs:shown}}\n").expect("write a page");
    let model = ["shown", "nested", "/nested", "/shown", "hidden", "/hidden"]
        .map(|name| match name.strip_prefix('/') {
            Some(name) => format!("// ANCHOR_END: {name}\n"),
            None => format!("// ANCHOR: {name}\n"),
        })
        .concat();
    fs::write(folder.join("model.rs"), model).expect("write code");
    let orphans = orphan_anchors(&folder, &docs);
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert!(orphans[0].contains("`hidden`"), "{orphans:?}");
    let _ = fs::remove_dir_all(&folder);
}

/// The project speaks of itself alone: no page and no source file points
/// at a file outside the repository (a machine path, the design notes the
/// project was planned from). The needles are split so this file does not
/// match itself.
#[test]
fn nothing_cites_a_file_outside_the_repository() {
    let root = workspace_root();
    let needles = [
        ["/wo", "rk/"].concat(),
        ["design", ".md"].concat(),
        ["crates", ".md"].concat(),
    ];
    let mut files = markdown_files(&root.join("docs/src"));
    files.extend(rust_files(&root));
    files.push(root.join("README.md"));
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle.as_str())) {
                found.push(format!("{}:{}: {line}", file.display(), number + 1));
            }
        }
    }
    assert!(found.is_empty(), "outside citations:\n{}", found.join("\n"));
}

/// The check itself: an anchor renamed in the code makes it fail.
#[test]
fn a_renamed_anchor_is_reported() {
    let folder = std::env::temp_dir().join(format!("book-check-{}", std::process::id()));
    fs::create_dir_all(&folder).expect("make a scratch folder");
    fs::write(
        folder.join("page.md"),
        "```rust\n{{#include model.rs:accept_loop}}\n```\n",
    )
    .expect("write a page");
    let model = "// ANCHOR: accept_loop\nloop {}\n// ANCHOR_END: accept_loop\n";
    fs::write(folder.join("model.rs"), model).expect("write code");
    assert_eq!(check_includes(&folder), Vec::<String>::new());

    fs::write(
        folder.join("model.rs"),
        model.replace("accept_loop", "accept_connections"),
    )
    .expect("rename the anchor");
    let problems = check_includes(&folder);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("anchor `accept_loop` not found"),
        "{problems:?}"
    );

    fs::remove_file(folder.join("model.rs")).expect("remove the code");
    let problems = check_includes(&folder);
    assert!(
        problems[0].contains("missing file model.rs"),
        "{problems:?}"
    );
    let _ = fs::remove_dir_all(&folder);
}

/// The check itself: in Markdown (the generated results) an anchor is an
/// HTML comment, and its name ends where the word does, as for mdBook:
/// `lab-setup` is not `lab`.
#[test]
fn a_markdown_anchor_in_a_comment_is_found_by_its_whole_name() {
    let folder = std::env::temp_dir().join(format!("book-comment-{}", std::process::id()));
    fs::create_dir_all(&folder).expect("make a scratch folder");
    fs::write(folder.join("page.md"), "{{#include table.md:lab}}\n").expect("write a page");
    let table = "<!-- ANCHOR: lab -->\n| a |\n<!-- ANCHOR_END: lab -->\n";
    fs::write(folder.join("table.md"), table).expect("write a table");
    assert_eq!(check_includes(&folder), Vec::<String>::new());

    fs::write(folder.join("table.md"), table.replace("lab", "lab-setup")).expect("rename it");
    let problems = check_includes(&folder);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("anchor `lab` not found"),
        "{problems:?}"
    );
    let _ = fs::remove_dir_all(&folder);
}

/// Each model chapter shows a diff from the previous model; the committed
/// diffs must match the code (regenerate with `scripts/book-diffs.sh`).
#[test]
fn model_diffs_in_the_book_are_current() {
    let root = workspace_root();
    let script = root.join("scripts/book-diffs.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("--check")
        .current_dir(&root)
        .output()
        .expect("run scripts/book-diffs.sh --check");
    assert!(
        output.status.success(),
        "the book's diffs are stale; run scripts/book-diffs.sh\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The pages without exercises: the way in, the reference lists and the
/// generated tables. Every other chapter teaches something to try.
const PAGES_WITHOUT_EXERCISES: [&str; 5] = [
    "introduction.md",
    "glossary.md",
    "results.md",
    "results/results.md",
    "SUMMARY.md",
];

/// What is wrong with a chapter's exercises: fewer than two answers in
/// `<details>` under `## Exercises`, or an answer that gives no result to
/// compare with (an `*Expected*` result or a `*Check:*`).
fn exercise_problems(page: &str, text: &str) -> Vec<String> {
    let Some(start) = text.find("\n## Exercises") else {
        return vec![format!("{page}: no \"## Exercises\" section")];
    };
    let section = &text[start..];
    let answers: Vec<&str> = section
        .split("<details>")
        .skip(1)
        .map(|rest| rest.split("</details>").next().unwrap_or(rest))
        .collect();
    let mut problems = Vec::new();
    if answers.len() < 2 {
        problems.push(format!(
            "{page}: {} answers, at least 2 wanted",
            answers.len()
        ));
    }
    for (index, answer) in answers.iter().enumerate() {
        if !answer.contains("*Expected") && !answer.contains("*Check:*") {
            problems.push(format!(
                "{page}: answer {} says no expected result or check",
                index + 1
            ));
        }
    }
    problems
}

#[test]
fn every_chapter_has_two_exercises_with_answers_to_check() {
    let docs_source = workspace_root().join("docs/src");
    let mut problems = Vec::new();
    for page in markdown_files(&docs_source) {
        let name = page
            .strip_prefix(&docs_source)
            .expect("under docs/src")
            .display()
            .to_string();
        if PAGES_WITHOUT_EXERCISES.contains(&name.as_str())
            || !name.ends_with(".md")
            || name.starts_with("measured/")
            || name.starts_with("timelines/")
            || name.starts_with("diffs/")
        {
            continue;
        }
        let text = fs::read_to_string(&page).expect("read a book page");
        problems.extend(exercise_problems(&name, &text));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_answer_without_a_result_is_reported() {
    let good = "# T\n\n## Exercises\n\n1. a\n\n<details>*Expected:* 3</details>\n\n\
                2. b\n\n<details>*Check:* run it</details>\n";
    assert!(exercise_problems("t.md", good).is_empty());
    let vague = good.replace("*Check:* run it", "think about it");
    assert_eq!(exercise_problems("t.md", &vague).len(), 1);
    let one = "# T\n\n## Exercises\n\n1. a\n\n<details>*Expected:* 3</details>\n";
    assert_eq!(exercise_problems("t.md", one).len(), 1);
    assert_eq!(exercise_problems("t.md", "# T\n").len(), 1);
}
