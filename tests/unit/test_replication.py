"""Sentinel configuration, held submits and their release or withdrawal, on fakeredis (which has
no ``WAIT``: the confirmation count is handed to ``settle`` as ``WAIT`` would return it)."""
import time

import kombu
import pytest

from launcher import redis_set
from shared import keys, redis_connection, replication
from shared.job_store import JobStore
from shared.jobs import Job, JobStatus
from shared.queue import JobQueue
from shared.replication import ReplicasBehind, Replication
from shared.settings import Settings
from tests.fixtures.lanes import waiting_count


def job_of(job_id: str) -> Job:
    return Job(id=job_id, model="digits", model_version="1", instances_json=b"[[1]]", created_at=time.time())


@pytest.fixture
def store(redis_client):
    return JobStore(redis_client, 3600)


@pytest.fixture
def held(redis_client, store):
    return JobQueue(redis_client, store, 0, Replication(redis_client, 1, 500))


def hold(queue: JobQueue, job: Job) -> None:
    """What ``JobQueue.submit`` sends before ``WAIT``: the submit script, with ``hold``."""
    reply = queue.send(job)
    assert reply[0] == b"queued"


def test_a_held_job_is_stored_but_no_worker_can_claim_it(redis_client, held):
    hold(held, job_of("j1"))
    assert redis_client.hget(keys.job("j1"), "status") == b"queued"
    assert waiting_count(redis_client, "digits") == 0
    assert redis_client.llen(keys.doorbell("digits")) == 0
    assert redis_client.zscore(keys.QUEUE_HELD, "j1") is not None


def test_a_confirmed_job_is_released_into_its_lane_and_rings_for_a_worker(redis_client, held):
    job = job_of("j1")
    hold(held, job)
    held.replication.settle(job, confirmed=1)
    assert waiting_count(redis_client, "digits") == 1
    assert redis_client.llen(keys.doorbell("digits")) == 1
    assert redis_client.zcard(keys.QUEUE_HELD) == 0 and redis_client.zcard(keys.lane_held("digits")) == 0


def test_an_unconfirmed_job_is_withdrawn_leaving_no_trace_and_raises(redis_client, held):
    job = job_of("j1")
    hold(held, job)
    with pytest.raises(ReplicasBehind) as refused:
        held.replication.settle(job, confirmed=0)
    assert refused.value.wanted == 1 and refused.value.confirmed == 0
    assert not redis_client.exists(keys.job("j1"))
    assert not redis_client.hexists(keys.lane_messages("digits"), "j1")
    assert redis_client.zcard(keys.QUEUE_HELD) == 0 and redis_client.zcard(keys.lane_held("digits")) == 0
    assert int(redis_client.hget(keys.pending("digits"), "1")) == 0
    assert int(redis_client.hget(keys.METRICS_SUBMITTED, "digits")) == 0


def test_a_hold_its_web_process_never_settled_is_released_by_the_sweep(redis_client, held):
    hold(held, job_of("j1"))
    assert held.replication.release_stale(redis_client, now=time.time()) == 0  # still young
    assert held.replication.release_stale(redis_client, now=time.time() + replication.STALE_HOLD_S + 1) == 1
    assert waiting_count(redis_client, "digits") == 1


def test_a_job_canceled_while_held_is_never_released(redis_client, held, store):
    job = job_of("j1")
    hold(held, job)
    store.cancel(store.get("j1"))
    held.replication.settle(job, confirmed=1)
    assert waiting_count(redis_client, "digits") == 0
    assert store.get("j1").status is JobStatus.CANCELED


def test_a_retried_submit_of_a_stored_job_changes_nothing(redis_client, store):
    queue = JobQueue(redis_client, store)
    job = job_of("j1")
    queue.submit(job)
    again = queue.submit(job)
    assert again.position == 0
    assert waiting_count(redis_client, "digits") == 1
    assert int(redis_client.hget(keys.pending("digits"), "1")) == 1


def test_without_replicas_required_the_queue_never_holds(redis_client, store):
    JobQueue(redis_client, store).submit(job_of("j1"))
    assert redis_client.zcard(keys.QUEUE_HELD) == 0 and waiting_count(redis_client, "digits") == 1


def test_sentinel_addresses_are_parsed_and_malformed_ones_refused():
    assert redis_connection.parse_sentinels("a:26379, 10.0.0.2:26380,") == (("a", 26379), ("10.0.0.2", 26380))
    assert redis_connection.parse_sentinels("[::1]:26379") == (("::1", 26379),)
    for bad in ("a", "a:", ":1", "a:0", "a:70000", "a:x"):
        with pytest.raises(ValueError, match="INFERQ_REDIS_SENTINELS"):
            redis_connection.parse_sentinels(bad)


