//! No two source files of the workspace may import each other, directly or
//! in a circle: a reader must be able to start at the leaves and read
//! upwards. This test reads every `src/**/*.rs` of every package, finds
//! where each file reaches into another file of its own crate (`use
//! crate::..`, `use super::..`, a child module's name, or such a path
//! written inline like `crate::logging::worker_label()`), and looks for
//! circles in that graph.
//!
//! Run it alone, with the import count it checked:
//!
//! ```text
//! cargo test -p conformance --test imports -- --nocapture
//! ```
//!
//! A child module's `mod name;` declaration is not an import (the parent
//! owns the child), and neither is a path into the file itself. A path is
//! charged to the deepest module *file* it names: `crate::session::Status`
//! is an import of `session.rs`, which re-exports it. Imports between
//! crates go through Cargo, which forbids circles already; `tests/`
//! folders are whole crates of their own and are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("conformance/ sits in the workspace")
        .into()
}

/// A module of one crate, as the path of names from the crate's root.
type Module = Vec<String>;

/// One crate's source files, by module.
struct Crate {
    files: BTreeMap<Module, PathBuf>,
}

/// An import of one file by another, with where it was written.
#[derive(Debug, Clone)]
struct Import {
    from: PathBuf,
    to: PathBuf,
    line: usize,
    path: String,
}

/// The crates of every package that has a `src/` folder: its library and,
/// separately, a binary's `main.rs` when there is a library beside it.
fn crates(root: &Path) -> Vec<Crate> {
    let mut crates = Vec::new();
    let Ok(entries) = fs::read_dir(root) else {
        return crates;
    };
    let mut packages: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("Cargo.toml").is_file() && path.join("src").is_dir())
        .collect();
    packages.sort();
    for package in packages {
        let src = package.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let has_lib = src.join("lib.rs").is_file();
        let mut library = BTreeMap::new();
        let mut binary = BTreeMap::new();
        for file in files {
            let relative = file.strip_prefix(&src).expect("under src");
            let module = module_of(relative);
            if has_lib && relative == Path::new("main.rs") {
                binary.insert(module, file);
            } else {
                library.insert(module, file);
            }
        }
        crates.push(Crate { files: library });
        if !binary.is_empty() {
            crates.push(Crate { files: binary });
        }
    }
    crates
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// `lib.rs` and `main.rs` are the root; `a/mod.rs` and `a.rs` are `a`.
fn module_of(relative: &Path) -> Module {
    let mut names: Module = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if names.len() == 1 && (names[0] == "lib" || names[0] == "main") {
        names.clear();
    }
    if names.last().is_some_and(|last| last == "mod") {
        names.pop();
    }
    names
}

/// The text with comments, string and character literals blanked out
/// (newlines kept, so line numbers stay right).
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    let blank = |out: &mut String, byte: u8| out.push(if byte == b'\n' { '\n' } else { ' ' });
    while index < bytes.len() {
        let rest = &bytes[index..];
        if rest.starts_with(b"//") {
            while index < bytes.len() && bytes[index] != b'\n' {
                blank(&mut out, bytes[index]);
                index += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while index < bytes.len() {
                if bytes[index..].starts_with(b"/*") {
                    depth += 1;
                    out.push_str("  ");
                    index += 2;
                } else if bytes[index..].starts_with(b"*/") {
                    depth -= 1;
                    out.push_str("  ");
                    index += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, bytes[index]);
                    index += 1;
                }
            }
        } else if rest[0] == b'"' {
            out.push(' ');
            index += 1;
            while index < bytes.len() && bytes[index] != b'"' {
                let step = if bytes[index] == b'\\' { 2 } else { 1 };
                for _ in 0..step {
                    if index < bytes.len() {
                        blank(&mut out, bytes[index]);
                        index += 1;
                    }
                }
            }
            out.push(' ');
            index += 1;
        } else if rest[0] == b'\'' && rest.len() >= 3 && (rest[2] == b'\'' || rest[1] == b'\\') {
            // A char literal ('x', '\n'); a lifetime ('a) has no closing quote.
            let end = rest[1..]
                .iter()
                .skip(1)
                .position(|&byte| byte == b'\'')
                .map_or(1, |at| at + 3);
            for _ in 0..end {
                blank(&mut out, bytes[index]);
                index += 1;
            }
        } else {
            // Multi-byte UTF-8 characters pass through whole.
            let width = text[index..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[index..index + width]);
            index += width;
        }
    }
    out
}

