"""Corpus generation (espeak-ng), loading and the log-mel front end."""
