"""The reviews the jobs publish, built from the store: the nightly flags and summary, the monthly finance review.

Each builder reads the store, calls the pure analysis and returns plain objects; it
writes only the flag history (the nightly evaluation). Rendering is `reports/`; the
jobs in `jobs/` compose a sync, a build and a render.
"""
