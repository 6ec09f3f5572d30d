"""Client helpers for inferq. ``inferq_client.webhooks.verify`` checks signed deliveries."""

from inferq_client.webhooks import WebhookVerificationError, verify

__all__ = ["WebhookVerificationError", "verify"]
