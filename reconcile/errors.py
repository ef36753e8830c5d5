"""The one exception tree of the project, each branch mapped to one exit code.

    ReconcileError            1  anything we raised on purpose but did not classify
     ├── ConfigError          2  bad usage or configuration (names the key and the file)
     ├── UpstreamError        3  the Truedy API is unusable
     │    ├── AuthError           the key was refused (401/403)
     │    ├── RetriesExhausted    transient faults outlasted the retry policy or deadline
     │    ├── ContractError       an answer broke the API contract beyond one record
     │    └── DeliveryError       the mail server refused or failed some messages
     ├── StoreError           4  the database is unreachable, behind, or refused a write
     ├── LockedError          5  another run holds the lock for this database
     └── ReportError          1  a report could not be written (disk full, bad path)

Every message is one plain line that says what went wrong and what to do; none
carries a secret. The CLI prints `str(error)` and exits with `error.exit_code`.
"""

from __future__ import annotations


class ReconcileError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = 1


class ConfigError(ReconcileError):
    exit_code = 2


class UpstreamError(ReconcileError):
    exit_code = 3


class AuthError(UpstreamError):
    pass


class RetriesExhausted(UpstreamError):
    pass


class ContractError(UpstreamError):
    pass


class DeliveryError(UpstreamError):
    pass


class StoreError(ReconcileError):
    exit_code = 4


class LockedError(ReconcileError):
    exit_code = 5


class ReportError(ReconcileError):
    exit_code = 1


def describe(exc: BaseException) -> str:
    """What a run records of a failure: our own one-line message, or the type and text of anything else."""
    return str(exc) if isinstance(exc, ReconcileError) else f"{type(exc).__name__}: {exc}"
