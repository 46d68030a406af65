"""The README quick start: the installed ``consentry`` script, run as a user would run it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def consentry_script() -> Path:
    beside_python = Path(sys.executable).parent / "consentry"
    if beside_python.exists():
        return beside_python
    found = shutil.which("consentry")
    if found is None:
        pytest.fail("the consentry console script is not installed (pip install -e .)")
    return Path(found)


def run_demo(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env |= {"COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(  # noqa: S603  (our own console script, fixed arguments)
        [str(consentry_script()), "--data-dir", str(data_dir), "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def assert_demo_table(out: str) -> None:
    assert "Harbour Street Auto Repair" in out
    for expected in ("allow", "CONSENT_WITHDRAWN", "MINOR", "DNC_REGISTERED"):
        assert expected in out
    assert "SUPPRESSED_HARD_BOUNCE" in out
    assert "CONSENT_PENDING" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    # Six people, three topics each (a row may continue on the next line with more reasons).
    people = ("Alice Moreno", "Bob Tran", "Carla Diaz", "Dev Patel", "Erin Walsh", "Frank Osei")
    for person in people:
        assert sum(1 for line in rows if line.startswith(f"│ {person} ")) == 3
    bob_promotions = next(r for r in rows if r.startswith("│ Bob Tran ") and "promotions" in r)
    assert "CONSENT_WITHDRAWN" in bob_promotions
    assert "consentry explain --tenant harbour-auto" in out


def test_demo_from_the_installed_script(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"

    first = run_demo(data_dir)

    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    assert f"data directory: {data_dir.resolve()}" in first.stdout
    assert "already set up" not in first.stdout
    assert_demo_table(first.stdout)
    key_file = data_dir / "keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    keys = key_file.read_bytes()

    second = run_demo(data_dir)

    assert second.returncode == 0, second.stderr
    assert "(demo already set up)" in second.stdout
    assert_demo_table(second.stdout)
    assert key_file.read_bytes() == keys
    # The second run changes no decision.
    table_lines = [line for line in first.stdout.splitlines() if line.startswith("│")]
    assert [line for line in second.stdout.splitlines() if line.startswith("│")] == table_lines
