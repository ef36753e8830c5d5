"""The layout holds: arrows run jobs -> reports -> reconcile, the analysis does no I/O, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reconcile", "reports", "jobs")
MAX_LINES = 420  # "about 400"


def sources(package: str) -> list[Path]:
    """The package's own modules (reconcile/jobs and reconcile/reports are links to jobs/ and reports/)."""
    top = ROOT / package
    return sorted(p for p in top.rglob("*.py") if "migrations" not in p.parts
                  and not any((top / part).is_symlink() for part in p.relative_to(top).parts[:1]))


def imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("package", "forbidden"), [
    ("reconcile", ("reconcile.jobs", "reconcile.reports")),
    ("reports", ("reconcile.jobs",)),
])
def test_the_arrows_run_one_way(package, forbidden):
    wrong = {f"{path.relative_to(ROOT)} imports {name}"
             for path in sources(package) for name in imported(path)
             if any(name == f or name.startswith(f + ".") for f in forbidden)}
    assert not wrong, sorted(wrong)


def test_nothing_imports_a_bare_jobs_or_reports():
    """Installed, they are reconcile.jobs and reconcile.reports: no top-level name to collide with."""
    wrong = {f"{path.relative_to(ROOT)} imports {name}"
             for package in (*PACKAGES, "tests", "bench") for path in sources(package)
             for name in imported(path) if name.split(".")[0] in ("jobs", "reports")}
    assert not wrong, sorted(wrong)


def test_the_analysis_does_no_io():
    io = ("sqlalchemy", "httpx", "smtplib", "socket", "reconcile.store", "reconcile.truedy", "reconcile.sync",
          "reconcile.mail", "reconcile.review", "os", "pathlib", "time")
    wrong = {f"{path.relative_to(ROOT)} imports {name}"
             for path in sources("reconcile/analysis") for name in imported(path)
             if any(name == m or name.startswith(m + ".") for m in io)}
    assert not wrong, sorted(wrong)


def test_no_module_is_long():
    long = {str(p.relative_to(ROOT)): n for package in PACKAGES for p in sources(package)
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_the_jobs_reach_the_core_in_one_step():
    """A job module calls the core's review builders; none imports another job (cli, runner and the
    scheduler excepted: they dispatch to the jobs)."""
    jobs = {"reconcile.jobs.nightly", "reconcile.jobs.cleanup", "reconcile.jobs.monthly"}
    wrong = {f"{path.name} imports {name}" for path in sources("jobs")
             if path.stem not in ("cli", "runner", "scheduler", "demo", "status")
             for name in imported(path) if name in jobs}
    assert not wrong, sorted(wrong)
