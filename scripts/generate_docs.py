"""Generate docs/configuration.md and docs/redis-keys.md from the code they describe.

Hand-written tables of settings and Redis keys drift from the code; these pages are built
from ``shared/settings.py`` and ``shared/keys.py`` instead, so the docstrings next to each
field and key are the single source. ``python scripts/generate_docs.py`` rewrites both
pages; ``--check`` only compares them (for tests and CI) and exits 1 when one is stale.

The settings are read with ``ast``, not imported: a dataclass keeps no trace of the string
statement that documents each field. ``shared.keys`` is also imported, because the real key
of a constant or a function is easiest to get by evaluating it.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_SOURCE = ROOT / "shared" / "settings.py"
KEYS_SOURCE = ROOT / "shared" / "keys.py"
CONFIGURATION_PAGE = ROOT / "docs" / "configuration.md"
REDIS_KEYS_PAGE = ROOT / "docs" / "redis-keys.md"
ENV_PREFIX = "INFERQ_"
COMMAND = "python scripts/generate_docs.py"

CONFIGURATION_INTRO = f"""\
# Configuration

Every setting is an environment variable, `{ENV_PREFIX}` followed by the field name of the
`Settings` dataclass in upper case; `shared/settings.py` is the one place they are read, into
one frozen object. Unset or empty variables keep the default below; booleans take
`true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), and numbers may not be negative.

This page is generated from `shared/settings.py` by `{COMMAND}`;
edit the field's docstring there, not this file.
"""

REDIS_KEYS_INTRO = f"""\
# Redis keys

Every Redis key inferq uses is named in `shared/keys.py`, and all of them start with the
`inferq` prefix (`keys.PREFIX`), so an operator can find, count or delete them. Placeholders
in braces stand for the function's arguments.

This page is generated from `shared/keys.py` by `{COMMAND}`;
edit the docstring there, not this file.
"""


def parse(path: Path) -> tuple[str, ast.Module]:
    """Read a module's source and tree together: defaults are quoted from the source."""
    source = path.read_text(encoding="utf-8")
    return source, ast.parse(source, filename=str(path))


def documented_statements(body: list[ast.stmt]):
    """Yield (statement, docstring) pairs: a docstring is the string literal right after it.

    This is the attribute-docstring convention; Python drops those strings at run time, so
    only the tree still pairs them with the statement they describe.
    """
    for statement, following in zip(body, body[1:] + [None], strict=True):
        doc = None
        if (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            doc = following.value.value
        yield statement, doc


def markdown_text(doc: str | None) -> str:
    """One table cell from a docstring: one line, Markdown backticks, pipes escaped."""
    text = " ".join((doc or "").split())
    text = text.replace("``", "`")
    return text.replace("|", "\\|")


def code(text: str) -> str:
    """A code span whose content survives inside a table cell."""
    return "`" + text.replace("|", "\\|") + "`"


def evaluate(node: ast.expr):
    """Value of a constant arithmetic expression such as ``32 * 1024 * 1024``, else None.

    Only literals and arithmetic are evaluated, so nothing in the settings module runs.
    """
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    operators = {ast.Mult: lambda a, b: a * b, ast.Add: lambda a, b: a + b,
                 ast.Sub: lambda a, b: a - b, ast.Pow: lambda a, b: a ** b}
    if isinstance(node, ast.BinOp) and type(node.op) in operators:
        left, right = evaluate(node.left), evaluate(node.right)
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return operators[type(node.op)](left, right)
    return None


def default_text(source: str, node: ast.expr, enums: dict[str, dict[str, object]]) -> str:
    """The default as written in the source, plus its plain value when they differ.

    ``32 * 1024 * 1024`` tells the reader why, ``33554432`` what to compare against; for
    ``WorkerMode.BATCH`` the plain value is the string the environment variable takes.
    """
    written = ast.get_source_segment(source, node)
    text = code(written)
    value = evaluate(node)
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.attr in enums.get(node.value.id, {})):
        value = enums[node.value.id][node.attr]
        return f"{text} (= {code(repr(value))})"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and repr(value) != written:
        text += f" (= {code(repr(value))})"
    return text


def enum_members(tree: ast.Module) -> dict[str, dict[str, object]]:
    """Enum classes of the module, each as member name -> literal value.

    A setting typed by one of them takes the member's value in the environment, so the
    page shows those values rather than only the Python names.
    """
    enums = {}
    for node in tree.body:
        bases = {ast.unparse(base) for base in node.bases} if isinstance(node, ast.ClassDef) else set()
        if not bases & {"enum.Enum", "Enum", "enum.StrEnum", "StrEnum"}:
            continue
        enums[node.name] = {
            statement.targets[0].id: ast.literal_eval(statement.value)
            for statement in node.body
            if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name)
        }
    return enums


