"""Code both the web API and the workers need: settings, job records, Redis keys, errors."""
