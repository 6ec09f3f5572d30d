"""The webhook worker process: signed, SSRF-guarded deliveries with durable retries. Never imports TensorFlow."""
