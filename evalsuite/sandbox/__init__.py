"""Isolated execution of untrusted (model-generated) code; see runner.py for the layers.

API: run_untrusted, run_tests, count_passing, build_program, isolation_report, SandboxResult.
"""

from evalsuite.sandbox.runner import (
    SandboxResult,
    build_program,
    count_passing,
    isolation_report,
    run_tests,
    run_untrusted,
)

__all__ = ["SandboxResult", "build_program", "count_passing", "isolation_report", "run_tests", "run_untrusted"]