/// The paths a file names: each `use` tree expanded to its paths, and every
/// `crate::`, `super::` or `self::` path written elsewhere, with the line
/// and the module the path is relative to (inline `mod tests { .. }` blocks
/// move `super` one level).
fn paths_in(code: &str, module: &Module) -> Vec<(usize, Module, Vec<String>)> {
    let mut found = Vec::new();
    let tokens = tokenize(code);
    // Inline modules we are inside of, with the brace depth they opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut index = 0;
    let here = |inline: &Vec<(String, usize)>| {
        let mut here = module.clone();
        here.extend(inline.iter().map(|(name, _)| name.clone()));
        here
    };
    while index < tokens.len() {
        let (line, token) = &tokens[index];
        match token.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|(_, at)| *at == depth) {
                    inline.pop();
                }
            }
            "mod" if tokens.get(index + 2).is_some_and(|(_, next)| next == "{") => {
                inline.push((tokens[index + 1].1.clone(), depth));
            }
            "use" => {
                let end = tokens[index..]
                    .iter()
                    .position(|(_, token)| token == ";")
                    .map_or(tokens.len(), |at| index + at);
                let tree: Vec<&str> = tokens[index + 1..end]
                    .iter()
                    .map(|(_, token)| token.as_str())
                    .collect();
                for path in expand_use(&tree) {
                    found.push((*line, here(&inline), path));
                }
                index = end;
            }
            "crate" | "super" | "self"
                if tokens.get(index + 1).is_some_and(|(_, next)| next == "::") =>
            {
                let mut path = vec![token.clone()];
                let mut at = index + 1;
                while tokens.get(at).is_some_and(|(_, token)| token == "::")
                    && tokens.get(at + 1).is_some_and(|(_, name)| is_name(name))
                {
                    path.push(tokens[at + 1].1.clone());
                    at += 2;
                }
                found.push((*line, here(&inline), path));
                index = at - 1;
            }
            _ => {}
        }
        index += 1;
    }
    found
}

fn is_name(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_')
}

