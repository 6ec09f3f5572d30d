"""Every command block (```sh) of the quickstarts runs against the real stack and succeeds."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("quickstart-*.md"))
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_quickstart_commands_run(stack, tmp_path, page):
    blocks = BLOCK.findall(page.read_text())
    assert blocks, f"{page.name} has no runnable commands"
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "client", tmp_path / "client", ignore=shutil.ignore_patterns("*.egg-info", "build"))
    env = {**os.environ, "INFERQ_URL": stack.url, "PYTHONPATH": str(ROOT),
           "INFERQ_WEBHOOK_SECRET": stack.env["INFERQ_WEBHOOK_SECRET"],
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for block in blocks:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, f"{page.name} block failed:\n{block}\n{result.stdout}\n{result.stderr}"
