"""Sections of bench/RESULTS.md that other commands own, marked so each replaces only its own."""
from __future__ import annotations

from pathlib import Path


def kept(results_md: Path, start: str, end: str) -> str:
    """The marked section of an existing RESULTS.md, markers included ('' if none)."""
    if not results_md.exists():
        return ""
    text = results_md.read_text()
    if start not in text or end not in text:
        return ""
    return text[text.index(start):text.index(end) + len(end)] + "\n"


def replace(results_md: Path, section: str, start: str, end: str) -> None:
    """Put ``section`` (markers included) in place of the old one, or append it."""
    text = results_md.read_text() if results_md.exists() else "# Benchmark results\n"
    if start in text and end in text:
        text = text[:text.index(start)] + section.rstrip("\n") + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    results_md.write_text(text)


def publish(results_md: Path, raw_json: Path, raw: object, section: str, start: str, end: str) -> None:
    """Keep a benchmark's raw figures in ``raw_json``, put its section in RESULTS.md and show it."""
    import orjson

    raw_json.write_text(orjson.dumps(raw, option=orjson.OPT_INDENT_2).decode())
    replace(results_md, section, start, end)
    print(section)
