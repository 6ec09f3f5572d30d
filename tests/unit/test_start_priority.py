"""A worker starting beside busy ones loads in SCHED_IDLE, then every thread serves normally."""
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from shared import keys
from workers.inference import start_priority

ROOT = Path(__file__).resolve().parents[2]


def test_only_a_live_worker_of_one_of_the_models_counts_as_serving(redis_client):
    redis_client.zadd(keys.workers("digits"), {"gone@host": time.time() - 600})
    assert not start_priority.others_serving(redis_client, ["digits", "pair"])
    redis_client.zadd(keys.workers("pair"), {"alive@host": time.time()})
    assert start_priority.others_serving(redis_client, ["digits", "pair"])


@pytest.mark.skipif(not start_priority.can_return_to_normal(), reason="leaving SCHED_IDLE needs CAP_SYS_NICE")
def test_threads_started_while_idle_inherit_it_and_all_return_to_normal():
    script = textwrap.dedent("""
        import json, os, threading
        from workers.inference import start_priority
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        release = threading.Event()
        helper = threading.Thread(target=release.wait)  # like TensorFlow's pools, made while idle
        helper.start()
        before = sorted(os.sched_getscheduler(int(t)) for t in os.listdir("/proc/self/task"))
        start_priority.back_to_normal()
        after = sorted(os.sched_getscheduler(int(t)) for t in os.listdir("/proc/self/task"))
        release.set()
        print(json.dumps([before, after, os.SCHED_IDLE, os.SCHED_OTHER]))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    before, after, idle, normal = json.loads(out.stdout)
    assert before == [idle, idle] and after == [normal, normal]


@pytest.mark.skipif(not start_priority.can_return_to_normal(), reason="leaving SCHED_IDLE needs CAP_SYS_NICE")
def test_a_start_that_stays_idle_too_long_returns_to_normal_by_itself():
    script = textwrap.dedent("""
        import json, os, time
        from workers.inference import start_priority
        start_priority.enter_idle(0.3)
        idle_now = os.sched_getscheduler(0)
        time.sleep(1.0)  # never warm: the deadline must act alone
        print(json.dumps([idle_now, os.sched_getscheduler(0), os.SCHED_IDLE, os.SCHED_OTHER]))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    during, after, idle, normal = json.loads(out.stdout)
    assert (during, after) == (idle, normal)
