"""Unit-test fixtures: fakeredis for Redis-facing logic, no TensorFlow."""
from __future__ import annotations

import fakeredis
import pytest

from shared.settings import Settings
from shared.signatures import ModelCatalog, ModelSignature, TensorSpec
from web.app import create_app

DIGITS = ModelSignature(
    name="digits", version=1,
    inputs=(TensorSpec("image", (None, 8, 8), "float32"),),
    outputs=(TensorSpec("probabilities", (None, 10), "float32"),),
)


@pytest.fixture
def redis_client():
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    yield client
    client.flushall()


@pytest.fixture
def settings():
    return Settings(max_body_bytes=64 * 1024, max_instances=16, max_elements=16 * 64, max_json_values=25_000,
                    wait_cap_s=2.0)


@pytest.fixture
def app(settings, redis_client):
    ModelCatalog(redis_client).publish(DIGITS)
    return create_app(settings, redis_client=redis_client)


@pytest.fixture
def client(app):
    return app.test_client()


def digit_image(value: float = 1.0) -> list[list[float]]:
    """An 8x8 instance for the digits signature."""
    return [[value] * 8 for _ in range(8)]


@pytest.fixture
def spans():
    """Every span this test makes, kept in memory by a real SDK provider (sampling everything)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from shared import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()


def submit_job(store, job):
    """Store ``job`` the way the API does: the Lua submit script (record, counters and message)."""
    from shared.queue import JobQueue

    JobQueue(store.redis, store).submit(job)
    return job
