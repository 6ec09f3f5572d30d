"""The code stays readable by construction: small modules, small functions, one reader of the environment."""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "web", "workers", "launcher", "scripts", "client/inferq_client", "bench", "tests")
SERVICE = ("shared", "web", "workers", "launcher", "scripts")
"""The service's own code; the client SDK reads its own INFERQ_URL and is not bound by the settings rule."""

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 40

DECLARATIVE = {("web/openapi.py", "document")}
"""Functions that are data in code form (the OpenAPI document), exempt from the length rule."""


def sources() -> list[Path]:
    """The project's own Python files: virtual environments (``bench/.venv-*`` included) and
    scratch directories are not walked at all."""
    found = []
    for package in PACKAGES:
        for directory, subdirectories, files in os.walk(ROOT / package):
            subdirectories[:] = [d for d in subdirectories if not d.startswith((".venv", ".work"))]
            found += [Path(directory) / name for name in files if name.endswith(".py")]
    return sorted(found)


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in sources() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_over_40_lines_except_declarative_data():
    long = []
    for path in sources():
        relative = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (relative, node.name) not in DECLARATIVE:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{relative}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_only_the_settings_module_reads_inferq_variables_from_the_environment():
    reading = re.compile(r"(os\.environ(\.get)?[\[(]|os\.getenv\()\s*f?[\"']INFERQ_")
    readers = [str(p.relative_to(ROOT)) for p in sources()
               if p.relative_to(ROOT).parts[0] in SERVICE and reading.search(p.read_text())]
    assert readers == []
