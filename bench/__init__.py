"""synack benchmark harness: ``python bench/run.py --help``."""
