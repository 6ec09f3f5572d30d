"""``python -m launcher`` (``make run``): the whole stack on one machine."""
import sys

from launcher.stack import main

sys.exit(main())
