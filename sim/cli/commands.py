"""Imports every command module so that each registers itself on the app."""
# One import line per command module; keep them sorted.