/// Names, `::`, and single punctuation characters, each with its line.
fn tokenize(code: &str) -> Vec<(usize, String)> {
    let mut tokens = Vec::new();
    for (number, line) in code.lines().enumerate() {
        let mut chars = line.char_indices().peekable();
        while let Some((start, character)) = chars.next() {
            if character.is_alphanumeric() || character == '_' {
                let mut end = start + character.len_utf8();
                while let Some(&(at, next)) = chars.peek() {
                    if !(next.is_alphanumeric() || next == '_') {
                        break;
                    }
                    end = at + next.len_utf8();
                    chars.next();
                }
                tokens.push((number + 1, line[start..end].to_owned()));
            } else if character == ':' && chars.peek().is_some_and(|&(_, next)| next == ':') {
                chars.next();
                tokens.push((number + 1, "::".to_owned()));
            } else if !character.is_whitespace() {
                tokens.push((number + 1, character.to_string()));
            }
        }
    }
    tokens
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e` (a glob or `self`
/// ends the path at its module).
fn expand_use(tree: &[&str]) -> Vec<Vec<String>> {
    fn walk(tree: &[&str], prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
        let mut path = prefix.to_vec();
        let mut index = 0;
        while index < tree.len() {
            match tree[index] {
                "::" => {}
                "{" => {
                    index += 1;
                    loop {
                        index += walk(&tree[index..], &path, out);
                        match tree.get(index) {
                            Some(&",") => index += 1,
                            _ => break,
                        }
                        if tree.get(index) == Some(&"}") {
                            break;
                        }
                    }
                    return index + 1;
                }
                "," | "}" => break,
                "as" => index += 1,
                "*" | "self" if !path.is_empty() => {}
                name => path.push(name.to_owned()),
            }
            index += 1;
        }
        if path.len() > prefix.len() || !path.is_empty() {
            out.push(path);
        }
        index
    }
    let mut out = Vec::new();
    let start = usize::from(tree.first() == Some(&"::"));
    walk(&tree[start..], &[], &mut out);
    out
}

/// The module file a path names, as the deepest known module on it.
fn resolve(krate: &Crate, here: &Module, path: &[String]) -> Option<PathBuf> {
    let mut absolute: Module = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => here.clone(),
        Some("super") => here.clone(),
        Some(first) => {
            // A child module of this one (`use http::Http` beside `mod http;`).
            let mut child = here.clone();
            child.push(first.to_owned());
            if !krate.files.contains_key(&child) {
                return None;
            }
            here.clone()
        }
        None => return None,
    };
    let mut rest = path;
    if matches!(path[0].as_str(), "crate" | "self") {
        rest = &path[1..];
    }
    while rest.first().is_some_and(|name| name == "super") {
        absolute.pop()?;
        rest = &rest[1..];
    }
    let mut deepest = krate.files.get(&absolute).cloned();
    for name in rest {
        absolute.push(name.clone());
        match krate.files.get(&absolute) {
            Some(file) => deepest = Some(file.clone()),
            None if krate
                .files
                .keys()
                .any(|module| module.starts_with(&absolute)) => {}
            None => break,
        }
    }
    deepest
}

fn imports(krate: &Crate) -> Vec<Import> {
    let mut imports = Vec::new();
    for (module, file) in &krate.files {
        let text = fs::read_to_string(file).expect("read a source file");
        for (line, here, path) in paths_in(&code_only(&text), module) {
            let Some(to) = resolve(krate, &here, &path) else {
                continue;
            };
            if &to != file {
                imports.push(Import {
                    from: file.clone(),
                    to,
                    line,
                    path: path.join("::"),
                });
            }
        }
    }
    imports
}

/// The circles: every group of two or more files that reach each other,
/// each shown as the imports inside it.
fn circles(imports: &[Import]) -> Vec<Vec<Import>> {
    let mut reach: BTreeMap<&Path, BTreeSet<&Path>> = BTreeMap::new();
    for import in imports {
        reach.entry(&import.from).or_default().insert(&import.to);
    }
    // Transitive closure: the graphs are a few hundred files at most.
    loop {
        let mut grew = false;
        let snapshot = reach.clone();
        for targets in reach.values_mut() {
            let more: Vec<&Path> = targets
                .iter()
                .flat_map(|target| snapshot.get(target).into_iter().flatten())
                .copied()
                .collect();
            for target in more {
                grew |= targets.insert(target);
            }
        }
        if !grew {
            break;
        }
    }
    let mut groups: BTreeSet<BTreeSet<&Path>> = BTreeSet::new();
    for (&file, targets) in &reach {
        if targets.contains(file) {
            let group: BTreeSet<&Path> = targets
                .iter()
                .copied()
                .filter(|other| reach.get(other).is_some_and(|back| back.contains(file)))
                .collect();
            groups.insert(group);
        }
    }
    groups
        .into_iter()
        .map(|group| {
            imports
                .iter()
                .filter(|import| {
                    group.contains(import.from.as_path()) && group.contains(import.to.as_path())
                })
                .cloned()
                .collect()
        })
        .collect()
}

#[test]
fn no_source_files_import_each_other_in_a_circle() {
    let root = workspace_root();
    let shown = |path: &Path| {
        path.strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut report = Vec::new();
    let (mut files, mut edges) = (0, 0);
    for krate in crates(&root) {
        let imports = imports(&krate);
        files += krate.files.len();
        edges += imports
            .iter()
            .map(|import| (&import.from, &import.to))
            .collect::<BTreeSet<_>>()
            .len();
        for circle in circles(&imports) {
            report.push("a circle:".to_owned());
            // One line per pair of files: the first place, and what it names.
            let mut pairs: BTreeMap<(&Path, &Path), (usize, Vec<&str>)> = BTreeMap::new();
            for import in &circle {
                let pair = pairs
                    .entry((&import.from, &import.to))
                    .or_insert((import.line, Vec::new()));
                pair.0 = pair.0.min(import.line);
                pair.1.push(&import.path);
            }
            for ((from, to), (line, paths)) in pairs {
                report.push(format!(
                    "  {}:{line} uses {} ({})",
                    shown(from),
                    shown(to),
                    paths.join(", ")
                ));
            }
        }
    }
    println!("{files} source files, {edges} imports between files of one crate");
    assert!(files > 50, "found only {files} source files under {root:?}");
    assert!(report.is_empty(), "{}", report.join("\n"));
    println!("no circles");
}

#[test]
fn the_reader_sees_what_a_file_imports() {
    let tree = |text: &str| {
        let tokens = tokenize(text);
        let tree: Vec<&str> = tokens.iter().map(|(_, token)| token.as_str()).collect();
        expand_use(&tree)
            .into_iter()
            .map(|path| path.join("::"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tree("crate::a::{b, c::{d, e as f}, self}"),
        [
            "crate::a::b",
            "crate::a::c::d",
            "crate::a::c::e",
            "crate::a"
        ]
    );
    assert_eq!(tree("super::*"), ["super"]);
    let code = code_only("use crate::x; // crate::y\nlet s = \"crate::z\"; crate::w::f();");
    let paths: Vec<String> = paths_in(&code, &Vec::new())
        .into_iter()
        .map(|(line, _, path)| format!("{line}:{}", path.join("::")))
        .collect();
    assert_eq!(paths, ["1:crate::x", "2:crate::w::f"]);
}
