"""The architecture search (paper Sec. 3.2-3.3): proxy trials on a feature cache,
random search over a study.

`heads` (what a trial trains and its key), `proxy` (`run_trial`), `study` (the
SQLite file every worker shares), `sampler` (candidate i of a seed stream),
`workers` (local processes), `ray_backend` (the same search on Ray Tune),
`report` (top trials and exported cells). Sampling the space itself lives beside
the cell spec (`spec.sample`, `spec.mutate`).
"""
