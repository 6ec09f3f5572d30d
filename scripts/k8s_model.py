"""Print one model's Kubernetes manifests (worker Deployment + KEDA ScaledObject).

    python scripts/k8s_model.py digits > deploy/k8s/worker-digits.yaml

The scaling bounds are the local autoscaler's (``INFERQ_AUTOSCALE_*`` and
``INFERQ_AUTOSCALE_OVERRIDES``), so both scale alike.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launcher.autoscaler import policies  # noqa: E402
from launcher.layout import program_name  # noqa: E402
from shared.settings import Settings  # noqa: E402

TEMPLATE = ROOT / "deploy" / "k8s" / "model.template.yaml"


def render(model: str, settings: Settings) -> str:
    """The manifests for ``model``, bounds from the settings."""
    policy = policies(settings, {program_name([model]): [model]})[program_name([model])]
    values = {"MODEL": model, "MIN": policy.min, "MAX": policy.max, "TARGET_BACKLOG": policy.target_backlog,
              "UP_COOLDOWN_S": int(policy.up_cooldown_s), "DOWN_COOLDOWN_S": int(policy.down_cooldown_s)}
    body = TEMPLATE.read_text()
    header = f"# Rendered by scripts/k8s_model.py {model}; edit deploy/k8s/model.template.yaml instead.\n"
    # Only ${NAME} placeholders: Kubernetes' own $(VAR) references pass through untouched.
    return header + re.sub(r"\$\{([A-Z_]+)\}", lambda m: str(values[m.group(1)]), body)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    settings = Settings.from_env()
    print("---\n".join(render(model, settings) for model in argv), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
