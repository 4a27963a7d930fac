#!/usr/bin/env python3
"""Re-quotes the book's marked numbers from the runs they name.

After a new comparison (scripts/compare.sh) or a script run kept with
SAVE=1, every number in docs/src that carries a marker

    17.8 KiB<!-- n: 02-thread-per-client c10k 10000 rss_per_connection_bytes /1024 -->
    300.8 ms<!-- n: @rpc-lateness 01-blocking.p50_ms -->

is rewritten with the value the run measured, at the precision it was
written with (decimals, and a thousands comma where it had one). The rules
are those of the book test (conformance/tests/book_numbers.rs), which then
passes. What it cannot do is read the sentence: "level with 02's" or "twice
as fast" may no longer be true, so it prints every change, and the
`git diff` of docs/src is to be read before it is committed.

    scripts/requote.py           rewrite the pages, list what changed
    scripts/requote.py --check   only list (exit 1 if anything would change)
    scripts/requote.py --docs DIR   pages and runs under DIR, not docs/src
"""

import csv
import pathlib
import re
import sys

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "src"
MARKER = re.compile(r"<!-- n:(.*?)-->")
# A number as the book test reads it: digits, with commas or points
# between digits.
NUMBER = re.compile(r"\d(?:\d|[.,](?=\d))*")


def uncommented(path):
    with open(path, newline="") as file:
        return [line for line in file if not line.startswith("#")]


def read_results(docs):
    rows = {}
    for cell in csv.DictReader(uncommented(docs / "results" / "results.csv")):
        scenario = cell["scenario"] + (f":{cell['variant']}" if cell["variant"] else "")
        rows[f"{cell['model']} {scenario} {cell['clients']}"] = cell
    return rows


def read_measured(docs):
    kept = {}
    for path in sorted((docs / "measured").glob("*.csv")):
        reader = csv.reader(uncommented(path))
        next(reader, None)  # key,value
        kept[path.stem] = {row[0]: row[1] for row in reader if len(row) >= 2}
    return kept


def value_of(words, rows, kept):
    """The marked cell, scaled, or raises KeyError/ValueError with a reason."""
    if words[0].startswith("@"):
        name, key, *scale = words
        cell = kept[name[1:]][key]
    else:
        model, scenario, clients, column, *scale = words
        cell = rows[f"{model} {scenario} {clients}"][column]
    value = float(cell)
    for step in scale:
        if step.startswith("/"):
            value /= float(step[1:])
        elif step.startswith("x"):
            value *= float(step[1:])
        else:
            raise ValueError(f"bad scale {step}")
    return value


def written_like(value, old):
    plain = old.replace(",", "")
    decimals = len(plain.split(".", 1)[1]) if "." in plain else 0
    # What the test accepts stays as written: at an exact half either
    # neighbour is right, and a rewrite would only churn the pages.
    if abs(value - float(plain)) <= 0.5 * 10 ** -decimals + 1e-9:
        return old
    text = f"{value:.{decimals}f}"
    if "," in old:
        whole, dot, fraction = text.partition(".")
        sign = "-" if whole.startswith("-") else ""
        text = sign + f"{int(whole.lstrip('-')):,}" + dot + fraction
    return text


def requote(text, rows, kept, page, changes, problems):
    out = []
    at = 0
    for match in MARKER.finditer(text):
        before = text[at:match.start()]
        line_start = before.rfind("\n") + 1
        # The number may be followed by a unit (" KiB", " %"): the last
        # digit run on this line before the marker is it.
        head = before[line_start:]
        last = None
        for candidate in NUMBER.finditer(head):
            last = candidate
        line = text[: match.start()].count("\n") + 1
        if last is None:
            problems.append(f"{page}:{line}: no number before the marker")
            out.append(text[at:match.end()])
            at = match.end()
            continue
        try:
            new = written_like(value_of(match.group(1).split(), rows, kept), last.group(0))
        except (KeyError, ValueError, IndexError) as error:
            problems.append(f"{page}:{line}: {match.group(1).strip()}: {error}")
            new = last.group(0)
        if new != last.group(0):
            changes.append(f"{page}:{line}: {last.group(0)} -> {new}")
        out.append(text[at: at + line_start + last.start()])
        out.append(new)
        out.append(text[at + line_start + last.end(): match.end()])
        at = match.end()
    out.append(text[at:])
    return "".join(out)


def main():
    arguments = sys.argv[1:]
    check = "--check" in arguments
    docs = DOCS
    if "--docs" in arguments:
        docs = pathlib.Path(arguments[arguments.index("--docs") + 1]).resolve()
    rows, kept = read_results(docs), read_measured(docs)
    changes, problems = [], []
    for path in sorted(docs.rglob("*.md")):
        text = path.read_text()
        page = path.relative_to(docs)
        new = requote(text, rows, kept, page, changes, problems)
        if new != text and not check:
            path.write_text(new)
    print("\n".join(changes))
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{len(changes)} numbers {'would change' if check else 'changed'}", file=sys.stderr)
    sys.exit(1 if problems or (check and changes) else 0)


if __name__ == "__main__":
    main()