def type_text(annotation: str, enums: dict[str, dict[str, object]]) -> str:
    """The field's type, with the accepted values when it is one of the module's enums."""
    if annotation in enums:
        choices = " or ".join(code(str(value)) for value in enums[annotation].values())
        return f"{code(annotation)}: {choices}"
    return code(annotation)


def settings_class(tree: ast.Module) -> ast.ClassDef:
    """The ``Settings`` dataclass; its absence means the page cannot be built at all."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            return node
    raise SystemExit("shared/settings.py defines no Settings class")


def settings_fields(source: str, tree: ast.Module) -> list[dict]:
    """Every field of ``Settings`` in declaration order: name, type, default, docstring."""
    enums = enum_members(tree)
    rows = []
    for statement, doc in documented_statements(settings_class(tree).body):
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        value = statement.value
        rows.append({
            "name": statement.target.id,
            "type": type_text(ast.get_source_segment(source, statement.annotation), enums),
            "default": None if value is None else default_text(source, value, enums),
            "doc": doc,
        })
    return rows


def configuration_page(source: str, tree: ast.Module) -> str:
    """The whole of docs/configuration.md, one table row per setting."""
    lines = [CONFIGURATION_INTRO, "| variable | type | default | meaning |", "|---|---|---|---|"]
    for field in settings_fields(source, tree):
        variable = code(ENV_PREFIX + field["name"].upper())
        default = field["default"] or "(required)"
        lines.append(f"| {variable} | {field['type']} | {default} | {markdown_text(field['doc'])} |")
    return "\n".join(lines) + "\n"


def load_keys_module():
    """Import ``shared.keys`` from this checkout, whatever the current directory is."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("shared.keys")


def key_template(function) -> str | None:
    """The key a function builds, with each argument shown as ``{argument}``."""
    names = function.__code__.co_varnames[:function.__code__.co_argcount]
    try:
        key = function(*(f"{{{name}}}" for name in names))
    except Exception:  # a key builder that cannot take placeholders is not listed as a key
        return None
    return key if isinstance(key, str) else None


def key_entries(tree: ast.Module, keys) -> tuple[list[tuple], list[tuple]]:
    """(keys, other constants) of ``shared/keys.py``, each as (name, value, docstring).

    A key is an upper-case constant whose string contains the prefix, or a function whose
    result does; other upper-case constants (``BATCH_SIZE_BUCKETS``) are listed apart.
    """
    found, others = [], []
    for statement, doc in documented_statements(tree.body):
        if isinstance(statement, ast.FunctionDef) and not statement.name.startswith("_"):
            template = key_template(getattr(keys, statement.name))
            if template is not None and keys.PREFIX in template:
                arguments = ", ".join(arg.arg for arg in statement.args.args)
                found.append((f"keys.{statement.name}({arguments})", template,
                              ast.get_docstring(statement)))
        elif (isinstance(statement, ast.Assign) and len(statement.targets) == 1
              and isinstance(statement.targets[0], ast.Name)):
            name = statement.targets[0].id
            if not name.isupper() or name == "PREFIX":
                continue
            value = getattr(keys, name)
            entry = (f"keys.{name}", value, doc)
            (found if isinstance(value, str) and keys.PREFIX in value else others).append(entry)
    return found, others


def redis_keys_page(tree: ast.Module, keys) -> str:
    """The whole of docs/redis-keys.md: the keys, then the constants that are not keys."""
    found, others = key_entries(tree, keys)
    lines = [REDIS_KEYS_INTRO, "| in code | key | holds |", "|---|---|---|"]
    for name, key, doc in found:
        lines.append(f"| {code(name)} | {code(key)} | {markdown_text(doc)} |")
    if others:
        lines += ["", "## Other constants", "",
                  "Values `shared/keys.py` defines beside the keys, for the data stored under them.",
                  "", "| in code | value | meaning |", "|---|---|---|"]
        for name, value, doc in others:
            lines.append(f"| {code(name)} | {code(repr(value))} | {markdown_text(doc)} |")
    return "\n".join(lines) + "\n"


def generated_pages() -> dict[Path, str]:
    """Every generated page and the text it should have, built in memory (nothing written)."""
    settings_source, settings_tree = parse(SETTINGS_SOURCE)
    _, keys_tree = parse(KEYS_SOURCE)
    return {
        CONFIGURATION_PAGE: configuration_page(settings_source, settings_tree),
        REDIS_KEYS_PAGE: redis_keys_page(keys_tree, load_keys_module()),
    }


def stale_pages(pages: dict[Path, str]) -> list[Path]:
    """Pages whose file is missing or differs from what would be generated."""
    return [path for path, text in pages.items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    """Write the pages, or with ``--check`` report the stale ones and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated page is out of date")
    args = parser.parse_args(argv)
    pages = generated_pages()
    if args.check:
        stale = stale_pages(pages)
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run {COMMAND}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in pages.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
