"""Install the system packages the tests drive, on Debian as root; otherwise say what is missing.

``make test`` runs this first. nginx and Redis need nothing here: the virtualenv carries
fallbacks for both (``launcher/binaries.py``). What remains is Debian's ``chromium`` (the
dashboard's browser test) and ``iproute2`` (a worker on a second host, in a network namespace).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

NEEDED = {"chromium": "chromium", "ip": "iproute2"}
"""Command the tests run -> the Debian package that provides it."""


def missing() -> list[str]:
    """The packages whose command is not on PATH."""
    return [package for command, package in NEEDED.items() if shutil.which(command) is None]


def can_install() -> bool:
    """apt-get works here: a Debian-family system, run as root."""
    return os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def main() -> int:
    packages = missing()
    if not packages:
        return 0
    if not can_install():
        for package in packages:
            print(f"tests needing {package} will be skipped: install it (apt-get install {package})", flush=True)
        return 0
    print(f"installing {', '.join(packages)} for the tests (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
