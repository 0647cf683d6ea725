"""The README as its reader sees it: every table renders, its examples use the options --help
lists, and its exit-status table says what --help says."""

import os
import re

import pytest

import extract_symvers

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")      # a `\|` inside a cell is a literal bar


def readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


def tables(text):
    """Each table of `text` (outside code blocks): [(line number, cells of a row)...]."""
    found, rows, fenced = [], [], False
    for number, line in enumerate(text.splitlines(), 1):
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("|"):
            rows.append((number, CELL_SEPARATOR.split(line.strip())[1:-1]))
        elif rows:
            found.append(rows)
            rows = []
    return found + ([rows] if rows else [])


def commands(text):
    """The tool's command lines in the README's examples: ["-q", "--modules", ...]..."""
    return [line.split()[2:] for line in text.splitlines()
            if line.startswith("$ python extract_symvers.py ")]


def test_every_table_row_has_the_header_cells():
    found = tables(readme())
    assert len(found) >= 5
    for rows in found:
        (_, header), (_, rule) = rows[:2]
        assert all(re.fullmatch(r"\s*:?-+:?\s*", cell) for cell in rule), rows[1]
        for number, cells in rows:
            assert len(cells) == len(header), "README.md line %d: %d cells under %d headers" % (
                number, len(cells), len(header))


def test_a_row_with_a_cell_too_many_is_seen():
    rows = tables("| a | b |\n|---|---|\n| 1 | `x\\|y` |\n| 1 | 2 | 3 |\n")[0]
    assert [len(cells) for _, cells in rows] == [2, 2, 2, 3]


def test_the_examples_use_options_the_tool_has(capsys):
    with pytest.raises(SystemExit):
        extract_symvers.main(["--help"])
    given = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", capsys.readouterr().out))
    examples = commands(readme())
    assert len(examples) >= 6
    for words in examples:
        for word in words:
            if re.fullmatch(r"--?[a-z][\w-]*", word):
                assert word in given, words


def test_the_exit_status_table_says_what_help_says():
    rows = {cells[0].strip(): cells[1].strip().replace("`", "")
            for rows in tables(readme()) for _, cells in rows[2:]
            if rows[0][1][0].strip() == "status"}
    for status, meaning in extract_symvers.EXIT_STATUSES:
        assert rows.get(str(status)) == meaning, status
