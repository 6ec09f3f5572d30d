"""``inferq top``'s reading of /metrics: parsing, rates and histogram quantiles."""
import time

from inferq_client.metrics import model_summaries, parse, quantile, render_table

TEXT = """# HELP inferq_queue_depth Jobs waiting in a model's queue.
inferq_queue_depth{model="digits",lane="high"} 2.0
inferq_queue_depth{model="digits",lane="normal"} 5.0
inferq_queue_depth{model="digits",lane="low"} 0.0
inferq_workers{model="digits"} 2.0
inferq_jobs_finished_total{model="digits",status="succeeded"} 90.0
inferq_jobs_finished_total{model="digits",status="failed"} 10.0
inferq_job_latency_seconds_bucket{le="0.01",model="digits"} 50.0
inferq_job_latency_seconds_bucket{le="0.1",model="digits"} 99.0
inferq_job_latency_seconds_bucket{le="+Inf",model="digits"} 100.0
"""


def test_samples_are_parsed_with_labels():
    samples = parse(TEXT)
    assert ("inferq_workers", {"model": "digits"}, 2.0) in samples
    assert len(samples) == 9


def test_quantiles_interpolate_within_buckets():
    buckets = [(0.01, 50.0), (0.1, 99.0), (float("inf"), 100.0)]
    assert quantile(buckets, 0.5) == 0.01
    assert 0.01 < quantile(buckets, 0.9) < 0.1
    assert quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5) is None


def test_summaries_compute_throughput_between_snapshots():
    earlier = (time.monotonic() - 2.0, TEXT.replace("90.0", "70.0"))
    [row] = model_summaries(TEXT, earlier)
    assert row["model"] == "digits" and row["queue_depth"] == 7 and row["workers"] == 2
    assert 9 <= row["jobs_per_s"] <= 10.5
    assert "digits" in render_table([row])
