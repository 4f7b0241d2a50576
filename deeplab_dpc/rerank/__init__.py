"""Re-ranking the search's cells by fine-tuning them end to end (paper Sec. 3.3).

`selection` chooses the cells (top, spread over the proxy's range, baselines) and
adds the proxy trials baselines and the noise floor need; `runs` trains and
evaluates each (cell, seed) as an ordinary run directory and records it in the
study; `driver` does both in order, which is what `python -m deeplab_dpc.rerank` runs.
"""
