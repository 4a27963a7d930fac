//! A number in the book's prose that comes from the committed comparison
//! must say where it comes from, and must still be what that run measured.
//! It carries a marker right after it (an HTML comment, invisible in the
//! rendered book):
//!
//! ```text
//! a thread costs 17.8 KiB<!-- n: 02-thread-per-client c10k 10000 rss_per_connection_bytes /1024 -->
//! ```
//!
//! naming the row of `docs/src/results/results.csv` (model, scenario, or
//! `scenario:variant`, clients), its column, and optionally a scale (`/1024`,
//! `x100`). The number is the last one before the marker; it must equal the
//! scaled value rounded to as many decimals as the prose shows. After a new
//! comparison run, this test lists every sentence whose number moved.
//!
//! A number from another script names the file that script keeps with
//! `SAVE=1` (`docs/src/measured/NAME.csv`, key,value rows) and the key:
//!
//! ```text
//! 17.8 KiB each<!-- n: @idle-memory 02-thread-per-client.per_connection_bytes /1024 -->
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

const MARKER: &str = "<!-- n:";

fn docs_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("conformance/ sits in the workspace")
        .join("docs/src")
}

/// The comparison's rows, by "model scenario[:variant] clients", each a
/// map from column name to the cell's text.
type Rows = HashMap<String, HashMap<String, String>>;

fn read_results(csv_text: &str) -> Rows {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(csv_text.as_bytes());
    let headers = reader.headers().expect("results.csv has a header").clone();
    let mut rows = Rows::new();
    for record in reader.records() {
        let record = record.expect("a well-formed results.csv row");
        let cell: HashMap<String, String> = headers
            .iter()
            .zip(record.iter())
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let scenario = match cell["variant"].as_str() {
            "" => cell["scenario"].clone(),
            variant => format!("{}:{variant}", cell["scenario"]),
        };
        let key = format!("{} {scenario} {}", cell["model"], cell["clients"]);
        rows.insert(key, cell);
    }
    rows
}

/// The last number before `end` in `text`, as written (`27,207`, `17.8`).
fn number_before(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let end = bytes.iter().rposition(u8::is_ascii_digit)? + 1;
    let mut start = end;
    while start > 0 {
        let byte = bytes[start - 1];
        let inside = byte.is_ascii_digit()
            || ((byte == b',' || byte == b'.') && start >= 2 && bytes[start - 2].is_ascii_digit());
        if !inside {
            break;
        }
        start -= 1;
    }
    Some(&text[start..end])
}

/// The numbers scripts kept for the book, by file name (`idle-memory`) and
/// key.
type Measured = HashMap<String, HashMap<String, String>>;

fn read_measured(csv_text: &str) -> Result<HashMap<String, String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(csv_text.as_bytes());
    let mut values = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|error| error.to_string())?;
        match (record.get(0), record.get(1)) {
            (Some(key), Some(value)) => values.insert(key.to_owned(), value.to_owned()),
            _ => return Err(format!("not a key,value row: {record:?}")),
        };
    }
    Ok(values)
}

/// Where a marker's number comes from, as (cell, description, scale).
fn source<'a>(
    words: &[&'a str],
    rows: &'a Rows,
    measured: &'a Measured,
) -> Result<(&'a str, String, Option<&'a str>), String> {
    if let Some(name) = words.first().and_then(|word| word.strip_prefix('@')) {
        let (key, scale) = match words {
            [_, key] => (*key, None),
            [_, key, scale] => (*key, Some(*scale)),
            _ => return Err("want: @SCRIPT KEY [/N|xN]".into()),
        };
        let values = measured
            .get(name)
            .ok_or(format!("no docs/src/measured/{name}.csv"))?;
        let cell = values
            .get(key)
            .ok_or(format!("no key `{key}` in docs/src/measured/{name}.csv"))?;
        return Ok((cell, format!("{name}.csv {key}"), scale));
    }
    let (key, column, scale) = match words {
        [model, scenario, clients, column] => {
            (format!("{model} {scenario} {clients}"), *column, None)
        }
        [model, scenario, clients, column, scale] => (
            format!("{model} {scenario} {clients}"),
            *column,
            Some(*scale),
        ),
        _ => return Err("want: MODEL SCENARIO[:VARIANT] CLIENTS COLUMN [/N|xN]".into()),
    };
    let row = rows
        .get(&key)
        .ok_or(format!("no row `{key}` in results.csv"))?;
    let cell = row.get(column).ok_or(format!("no column `{column}`"))?;
    Ok((cell, format!("results.csv {key} {column}"), scale))
}

/// Checks one marker's claim; `Err` says what is wrong.
fn check_claim(
    written: &str,
    marker: &str,
    rows: &Rows,
    measured: &Measured,
) -> Result<(), String> {
    let words: Vec<&str> = marker.split_whitespace().collect();
    let (cell, described, scale) = source(&words, rows, measured)?;
    let mut value: f64 = cell
        .parse()
        .map_err(|_| format!("{described} is `{cell}`, not a number"))?;
    match scale.map(|scale| scale.split_at(1)) {
        None => {}
        Some(("/", divisor)) => value /= divisor.parse::<f64>().map_err(|_| "bad scale")?,
        Some(("x", factor)) => value *= factor.parse::<f64>().map_err(|_| "bad scale")?,
        Some(_) => return Err(format!("bad scale `{}`", scale.unwrap_or_default())),
    }
    let plain = written.replace(',', "");
    let decimals = plain
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len());
    let shown: f64 = plain
        .parse()
        .map_err(|_| format!("`{written}` is not a number"))?;
    let tolerance = 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9;
    if (value - shown).abs() > tolerance {
        return Err(format!(
            "says {written}, the run says {value:.decimals$} ({described})"
        ));
    }
    Ok(())
}

