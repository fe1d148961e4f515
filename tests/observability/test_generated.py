"""observability/generated.py, the one drift check of every generated file: the committed tree is what the
sources give, and the check fails (exit 1, each file named) on a stale, a missing and an orphaned file,
never on a hand-written runbook; it exits 2 when it cannot check."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dashboards import generate as dashboards_generate
from k8s import generate as k8s_generate
from observability import generated
from observability.links import GENERATED_RUNBOOK_MARK, RUNBOOK_DIR
from observability.paths import ROOT, RULES_DIR
from observability.slo import spec as slo_spec

RULES = RULES_DIR.relative_to(ROOT)
RUNBOOKS = RUNBOOK_DIR.relative_to(ROOT)
SLO_RULE_FILE = RULES / "taskboard-slo.yml"


@pytest.fixture(scope="module")
def expected() -> dict[Path, str]:
    return generated.outputs()


@pytest.fixture
def tree(tmp_path: Path, expected: dict[Path, str]) -> Path:
    """A copy of the repository's generated-output folders (hand-written runbooks included), made current."""
    root = tmp_path / "repo"
    for folder in sorted({location.folder for location in generated.LOCATIONS}):
        shutil.copytree(ROOT / folder, root / folder)
    generated.write(expected, root)
    assert generated.differences(expected, root) == []
    return root


def check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = generated.main(["--check"], root=root)
    return status, capsys.readouterr().err


def test_the_committed_tree_is_what_the_sources_give(capsys: pytest.CaptureFixture[str]) -> None:
    status, err = check(ROOT, capsys)
    assert status == 0, f"run `make generate` and commit the result:\n{err}"


def _digest(files: dict[Path, str]) -> str:
    return hashlib.sha256(repr(sorted((str(path), text) for path, text in files.items())).encode()).hexdigest()


def test_generation_depends_only_on_the_sources(tmp_path: Path, expected: dict[Path, str]) -> None:
    """Fresh interpreters with other hash seeds (set and dict order), started elsewhere, render the same
    bytes: rendering twice in one process could not tell."""
    script = (
        "import hashlib; from observability import generated; files = generated.outputs(); "
        "print(hashlib.sha256(repr(sorted((str(p), t) for p, t in files.items())).encode()).hexdigest())"
    )
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        digests.add(result.stdout.strip())
    assert digests == {_digest(expected)}