def test_without_sentinels_every_client_uses_the_url():
    settings = Settings(redis_url="redis://:pw@127.0.0.1:6390/2")
    assert redis_connection.sentinel_target(settings) is None
    assert redis_connection.celery_broker(settings) == ("redis://:pw@127.0.0.1:6390/2", {})
    pool = redis_connection.connect(settings, max_connections=4, pool_timeout=1).connection_pool
    assert pool.connection_kwargs["port"] == 6390 and pool.max_connections == 4


def test_with_sentinels_clients_ask_them_for_the_primary_with_the_data_password():
    settings = Settings(redis_url="redis://:data%21pw@ignored:1/3", redis_sentinels="127.0.0.1:26390,127.0.0.1:26391",
                        redis_sentinel_master="main", redis_sentinel_password="sentinel-pw")
    client = redis_connection.connect(settings, max_connections=8, pool_timeout=2)
    pool = client.connection_pool
    assert isinstance(pool, redis_connection.BlockingSentinelPool)
    assert pool.service_name == "main" and pool.max_connections == 8
    assert pool.connection_kwargs["password"] == "data!pw" and pool.connection_kwargs["db"] == 3
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert sentinel["password"] == "sentinel-pw"
    url, options = redis_connection.celery_broker(settings)
    assert url == "sentinel://:data%21pw@127.0.0.1:26390/3;sentinel://:data%21pw@127.0.0.1:26391/3"
    assert kombu.Connection(url).password == "data!pw"  # what kombu hands the data nodes
    assert options["master_name"] == "main" and options["sentinel_kwargs"]["password"] == "sentinel-pw"


def test_the_data_password_setting_wins_over_the_url():
    settings = Settings(redis_url="redis://:in-url@h:1/0", redis_password="explicit")
    assert redis_connection.data_password(settings) == "explicit"


def test_make_run_with_replicas_writes_a_primary_replicas_and_three_sentinels(tmp_path):
    settings = Settings(local_redis_replicas=2, local_redis_port=7000, local_sentinel_port=27000)
    local = redis_set.local_redis(settings, tmp_path)
    assert list(local.nodes) == ["redis", "redis-replica-1", "redis-replica-2"]
    assert list(local.sentinels) == ["sentinel-1", "sentinel-2", "sentinel-3"]
    replica = local.nodes["redis-replica-2"].read_text()
    assert "port 7002" in replica and "replicaof 127.0.0.1 7000" in replica and "appendonly yes" in replica
    assert f"masterauth {local.password}" in local.nodes["redis"].read_text()
    # WAIT confirms a write in a replica's memory: replicas fsync once a second, the primary per write.
    assert "appendfsync everysec" in replica and "appendfsync always" in local.nodes["redis"].read_text()
    sentinel = local.sentinels["sentinel-3"].read_text()
    assert "port 27002" in sentinel and "sentinel monitor inferq 127.0.0.1 7000 2" in sentinel
    assert all("bind 127.0.0.1" in conf.read_text() for conf in [*local.nodes.values(), *local.sentinels.values()])
    env = local.environment(settings, min_replicas_given=False)
    assert env["redis_sentinels"] == "127.0.0.1:27000,127.0.0.1:27001,127.0.0.1:27002"
    assert env["redis_min_replicas"] == "1"
    assert "redis_min_replicas" not in local.environment(settings, min_replicas_given=True)


def test_a_restarted_make_run_keeps_the_configs_a_failover_rewrote(tmp_path):
    settings = Settings(local_redis_replicas=2, local_redis_port=7000, local_sentinel_port=27000)
    first = redis_set.local_redis(settings, tmp_path)
    first.sentinels["sentinel-1"].write_text("sentinel monitor inferq 127.0.0.1 7001 2\n")  # as after a failover
    again = redis_set.local_redis(settings, tmp_path)
    assert again.sentinels["sentinel-1"].read_text() == "sentinel monitor inferq 127.0.0.1 7001 2\n"
    resized = redis_set.local_redis(Settings(local_redis_replicas=1, local_redis_port=7000,
                                             local_sentinel_port=27000), tmp_path)
    assert "7000 2" in resized.sentinels["sentinel-1"].read_text()


def test_without_replicas_make_run_writes_one_node_and_no_sentinel(tmp_path):
    local = redis_set.local_redis(Settings(local_redis_port=7000), tmp_path)
    assert list(local.nodes) == ["redis"] and not local.sentinels
    assert "replicaof" not in local.nodes["redis"].read_text()
    assert local.environment(Settings(), False) == {"redis_url": local.url}
