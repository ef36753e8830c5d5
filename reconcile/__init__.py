"""reconcile: find the Truedy phone numbers that cost money and do nothing.

The core package: configuration, the Truedy API client and sandbox, the snapshot
store, one sync run, and the pure analysis functions. It renders nothing and
schedules nothing; `reports` and `jobs` build on it, never the other way round.
"""

__version__ = "0.1.0"
