"""Minimal raw ASGI/WSGI apps the benchmark serves (no framework in the way)."""
