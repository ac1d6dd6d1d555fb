"""The knowledge-base benchmark (issue 7): ``python -m benchmarks.kb``; see ``__main__``."""
