"""``changevg`` — the command line, a thin layer over the library functions.

Exit codes: 0 success, 1 a run failed (catalog, data or tiling problem), 2 bad usage or input.
The commands live in ``_app`` (parser, entry point, exit codes) and one module per group:
``_run`` (run, demo), ``_model`` (train, eval, predict, ask), ``_inventory`` (query, summary).
"""

from flows.cli._app import build_parser, main

__all__ = ["build_parser", "main"]
