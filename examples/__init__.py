"""Runnable examples of wdp in use; not installed with the package (see each README)."""
