"""Deployment tests: trio-mcp-ws behind a real nginx, run by ``nox -s deploy``."""
