"""Isolated execution of untrusted (model-generated) code; see runner.py for the layers.

API: run_untrusted, run_tests, build_program, isolation_report, SandboxResult.
"""

from evalsuite.sandbox.runner import SandboxResult, build_program, isolation_report, run_tests, run_untrusted

__all__ = ["SandboxResult", "build_program", "isolation_report", "run_tests", "run_untrusted"]
