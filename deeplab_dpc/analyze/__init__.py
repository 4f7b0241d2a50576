"""Analysing a study (paper Sec. 4.1-4.2, Figures 3-6): `statistics` (rank correlation,
bootstrap, Pareto front, spread), `diagram` (cell diagrams as node and edge labels),
`analysis` (gathers the study and writes `analysis.json`), `figures` (the PNGs).
`python -m deeplab_dpc.analyze` runs `analysis.analyze`.
"""
