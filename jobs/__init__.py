"""The edges: the CLI, the scheduled jobs and the scheduler. Thin: they parse, call the
core and `reports`, and turn errors into exit codes."""
