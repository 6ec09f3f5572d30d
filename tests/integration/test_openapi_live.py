"""Schemathesis drives the live API (through nginx) from its own /openapi.json: every check,
every phase (examples, coverage, fuzzing, stateful via the document's links). It must find no
5xx, no response that violates the document, and no undocumented status or header."""
import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_no_failure_in_any_phase(stack, tmp_path):
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [str(schemathesis), "--config-file", str(CONFIG), "--no-color", "run", f"{stack.url}/openapi.json",
         "--checks", "all", "--max-examples", "25", "--seed", "20261129", "--workers", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache stays out of the tree
    summary = result.stdout[result.stdout.find("SUMMARY"):]
    assert result.returncode == 0, result.stdout[-6000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
