"""Helpers of the coaching app that are nobody else's business (not part of its API)."""
