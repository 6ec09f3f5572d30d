"""Write the fault suite's results into bench/RESULTS.md as a table (``make bench-faults``).

The section sits between two markers so ``make bench`` keeps it and this replaces only it.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from bench import sections

BENCH = Path(__file__).resolve().parent
RESULTS_JSON = BENCH / ".work" / "reliability.json"
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"


def kept_section(results_md: Path) -> str:
    """The reliability section of an existing RESULTS.md, markers included ('' if none)."""
    return sections.kept(results_md, START, END)


def render(rows: list[dict]) -> str:
    lines = [START, "## Reliability (fault injection)", "",
             f"Produced by `make bench-faults` on {time.strftime('%Y-%m-%d')}: each fault injected under load "
             "through nginx, then every job that got a 202 checked by the no-loss oracle "
             "(tests/faults/harness.py). *Ran twice*: jobs started more than once (a fault may make a job "
             "run again; its result and webhook are still stored and sent once). *Recovery*: from the "
             "fault (or the end of the load) until the last accepted job ended. *Unavailable*: from the "
             "first refused submit after the fault to the next accepted one (measured for the Redis "
             "failover faults).", "",
             "| fault | accepted | in flight at fault | lost | ran twice | failed | recovery s | unavailable s "
             "| other answers |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (int(re.match(r"\d+", r["fault"])[0]), r["fault"])):
        refused = ", ".join(f"{code}: {n}" for code, n in row["refused"].items()) or "none"
        lines.append(f"| {row['fault']} | {row['accepted']} | {row['in_flight_at_fault']} | {row['lost']} | "
                     f"{row['ran_twice']} | {row['failed']} | {row['recovery_s']} | "
                     f"{'-' if row.get('unavailable_s') is None else row['unavailable_s']} | {refused} |")
    lines += ["", "Failed jobs are the ones the fault was about (the poison pill, the job over its time "
              "limit); every other accepted job succeeded.", "",
              "12 to 15 run on a primary with two replicas and three Sentinels (`INFERQ_LOCAL_REDIS_REPLICAS=2`, "
              "Sentinel's down-after 3 s), every 202 confirmed by a replica (`MIN_REPLICAS=1`), under a steady load "
              "of four submitting threads with webhooks (tests/faults/test_failover.py). In 12 and 12c the few 503s "
              "are the requests that were waiting on the lost primary when Sentinel moved on; in 12b the restarted "
              "primary was back before Sentinel called it down, so there was no failover; in 14 the window is the "
              "partition itself, every submit in it refused and none accepted; in 15 the load starts after the "
              "failover.", "",
              "7b is a measurement, not a guarantee: with `appendfsync everysec` Redis writes every command "
              "to the AOF at once and fsyncs once a second, so killing the Redis *process* loses nothing "
              "(the kernel still holds the written pages). What `everysec` risks is the last second or two "
              "of acknowledged jobs on an operating-system crash or power loss, which a test on one "
              "machine cannot inject; `always` (the `make run` default) fsyncs before each reply.", END]
    return "\n".join(lines) + "\n"


def main() -> int:
    if not RESULTS_JSON.exists():
        print("no fault results yet: run make test-faults", file=sys.stderr)
        return 1
    rows = json.loads(RESULTS_JSON.read_text())
    results_md = BENCH / "RESULTS.md"
    sections.replace(results_md, render(rows), START, END)
    print(f"wrote the reliability table ({len(rows)} faults) into {results_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
