"""Ordinary (benign) behaviour of the sandbox and the HumanEval-style harness."""

from __future__ import annotations

from evalsuite.sandbox import build_program, run_tests, run_untrusted

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TESTS_CHECK = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"
TESTS_ASSERTS = "assert add(1, 2) == 3\nassert add(0, 0) == 0\n"


def test_passing_program_reports_stdout() -> None:
    r = run_untrusted("import json, math\nprint(json.dumps({'pi': round(math.pi, 2)}))\n")
    assert r.passed and r.status == "passed" and r.returncode == 0
    assert r.stdout.strip() == '{"pi": 3.14}'
    assert r.duration < 5
    assert "rlimits" in r.isolation and "empty-env" in r.isolation


def test_exception_is_failed_with_reason() -> None:
    r = run_untrusted("raise ValueError('boom')\n")
    assert r.status == "failed" and not r.passed
    assert "ValueError: boom" in r.reason


def test_syntax_error_is_failed() -> None:
    r = run_untrusted("def f(:\n")
    assert r.status == "failed" and "SyntaxError" in r.stderr


def test_stdin_and_extra_files() -> None:
    r = run_untrusted("import helper, sys\nprint(helper.X + sys.stdin.read())\n",
                      stdin="!", files={"helper.py": "X = 'hi'\n"})
    assert r.passed, r.stderr
    assert r.stdout.strip() == "hi!"


def test_run_tests_check_style_and_assert_style() -> None:
    good = "    return a + b\n"
    bad = "    return a - b\n"
    assert run_tests(good, PROMPT, TESTS_CHECK, "add").passed
    assert not run_tests(bad, PROMPT, TESTS_CHECK, "add").passed
    assert run_tests(good, PROMPT, TESTS_ASSERTS, "add").passed
    assert run_tests(bad, PROMPT, TESTS_ASSERTS, "add").status == "failed"


def test_build_program_appends_check_call() -> None:
    prog = build_program("    return a + b\n", PROMPT, TESTS_CHECK, "add")
    assert prog.startswith(PROMPT) and prog.rstrip().endswith("check(add)")
    assert "check(" not in build_program("    return 1\n", PROMPT, TESTS_ASSERTS, "add").split("assert")[-1]


def test_count_passing_feeds_pass_at_k() -> None:
    from evalsuite.metrics.passk import pass_at_k
    from evalsuite.sandbox import count_passing

    samples = ["    return a + b\n", "    return a - b\n", "    while True: pass\n"]
    n, c, results = count_passing(samples, PROMPT, TESTS_CHECK, "add", timeout_s=1.0)
    assert (n, c) == (3, 1)
    assert [r.status for r in results] == ["passed", "failed", "timeout"]
    assert abs(pass_at_k(n, c, 1) - 1 / 3) < 1e-12
