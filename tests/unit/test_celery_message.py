"""Hand-built task messages match what Celery's own send_task writes, and decode strictly."""
import base64

import orjson
import pytest
from celery import Celery

from shared import celery_message
from shared.tasks import PREDICT_TASK


def test_message_carries_the_headers_and_body_celery_builds():
    app = Celery("probe", set_as_current=False)
    stock = app.amqp.as_task_v2("job-1", PREDICT_TASK, args=["job-1"], kwargs={})
    ours = orjson.loads(celery_message.encode(PREDICT_TASK, "job-1", "inferq.digits"))
    assert set(ours["headers"]) >= set(stock.headers)
    for name in ("task", "id", "root_id", "lang", "retries", "timelimit"):
        assert ours["headers"][name] == stock.headers[name], name
    assert orjson.loads(base64.b64decode(ours["body"])) == list(stock.body)
    assert ours["properties"]["delivery_info"] == {"exchange": "", "routing_key": "inferq.digits"}


def test_job_id_round_trips():
    raw = celery_message.encode(PREDICT_TASK, "abc", "inferq.digits")
    assert celery_message.job_id_of(raw, PREDICT_TASK) == "abc"


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"content-type": "application/x-python-serialize"}',
                                 orjson.dumps({"content-type": "application/json", "headers": {"task": "other"},
                                               "body": ""})])
def test_foreign_or_pickled_messages_are_rejected(raw):
    with pytest.raises(celery_message.MalformedMessage):
        celery_message.job_id_of(raw, PREDICT_TASK)
