"""Imports every command module so that each registers itself on the app."""
# One import line per command module; keep them sorted.
from . import collector  # noqa: E402,F401
from . import demo  # noqa: E402,F401
from . import generate  # noqa: E402,F401
from . import load  # noqa: E402,F401
from . import preview  # noqa: E402,F401
from . import reconcile  # noqa: E402,F401
from . import report  # noqa: E402,F401
from . import schema  # noqa: E402,F401
from . import validate  # noqa: E402,F401
