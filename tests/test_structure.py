"""The module reads top-down: its sections follow the data, and each uses only itself and the
sections above it, so that a reader never needs what comes later to follow what is before."""

import ast
import re

import extract_symvers

SECTION = re.compile(r"^# --- (.+?) -+$")


def sections():
    """[(title, first line)] of extract_symvers.py's `# --- Title ---` headers."""
    with open(extract_symvers.__file__) as f:
        return [(SECTION.match(line).group(1), number)
                for number, line in enumerate(f, 1) if SECTION.match(line)]


def section_of(line, heads):
    return max(i for i, (_, first) in enumerate(heads) if first <= line) if line >= heads[0][1] \
        else -1


def bound_names(node):
    """Names a function or class binds itself (arguments, assignments, imports inside)."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            names.add(sub.id)
        elif isinstance(sub, ast.arg):
            names.add(sub.arg)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in sub.names)
        elif isinstance(sub, (ast.FunctionDef, ast.ClassDef)) and sub is not node:
            names.add(sub.name)
    return names


def test_each_section_uses_only_itself_and_those_above():
    with open(extract_symvers.__file__) as f:
        tree = ast.parse(f.read())
    heads = sections()
    defined = {}
    for node in tree.body:
        names = []
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        for name in names:
            defined.setdefault(name, section_of(node.lineno, heads))
    late = []
    for node in tree.body:
        here = section_of(node.lineno, heads)
        local = bound_names(node) if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and \
                    sub.id not in local and defined.get(sub.id, -1) > here:
                late.append("%s (line %d, %s) uses %s of %s" % (
                    getattr(node, "name", "a statement"), sub.lineno, heads[here][0], sub.id,
                    heads[defined[sub.id]][0]))
    assert late == []


def test_the_docstring_lists_the_sections_in_order():
    """The module docstring is the table of contents."""
    listed = [line.strip().split("  ")[0] for line in extract_symvers.__doc__.splitlines()
              if line.startswith("    ") and "  " in line.strip()]
    assert [title.split(":")[0] for title, _ in sections()] == listed
