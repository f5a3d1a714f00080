"""Render the firmware from firmware_templates/ with Jinja (StrictUndefined): Python computes every
number and list; templates only substitute and loop."""
from .render import render_firmware  # noqa: F401
