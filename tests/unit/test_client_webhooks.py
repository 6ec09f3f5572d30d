"""The client's verify() agrees with the standardwebhooks package, both ways."""
import base64
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks

from inferq_client.webhooks import WebhookVerificationError, verify

SECRET = "whsec_" + base64.b64encode(b"client-test-secret-key").decode()
BODY = b'{"type":"job.completed","data":{"id":"j1","status":"succeeded"}}'


def signed_by_standardwebhooks(msg_id="msg_1", at=None):
    at = at or datetime.now(tz=UTC)
    signature = standardwebhooks.Webhook(SECRET).sign(msg_id, at, BODY.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


def test_accepts_what_standardwebhooks_signs():
    assert verify(BODY, signed_by_standardwebhooks(), SECRET)["data"]["id"] == "j1"


def test_standardwebhooks_accepts_what_the_server_signs():
    from workers.webhooks import signing

    headers = signing.headers(signing.secret_key(SECRET), "msg_2", int(time.time()), BODY)
    assert standardwebhooks.Webhook(SECRET).verify(BODY, headers) == verify(BODY, headers, SECRET)


def test_rejects_a_tampered_body_or_foreign_secret():
    headers = signed_by_standardwebhooks()
    with pytest.raises(WebhookVerificationError):
        verify(BODY.replace(b"succeeded", b"failed"), headers, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify(BODY, headers, "whsec_" + base64.b64encode(b"another").decode())


def test_rejects_stale_or_future_timestamps_and_missing_headers():
    old = datetime.fromtimestamp(time.time() - 3600, tz=UTC)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(BODY, signed_by_standardwebhooks(at=old), SECRET)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(BODY, signed_by_standardwebhooks(), SECRET, now=time.time() - 3600)
    headers = signed_by_standardwebhooks()
    del headers["webhook-signature"]
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify(BODY, headers, SECRET)


def test_any_one_of_several_signatures_may_match():
    headers = signed_by_standardwebhooks()
    headers["webhook-signature"] = "v1,bm90LXRoaXMtb25l " + headers["webhook-signature"]
    assert verify(BODY, headers, SECRET)["type"] == "job.completed"
