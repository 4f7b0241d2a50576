"""Model figures. `python -m deeplab_dpc.stats` is `__main__.py` (flags only).

`complexity`: parameters and multiply-adds by the paper's conventions, and the
paper's Table 1 (the search's budgets count with it too).
"""
