"""The ``inferq`` command line.

Exit codes: 0 success; 1 the job failed or was canceled; 2 bad usage; 3 the API refused the
request (not found, invalid input, conflict); 4 the service is unavailable or unreachable;
5 a wait timed out.
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path

import click

from inferq_client import _protocol as protocol
from inferq_client.client import Client
from inferq_client.errors import InferqError, JobFailed, RateLimited, Unavailable, WaitTimeout
from inferq_client.metrics import model_summaries, render_table

EXIT_FAILED, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_TIMEOUT = 1, 3, 4, 5


class Context:
    def __init__(self, url: str, api_key: str | None, as_json: bool, timeout: float):
        self.url, self.as_json = url, as_json
        self.client = Client(url, api_key=api_key, timeout=timeout)

    def emit(self, data, text: str) -> None:
        click.echo(json.dumps(data) if self.as_json else text)


def _fail(exc: Exception) -> None:
    if isinstance(exc, JobFailed):
        code = EXIT_FAILED
    elif isinstance(exc, WaitTimeout):
        code = EXIT_TIMEOUT
    elif isinstance(exc, (Unavailable, RateLimited)):
        code = EXIT_UNAVAILABLE
    else:
        code = EXIT_REFUSED
    click.echo(f"error: {exc}", err=True)
    sys.exit(code)


class Guarded(click.Group):
    """Turns client exceptions into a message on stderr and a meaningful exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InferqError as exc:
            _fail(exc)


@click.group(cls=Guarded)
@click.option("--url", envvar="INFERQ_URL", default=protocol.DEFAULT_URL, show_default=True,
              help="The API's base URL (env INFERQ_URL).")
@click.option("--api-key", envvar="INFERQ_API_KEY", default=None, help="Bearer key (env INFERQ_API_KEY).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per HTTP request.")
@click.pass_context
def main(ctx, url, api_key, as_json, timeout):
    """Submit inference jobs to inferq, wait for them, and stream large inputs through it."""
    ctx.obj = Context(url, api_key, as_json, timeout)


def load_instances(path: str):
    """Instances from a .npy file (first axis), or JSON: a list, or {"instances": [...]}."""
    if path.endswith(".npy"):
        import numpy as np

        return np.load(path, allow_pickle=False)
    data = json.loads(Path(path).read_text())
    return data["instances"] if isinstance(data, dict) else data


def _job_text(job) -> str:
    line = f"{job.id} {job.status}"
    if job.queue is not None:
        eta = job.queue.get("eta_s")
        start = f"starts in about {eta:.1f} s" if eta is not None else "no throughput measured yet"
        line += f" position {job.queue['position']}, {start}"
    if job.error:
        line += f" {job.error.get('type')}: {job.error.get('message')}"
    return line


PRIORITY = click.option("--priority", type=click.Choice(["high", "normal", "low"]), default=None,
                        help="The job's lane (default normal).")
MAX_QUEUE_S = click.option("--max-queue-s", type=float, default=None,
                           help="Start within this many seconds or end 'expired' (503 at once if the wait is longer).")


@main.command()
@click.argument("model")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--webhook", help="URL to POST the completed event to.")
@PRIORITY
@MAX_QUEUE_S
@click.pass_obj
def submit(obj: Context, model, file, webhook, priority, max_queue_s):
    """Queue FILE's instances (.json or .npy) for MODEL; prints the job id."""
    job = obj.client.submit(model, load_instances(file), webhook={"url": webhook} if webhook else None,
                            priority=priority, max_queue_s=max_queue_s)
    obj.emit(job.raw, job.id)


@main.command()
@click.argument("job_id")
@click.option("--wait-timeout", type=float, default=None, help="Give up after this many seconds.")
@click.pass_obj
def wait(obj: Context, job_id, wait_timeout):
    """Wait for JOB_ID to finish, with a spinner and the elapsed time on a terminal."""
    job = _wait_with_spinner(obj.client, job_id, wait_timeout)
    obj.emit(job.raw, _job_text(job))
    if job.status != "succeeded":
        sys.exit(EXIT_FAILED)


def _wait_with_spinner(client: Client, job_id: str, timeout: float | None):
    if not sys.stderr.isatty():
        return client.wait(job_id, timeout)
    started, frames = time.monotonic(), itertools.cycle("|/-\\")
    deadline = None if timeout is None else started + timeout
    while True:
        remaining = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
        job = client.wait(job_id, max(0.0, remaining)) if remaining > 0 else client.get(job_id)
        if job.done:
            click.echo("\r" + " " * 40 + "\r", nl=False, err=True)
            return job
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"job {job_id} is still {job.status} after {timeout}s")
        click.echo(f"\r{next(frames)} {job.status} {time.monotonic() - started:5.1f}s", nl=False, err=True)


