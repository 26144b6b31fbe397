"""Isolated execution of untrusted (model-generated) code; see runner.py and _levels.py for the layers.

API: run_untrusted, run_tests, count_passing, build_program, isolation_report, SandboxResult,
LEVELS (the isolation levels), SandboxUnavailable (a level that cannot be set up here).
"""

from evalsuite.sandbox._levels import LEVELS, SandboxUnavailable
from evalsuite.sandbox.runner import (
    SandboxResult,
    build_program,
    count_passing,
    isolation_report,
    run_tests,
    run_untrusted,
)

__all__ = ["LEVELS", "SandboxResult", "SandboxUnavailable", "build_program", "count_passing", "isolation_report",
           "run_tests", "run_untrusted"]
