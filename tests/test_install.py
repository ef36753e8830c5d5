"""A normal install works: the wheel, installed into a fresh virtual environment, runs from any folder.

The wheel is built from this checkout (`pip wheel`, no dependencies) and installed with
`--no-deps` into a new venv; the dependencies come from this project's own .venv through
a path file, so the test needs no download of them. The project's editable install is
not on that path (its finder is never activated there): what runs is the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    where = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(where / "dist")],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (where / "dist").glob("reconcile-*.whl")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies, from this project's environment (a plain path entry: its .pth files are not run)
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return wheel, venv


def run(venv: Path, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "TRUEDY_", "PYTHON"))}
    return subprocess.run([str(venv / "bin" / "reconcile"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_wheel_holds_no_top_level_jobs_or_reports_and_ships_its_defaults(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("reconcile-")}
    assert tops == {"reconcile"}
    assert {"reconcile/config/default.toml", "reconcile/jobs/cli.py", "reconcile/reports/templates/nightly.html.j2",
            "reconcile/store/migrations/versions/0001_initial.py"} <= set(names)


@pytest.mark.slow
def test_the_installed_command_runs_from_an_unrelated_folder(installed, tmp_path):
    _, venv = installed
    version = run(venv, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == "reconcile 0.1.0", version.stderr
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import reconcile.jobs.cli as c; print(c.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert str(venv) in where and str(ROOT) not in where, "the wheel's code runs, not the checkout's"
    demo = run(venv, "demo", "--nights", "2", "--numbers", "60", cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "agrees with the sandbox exactly" in demo.stdout
    assert list((tmp_path / "var" / "demo" / "reports").glob("nightly-*/nightly.html")), "state under the working folder"
    assert str(ROOT) not in demo.stdout, "nothing is written into the source tree"
