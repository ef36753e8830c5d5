"""`make bench`: the job at scale against the sandbox, each figure beside its floor."""
