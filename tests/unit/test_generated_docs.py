"""The generated reference pages match the code, and the README stays a newcomer's page.

docs/configuration.md and docs/redis-keys.md are built by scripts/generate_docs.py; these
tests build them again in memory and compare, so a setting or key added without re-running
the generator fails here instead of leaving the docs silently wrong. Nothing is written.
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_LINES = 200


@pytest.fixture(scope="module")
def generator():
    """scripts/ is not a package, so the generator is loaded from its path."""
    spec = importlib.util.spec_from_file_location("generate_docs", ROOT / "scripts" / "generate_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages(generator):
    return generator.generated_pages()


def on_disk(path: Path) -> str:
    assert path.exists(), f"{path.relative_to(ROOT)} is missing: run python scripts/generate_docs.py"
    return path.read_text(encoding="utf-8")


def test_configuration_page_matches_the_settings(generator, pages):
    expected = pages[generator.CONFIGURATION_PAGE]
    assert on_disk(generator.CONFIGURATION_PAGE) == expected, \
        "docs/configuration.md is stale: run python scripts/generate_docs.py"


def test_redis_keys_page_matches_shared_keys(generator, pages):
    expected = pages[generator.REDIS_KEYS_PAGE]
    assert on_disk(generator.REDIS_KEYS_PAGE) == expected, \
        "docs/redis-keys.md is stale: run python scripts/generate_docs.py"


def test_every_setting_is_documented_with_a_docstring(generator):
    source, tree = generator.parse(generator.SETTINGS_SOURCE)
    fields = generator.settings_fields(source, tree)
    assert fields, "no Settings fields found"
    undocumented = [field["name"] for field in fields if not (field["doc"] or "").strip()]
    assert not undocumented, f"Settings fields without a docstring: {undocumented}"


def test_every_settings_field_appears_on_the_configuration_page(generator, pages):
    from dataclasses import fields

    from shared.settings import Settings

    page = pages[generator.CONFIGURATION_PAGE]
    missing = [f.name for f in fields(Settings) if f"`INFERQ_{f.name.upper()}`" not in page]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def test_every_key_function_appears_with_its_template(generator, pages):
    from shared import keys

    page = pages[generator.REDIS_KEYS_PAGE]
    assert "`inferq:job:{job_id}`" in page
    assert "`inferq:processing:{model_name}:{worker_id}`" in page
    assert f"`{keys.WEBHOOK_SCHEDULE}`" in page


def test_check_mode_passes_on_a_fresh_checkout_and_writes_nothing():
    before = {path: path.stat().st_mtime_ns for path in (ROOT / "docs").glob("*.md")}
    result = subprocess.run([sys.executable, "-B", str(ROOT / "scripts" / "generate_docs.py"), "--check"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert {path: path.stat().st_mtime_ns for path in (ROOT / "docs").glob("*.md")} == before


def test_check_mode_names_the_stale_page(generator, capsys, monkeypatch):
    # What would be generated is taken from disk, so only the edited page differs.
    expected = {path: on_disk(path) for path in (generator.CONFIGURATION_PAGE, generator.REDIS_KEYS_PAGE)}
    expected[generator.REDIS_KEYS_PAGE] += "an edit by hand\n"
    monkeypatch.setattr(generator, "generated_pages", lambda: expected)
    assert generator.main(["--check"]) == 1
    message = capsys.readouterr().err
    assert "docs/redis-keys.md" in message
    assert "docs/configuration.md" not in message


def test_readme_links_every_docs_page():
    readme = README.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#[^)]*)?\)", readme))
    pages = {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")}
    assert pages - linked == set(), f"docs pages the README does not link: {sorted(pages - linked)}"


def test_readme_links_only_pages_that_exist():
    readme = README.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(((?:docs/)?[^)#\s:]+\.md)", readme):
        assert (ROOT / target).exists(), f"README links a missing page: {target}"


def test_readme_fits_on_a_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