def test_a_stale_file_fails_the_check(
    tree: Path, expected: dict[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / SLO_RULE_FILE).write_text(expected[SLO_RULE_FILE] + "# edited by hand\n")
    assert generated.differences(expected, tree) == [generated.Difference(SLO_RULE_FILE, "stale")]
    status, err = check(tree, capsys)
    assert status == 1
    assert f"stale: {SLO_RULE_FILE.as_posix()}" in err


def test_a_missing_file_fails_the_check(
    tree: Path, expected: dict[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = dashboards_generate.OUT_DIR.relative_to(ROOT) / "taskboard-slo.json"
    assert dashboard in expected
    (tree / dashboard).unlink()
    assert generated.differences(expected, tree) == [generated.Difference(dashboard, "missing")]
    status, err = check(tree, capsys)
    assert status == 1
    assert f"missing: {dashboard.as_posix()}" in err


ORPHANS = [
    RULES / "billing-slo.yml",  # the rule file of an SLO file since deleted: Prometheus would still load it
    RULES / "billing-slo.yaml",
    RUNBOOKS / "BillingAvailabilityFastBurn.md",  # a generated runbook (it carries the mark)
    dashboards_generate.OUT_DIR.relative_to(ROOT) / "taskboard-old.json",
    *(folder.relative_to(ROOT) / "leftover.yaml" for folder in k8s_generate.OUTPUT_DIRS),
]


@pytest.mark.parametrize("orphan", ORPHANS, ids=lambda p: p.as_posix())
def test_an_orphaned_file_fails_the_check(
    tree: Path, expected: dict[Path, str], capsys: pytest.CaptureFixture[str], orphan: Path
) -> None:
    (tree / orphan).write_text(f"{GENERATED_RUNBOOK_MARK}`make generate`; do not edit. -->\n")
    assert generated.differences(expected, tree) == [generated.Difference(orphan, "orphaned")]
    status, err = check(tree, capsys)
    assert status == 1
    assert f"orphaned: {orphan.as_posix()}" in err


def test_hand_written_runbooks_are_not_orphans(tree: Path, expected: dict[Path, str]) -> None:
    hand_written = [
        path.relative_to(tree)
        for path in (tree / RUNBOOKS).glob("*.md")
        if not path.read_text().startswith(GENERATED_RUNBOOK_MARK)
    ]
    assert RUNBOOKS / "Watchdog.md" in hand_written, "the copy should hold the hand-written runbooks"
    assert not set(hand_written) & set(expected)
    (tree / RUNBOOKS / "TaskboardNewAlert.md").write_text("# TaskboardNewAlert\n")
    assert generated.differences(expected, tree) == []
    generated.write(expected, tree)
    assert (tree / RUNBOOKS / "TaskboardNewAlert.md").is_file()
    assert all((tree / path).is_file() for path in hand_written)


def test_the_outputs_of_a_deleted_slo_file_are_orphans_and_a_write_deletes_them(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real generators, as if observability/slo/taskboard.yaml were gone: the committed rule file it gave
    is left in observability/rules/, and the check must name it (and its runbooks and k8s copy)."""
    monkeypatch.setattr(slo_spec, "load_all", list)
    without = generated.outputs()
    assert SLO_RULE_FILE not in without
    found = {difference.path: difference.kind for difference in generated.differences(without, tree)}
    assert found[SLO_RULE_FILE] == "orphaned"
    assert found[k8s_generate.MONITORING_OUT.relative_to(ROOT) / "prometheusrule-taskboard-slo.yaml"] == "orphaned"
    assert found[RUNBOOKS / "TaskboardAvailabilityFastBurn.md"] == "orphaned"
    assert found[RUNBOOKS / "README.md"] == "stale"  # the index no longer lists the burn-rate alerts
    status, err = check(tree, capsys)
    assert status == 1 and f"orphaned: {SLO_RULE_FILE.as_posix()}" in err
    assert generated.main([], root=tree) == 0
    assert not (tree / SLO_RULE_FILE).exists()
    assert (tree / RUNBOOKS / "Watchdog.md").is_file()
    assert generated.differences(without, tree) == []


def test_a_write_repairs_stale_missing_and_orphaned_files(tree: Path, expected: dict[Path, str]) -> None:
    (tree / SLO_RULE_FILE).write_text("groups: []\n")
    (tree / dashboards_generate.OUT_DIR.relative_to(ROOT) / "taskboard-slo.json").unlink()
    (tree / RULES / "billing-slo.yml").write_text("groups: []\n")
    assert len(generated.write(expected, tree)) == 3
    assert generated.differences(expected, tree) == []
    assert not (tree / RULES / "billing-slo.yml").exists()


def test_a_check_that_cannot_read_its_sources_or_the_tree_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = check(tmp_path / "no-such-checkout", capsys)
    assert status == 2 and "could not check" in err
    monkeypatch.setattr(k8s_generate, "LOCUSTFILE", ROOT / "loadtest" / "no-such-locustfile.py")
    status, err = check(ROOT, capsys)
    assert status == 2 and "no-such-locustfile.py does not exist" in err


def test_an_output_outside_every_location_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator that starts writing somewhere new cannot leave the locations (and so the orphan check) behind."""
    monkeypatch.setattr(dashboards_generate, "OUT_DIR", ROOT / "dashboards" / "elsewhere")
    with pytest.raises(ValueError, match=r"dashboards/elsewhere/.*outside every location"):
        generated.outputs()


def test_importing_the_generators_reads_no_file() -> None:
    """No side effects at import: every file of the repository a generator reads is read when it renders
    (installed libraries may read their own data files)."""
    code = (
        "import pathlib, sys\n"
        f"repository = pathlib.Path({str(ROOT)!r})\n"
        "venv = pathlib.Path(sys.prefix).resolve()\n"
        "def guard(method):\n"
        "    def guarded(self, *args, **kwargs):\n"
        "        path = self.resolve()\n"
        "        if path.is_relative_to(repository) and not path.is_relative_to(venv):\n"
        "            raise AssertionError(f'read at import: {path}')\n"
        "        return method(self, *args, **kwargs)\n"
        "    return guarded\n"
        "for name in ('open', 'read_text', 'read_bytes'):\n"
        "    setattr(pathlib.Path, name, guard(getattr(pathlib.Path, name)))\n"
        "import observability.generated\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
