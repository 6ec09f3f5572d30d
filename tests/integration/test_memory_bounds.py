"""The worst request of each input type, at the default limits (32 MiB bodies, 2,000,000 JSON
values, 24,000,000 pixels), grows the one gunicorn worker of a real stack by at most 256 MiB;
so do eight of the largest bodies sent at once, because big bodies take turns.

Growth is the worker's peak resident set (``VmHWM``, reset through ``clear_refs`` before each
request) minus its resident set before the request.
"""
from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.fixtures.hostile_bodies import multipart, npy_bytes, png_chunk, real_image
from tests.integration.stack import copy_demo_model, start_stack, stop_stack

MIB = 1024 * 1024
GROWTH_LIMIT = 256 * MIB
JOBS = "/v1/models/digits/jobs"
FORM = {"Content-Type": "multipart/form-data; boundary=inferq-catalogue-boundary"}


@pytest.fixture(scope="module")
def lean_stack(tmp_path_factory):
    """digits alone, every limit at its default, one web worker so its memory is the one to watch."""
    base = tmp_path_factory.mktemp("memory")
    copy_demo_model(base / "models")
    running = start_stack(base, base / "models", {"digits"}, {"INFERQ_WEB_WORKERS": "1"})
    yield running
    assert stop_stack(running) == 0, running.logs()


def worker_pid(stack) -> int:
    master = stack.program_pid("web")
    (pid,) = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(pid)


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def peak_growth(stack, send) -> tuple[int, list[requests.Response]]:
    """Bytes the web worker's resident set peaked above where it stood, while ``send`` ran."""
    pid = worker_pid(stack)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = memory_kib(pid, "VmRSS")
    responses = send()
    assert worker_pid(stack) == pid, "the web worker was replaced"
    return (memory_kib(pid, "VmHWM") - before) * 1024, responses


def rgba_png(side: int) -> bytes:
    """A real ``side`` x ``side`` RGBA PNG of zeros: tiny on the wire, 4 bytes a pixel decoded."""
    packer = zlib.compressobj(9)
    row = b"\0" * (4 * side + 1)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def json_values(unit: bytes, count: int, tail: bytes = b"[]]}") -> bytes:
    """``{"instances": [unit unit ... ]}`` with ``count`` units: just inside the value budget."""
    return b'{"instances": [' + unit * count + tail


WORST = {
    "json-2m-empty-lists": (lambda: json_values(b"[],", 999_000), "application/json", 422),  # [ and , count
    "json-2m-floats": (lambda: json_values(b"0.25,", 1_999_000, tail=b"0]}"), "application/json", 422),
    "json-31mib-string": (lambda: b'{"instances": [], "x": "' + b"a" * (31 * MIB) + b'"}', "application/json", 422),
    "npy-32mib-too-many-rows": (lambda: npy_bytes(np.zeros((131_000, 8, 8), np.float32)), "application/x-npy", 422),
    "image-24m-pixel-rgba-png": (lambda: multipart([("big.png", rgba_png(4898))]), FORM["Content-Type"], 202),
    "image-900-small-parts": (lambda: multipart([(f"{i}.png", real_image("PNG")) for i in range(900)]),
                              FORM["Content-Type"], 202),
    "v2-32mib-binary-tensor": (None, "application/json", 400),
}


def v2_binary() -> tuple[bytes, dict]:
    header = b'{"inputs": [{"name": "image", "shape": [131000, 8, 8], "datatype": "FP32", ' \
             b'"parameters": {"binary_data_size": 33536000}}]}'
    return header + b"\0" * 33_536_000, {"Inference-Header-Content-Length": str(len(header))}


@pytest.mark.parametrize("name", list(WORST))
def test_the_worst_request_of_each_type_grows_a_web_worker_by_at_most_256_mib(lean_stack, name):
    build, content_type, status = WORST[name]
    target, headers = JOBS, {"Content-Type": content_type}
    if build is None:
        body, extra = v2_binary()
        target, headers = "/v2/models/digits/infer", {**headers, **extra}
    else:
        body = build()
    growth, (response,) = peak_growth(lean_stack, lambda: [
        requests.post(lean_stack.url + target, data=body, headers=headers, timeout=60)])
    print(f"{name}: body {len(body) / MIB:.1f} MiB, web worker peak growth {growth / MIB:.0f} MiB")
    assert response.status_code == status, response.text[:300]
    assert growth <= GROWTH_LIMIT, f"{name} grew the web worker by {growth / MIB:.0f} MiB"


def test_eight_of_the_largest_bodies_at_once_take_turns_within_the_bound(lean_stack):
    body = json_values(b"[],", 999_000)
    answers: list[requests.Response] = []

    def send_all():
        threads = [threading.Thread(target=lambda: answers.append(requests.post(
            lean_stack.url + JOBS, data=body, headers={"Content-Type": "application/json"}, timeout=60)))
            for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    growth, responses = peak_growth(lean_stack, send_all)
    print(f"8 x json-2m-empty-lists at once: web worker peak growth {growth / MIB:.0f} MiB")
    assert sorted(r.status_code for r in responses) == [422] * 8
    assert growth <= GROWTH_LIMIT, f"eight at once grew the web worker by {growth / MIB:.0f} MiB"
