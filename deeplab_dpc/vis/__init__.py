"""Visualisation. `python -m deeplab_dpc.vis` is `__main__.py` (flags only).

`render`: colormaps, coloured label maps, overlays and PNG files (also what
`predict` writes).
"""
