"""The Python client for inferq: ``Client``, ``AsyncClient``, typed errors, webhook verification.

    from inferq_client import Client
    with Client("http://127.0.0.1:8000") as client:
        job = client.submit("digits", [image])
        print(client.wait(job.id).predictions)
"""

from inferq_client.async_client import AsyncClient
from inferq_client.client import Client
from inferq_client.errors import (
                                  Conflict,
                                  InferqError,
                                  JobFailed,
                                  NotFound,
                                  RateLimited,
                                  Unavailable,
                                  ValidationError,
                                  WaitTimeout,
)
from inferq_client.jobs import Job
from inferq_client.webhooks import WebhookVerificationError, verify

__all__ = ["AsyncClient", "Client", "Conflict", "InferqError", "Job", "JobFailed", "NotFound", "RateLimited",
           "Unavailable", "ValidationError", "WaitTimeout", "WebhookVerificationError", "verify"]