/// Every marker of every page, checked: one line per problem.
fn check_pages(
    pages: &[(String, String)],
    rows: &Rows,
    measured: &Measured,
) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut problems = Vec::new();
    for (name, text) in pages {
        let mut rest = text.as_str();
        let mut consumed = 0;
        while let Some(at) = rest.find(MARKER) {
            let before = &text[..consumed + at];
            let after = &rest[at + MARKER.len()..];
            let Some(close) = after.find("-->") else {
                problems.push(format!("{name}: a number marker is not closed"));
                break;
            };
            let marker = after[..close].trim();
            let line = before.matches('\n').count() + 1;
            // Only this line's text counts, so a marker cannot borrow the
            // number of an earlier sentence.
            let line_start = before.rfind('\n').map_or(0, |index| index + 1);
            match number_before(&before[line_start..]) {
                None => problems.push(format!("{name}:{line}: no number before `{marker}`")),
                Some(written) => {
                    checked += 1;
                    if let Err(problem) = check_claim(written, marker, rows, measured) {
                        problems.push(format!("{name}:{line}: {problem}"));
                    }
                }
            }
            let step = at + MARKER.len() + close;
            consumed += step;
            rest = &rest[step..];
        }
    }
    (checked, problems)
}

fn book_pages(folder: &Path, pages: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(folder).expect("read docs/src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            book_pages(&path, pages);
        } else if path.extension().is_some_and(|extension| extension == "md") {
            let text = fs::read_to_string(&path).expect("read a page");
            pages.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn numbers_marked_in_the_book_match_the_committed_results() {
    let source = docs_source();
    let csv_text =
        fs::read_to_string(source.join("results/results.csv")).expect("read results.csv");
    let rows = read_results(&csv_text);
    let mut measured = Measured::new();
    // No folder: no script kept numbers yet; a marker naming one says so.
    let kept = fs::read_dir(source.join("measured")).into_iter().flatten();
    for entry in kept.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|extension| extension == "csv") {
            let name = path.file_stem().expect("a file name").to_string_lossy();
            let text = fs::read_to_string(&path).expect("read a measured file");
            let values =
                read_measured(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            measured.insert(name.into_owned(), values);
        }
    }
    let mut pages = Vec::new();
    book_pages(&source, &mut pages);
    let (checked, problems) = check_pages(&pages, &rows, &measured);
    assert!(
        problems.is_empty(),
        "{} of {checked} marked numbers disagree with the runs they name \
         (docs/src/results/results.csv, docs/src/measured/*.csv):\n{}",
        problems.len(),
        problems.join("\n")
    );
    println!("{checked} marked numbers agree with the runs they name");
}

/// The check itself, on a made-up row: right, rounded, scaled, wrong.
#[test]
fn a_marked_number_is_compared_at_the_precision_it_is_written() {
    let rows = read_results(
        "# a comment\nmodel,scenario,variant,clients,rps,rss\n07-epoll,lab,keepalive,100,9.73,18227\n",
    );
    let measured = Measured::from([(
        "idle-memory".to_owned(),
        read_measured("# machine\nkey,value\n07-epoll.per_connection_bytes,265\n")
            .expect("a key,value file"),
    )]);
    let page = |text: &str| vec![("page.md".to_owned(), text.to_owned())];
    let check = |text: &str| check_pages(&page(text), &rows, &measured);
    assert_eq!(
        check("**9.7**<!-- n: 07-epoll lab:keepalive 100 rps -->"),
        (1, vec![])
    );
    assert_eq!(
        check("17.8 KiB<!-- n: 07-epoll lab:keepalive 100 rss /1024 -->"),
        (1, vec![])
    );
    assert_eq!(
        check("18,227 B<!-- n: 07-epoll lab:keepalive 100 rss -->"),
        (1, vec![])
    );
    let (_, wrong) = check("9.8 req/s<!-- n: 07-epoll lab:keepalive 100 rps -->");
    assert!(wrong[0].contains("says 9.8, the run says 9.7"), "{wrong:?}");
    assert_eq!(
        check("265 B<!-- n: @idle-memory 07-epoll.per_connection_bytes -->"),
        (1, vec![])
    );
    assert_eq!(
        check("0.26 KiB<!-- n: @idle-memory 07-epoll.per_connection_bytes /1024 -->"),
        (1, vec![])
    );
    let (_, moved) = check("275 B<!-- n: @idle-memory 07-epoll.per_connection_bytes -->");
    assert!(moved[0].contains("says 275, the run says 265"), "{moved:?}");
    let (_, unknown) = check("1 B<!-- n: @idle-memory 09-async.per_connection_bytes -->");
    assert!(unknown[0].contains("no key"), "{unknown:?}");
    let (_, no_file) = check("1 B<!-- n: @nothing key -->");
    assert!(
        no_file[0].contains("no docs/src/measured/nothing.csv"),
        "{no_file:?}"
    );
    let (_, missing) = check("10<!-- n: 07-epoll lab 100 rps -->");
    assert!(missing[0].contains("no row"), "{missing:?}");
    let (_, nothing) = check("text\nno number here<!-- n: 07-epoll lab:keepalive 100 rps -->");
    assert!(nothing[0].contains("no number"), "{nothing:?}");
}
