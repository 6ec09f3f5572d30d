"""A minimal webhook receiver for inferq, in Flask.

    pip install flask ./client
    INFERQ_WEBHOOK_SECRET=whsec_... flask --app docs/webhook_receiver.py run --port 9000

Verifies every delivery, ignores repeats of a ``webhook-id`` it has seen, and answers 2xx
fast (do slow work elsewhere: a non-2xx answer or a timeout makes inferq retry).
"""
import os

from flask import Flask, abort, request

from inferq_client.webhooks import WebhookVerificationError, verify

app = Flask(__name__)
SECRET = os.environ["INFERQ_WEBHOOK_SECRET"]
seen: set[str] = set()  # use a database or Redis in production


@app.post("/hook")
def hook():
    try:
        event = verify(request.get_data(), request.headers, SECRET)
    except WebhookVerificationError:
        abort(400)
    msg_id = request.headers["webhook-id"]
    if msg_id not in seen:
        seen.add(msg_id)
        job = event["data"]
        print(f"{event['type']}: job {job['id']} is {job['status']}")
    return "", 204
