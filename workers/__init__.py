"""The two worker processes, one package each: ``inference`` (TensorFlow) and ``webhooks`` (no TensorFlow)."""
