"""Reports: JSON for machines, Markdown for people. Every figure carries its provenance."""
from .report import build_report, write_report  # noqa: F401
