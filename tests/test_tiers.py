"""The tiers' rules (tests/tiers.py): slow tests are marked; an unmarked one that starts a slow program fails."""

from __future__ import annotations

import re
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from tests.tiers import slow_program

pytest_plugins = ["pytester"]

# A session of its own: the tiers plugin alone, outside this repository's conftest.
INNER_TESTS = textwrap.dedent(
    """
    import subprocess
    import sys

    import pytest

    from tests.tiers import slow_fixture


    @pytest.fixture
    @slow_fixture("stands for a server")
    def server():
        return "http://127.0.0.1:1"


    def test_uses_a_slow_fixture(server):
        pass


    def test_fast_and_starts_only_git():
        subprocess.run(["git", "--version"], check=True, capture_output=True)


    def test_starts_promtool_itself():
        subprocess.run(["promtool", "--version"], check=False)


    def test_a_script_it_runs_starts_jq():
        subprocess.run(["sh", "-c", "jq --version || true"], check=True, capture_output=True)


    def test_serves_under_gunicorn_and_swallows_the_refusal():
        try:
            subprocess.run([sys.executable, "-m", "gunicorn", "--version"], check=False)
        except Exception:
            pass


    @pytest.mark.slow
    def test_marked_may_serve():
        subprocess.run([sys.executable, "-m", "gunicorn", "--version"], check=True, capture_output=True)
    """
)


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_inner=INNER_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: outside make test-fast\n")
    return pytester


def test_a_test_using_a_slow_fixture_is_left_out_of_the_fast_tier(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess("-p", "tests.tiers", "-p", "no:cacheprovider", "-m", "slow", "--co", "-q")
    collected = {line.split("::")[-1] for line in result.outlines if "::" in line}
    assert collected == {"test_uses_a_slow_fixture", "test_marked_may_serve"}


def test_an_unmarked_test_that_starts_a_slow_program_fails_naming_it(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess("-p", "tests.tiers", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=3, failed=3)
    outcomes = dict(re.findall(r"^test_inner.py::(\w+) (PASSED|FAILED)", result.stdout.str(), re.MULTILINE))
    assert outcomes == {
        "test_uses_a_slow_fixture": "PASSED",
        "test_fast_and_starts_only_git": "PASSED",
        "test_marked_may_serve": "PASSED",
        "test_starts_promtool_itself": "FAILED",
        "test_a_script_it_runs_starts_jq": "FAILED",  # started by the script, seen by the stand-in
        "test_serves_under_gunicorn_and_swallows_the_refusal": "FAILED",  # swallowing the refusal does not help
    }
    text = result.stdout.str()
    assert "promtool: Prometheus's promtool (Debian package prometheus)" in text
    assert "jq: jq (Debian package jq)" in text
    assert "-m gunicorn: the service under gunicorn" in text


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["/usr/bin/promtool", "check", "rules", "x.yml"], "promtool"),
        ("jq -r .plan", "jq"),
        ([sys.executable, "-m", "gunicorn", "-c", "app/gunicorn.conf.py"], "gunicorn"),
        ([".venv-peer/bin/opentelemetry-instrument", "python", "-m", "gunicorn"], "gunicorn"),
        ([sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py"], "Locust"),
        (["/x/site-packages/playwright/driver/node", "run-driver"], "Playwright"),
        ([".venv-checkov/bin/checkov", "-d", "infra"], "checkov"),
    ],
)
def test_slow_programs_are_named(args: list[str] | str, why: str) -> None:
    reason = slow_program(None, args)
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    "args",
    [["git", "status"], [sys.executable, "-m", "app.migrate"], ["/usr/lib/postgresql/bin/pg_ctl", "start"], "kubectl"],
)
def test_what_the_fast_tier_may_start_is_not_refused(args: list[str] | str) -> None:
    assert slow_program(None, args) is None