@main.command()
@click.argument("model")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--wait-timeout", type=float, default=None, help="Give up after this many seconds.")
@PRIORITY
@MAX_QUEUE_S
@click.pass_obj
def predict(obj: Context, model, file, wait_timeout, priority, max_queue_s):
    """Submit FILE to MODEL, wait, and print the predictions as JSON."""
    job = obj.client.submit(model, load_instances(file), wait=protocol.LONG_POLL_S, priority=priority,
                            max_queue_s=max_queue_s)
    if not job.done:
        job = _wait_with_spinner(obj.client, job.id, wait_timeout)
    if job.status != "succeeded":
        raise JobFailed(job)
    obj.emit(job.raw, json.dumps(job.predictions))


@main.command()
@click.argument("job_id")
@click.pass_obj
def status(obj: Context, job_id):
    """Show JOB_ID's status: while queued, its position and estimated start; its error, if it failed."""
    job = obj.client.get(job_id)
    obj.emit(job.raw, _job_text(job))


@main.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context):
    """List the served models with their state and input and output shapes."""
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    found = obj.client.models()
    lines = [_model_text(m) for m in found]
    obj.emit({"models": found}, "\n".join(lines) or "no models are loaded")


@models.command(name="reload")
@click.pass_obj
def models_reload(obj: Context):
    """Ask every worker to rescan the model repository now (new versions roll out)."""
    notified = obj.client.reload_models()
    obj.emit({"workers_notified": notified}, f"{notified} worker(s) notified; "
                                             "watch 'inferq models' for the new versions")


def _model_text(model: dict) -> str:
    if "inputs" not in model:
        return f"{model['name']}  {model['state']}  {model.get('reason', '')}".rstrip()
    return (f"{model['name']}  v{model['versions']}  {model['state']}"
            f"  in {[(i['name'], i['shape'], i['dtype']) for i in model['inputs']]}"
            f"  out {[(o['name'], o['shape']) for o in model['outputs']]}")


@main.command()
@click.argument("job_id")
@click.pass_obj
def cancel(obj: Context, job_id):
    """Cancel a queued or running job."""
    job = obj.client.cancel(job_id)
    obj.emit(job.raw, _job_text(job))


@main.command(name="map")
@click.argument("model")
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="JSON Lines output, one prediction per input line; appended to when rerun.")
@click.option("--batch-size", default=64, show_default=True, help="Instances per job.")
@click.option("--concurrency", default=4, show_default=True, help="Jobs in flight.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar (plain lines off a TTY).")
@PRIORITY
@MAX_QUEUE_S
@click.pass_obj
def map_command(obj: Context, model, input_file, out_file, batch_size, concurrency, progress, priority, max_queue_s):
    """Predict every line of INPUT_FILE (JSON Lines, one instance each) into --out, in order.

    Rerunning resumes: lines already in --out are skipped.
    """
    done = _count_lines(out_file)
    with open(input_file) as source:
        total = sum(1 for _ in source)
    with open(input_file) as source, open(out_file, "a") as sink:
        instances = _Sized((json.loads(line) for line in itertools.islice(source, done, None)), total - done)
        written = 0
        for prediction in obj.client.map(model, instances, batch_size=batch_size, concurrency=concurrency,
                                         progress=progress, priority=priority, max_queue_s=max_queue_s):
            sink.write(json.dumps(prediction) + "\n")
            written += 1
            if written % batch_size == 0:
                sink.flush()
    obj.emit({"resumed_from": done, "written": written, "out": out_file},
             f"wrote {written} predictions to {out_file}" + (f" (resumed after {done})" if done else ""))


class _Sized:
    """An iterator with a known length, so progress can show an ETA."""

    def __init__(self, items, length: int):
        self.items, self.length = items, length

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return self.length


def _count_lines(path: str) -> int:
    if not os.path.exists(path):
        return 0
    with open(path) as existing:
        return sum(1 for line in existing if line.endswith("\n"))


@main.command()
@click.option("--interval", default=2.0, show_default=True, help="Seconds between refreshes.")
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@click.pass_obj
def top(obj: Context, interval, once):
    """A live view per model: queue depth, workers, throughput, p50/p99 latency (from /metrics)."""
    previous = None
    while True:
        text = obj.client.metrics()
        now = time.monotonic()
        rows = model_summaries(text, previous)
        previous = (now, text)
        if obj.as_json:
            click.echo(json.dumps(rows))
        else:
            if not once:
                click.clear()
            click.echo(render_table(rows))
        if once:
            return
        time.sleep(interval)


if __name__ == "__main__":
    main()
