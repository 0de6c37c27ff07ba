"""Imports every command module so that each registers itself on the app."""

# One import line per command module; keep them sorted.
from sim.cli import (
    collector,  # noqa: E402,F401
    demo,  # noqa: E402,F401
    generate,  # noqa: E402,F401
    load,  # noqa: E402,F401
    preview,  # noqa: E402,F401
    reconcile,  # noqa: E402,F401
    report,  # noqa: E402,F401
    schema,  # noqa: E402,F401
    validate,  # noqa: E402,F401
)
