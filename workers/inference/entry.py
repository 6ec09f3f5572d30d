"""``celery -A workers.inference.entry ...``: the app made from the environment (health checks)."""
from shared.settings import Settings
from workers.inference.app import make_app

app = make_app(Settings.from_env())
