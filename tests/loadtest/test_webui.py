"""`make loadtest`: a bad setting stops it before anything starts, with one line naming the variable."""

from __future__ import annotations

import pytest

from loadtest import webui


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LOCUST_WEB_PORT", "eighty", "LOCUST_WEB_PORT: must be an integer, got 'eighty'"),
        ("LOCUST_USERS", "0", "LOCUST_USERS: must be between 1 and 100000, got 0"),
        ("LOCUST_SPAWN_RATE", "fast", "LOCUST_SPAWN_RATE: must be a number, got 'fast'"),
    ],
)
def test_a_bad_setting_is_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert webui.main(["--host", "http://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err.strip() == f"make loadtest: {message}"


def test_the_locust_command_carries_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCUST_USERS", "7")
    monkeypatch.setenv("LOCUST_SPAWN_RATE", "2.5")
    command = webui.locust_command("http://127.0.0.1:8000", 8090)
    assert command[command.index("--users") + 1] == "7"
    assert command[command.index("--spawn-rate") + 1] == "2.5"
    assert command[command.index("--web-port") + 1] == "8090"
