"""Cell diagrams (the paper's Figures 5a and 6): what a diagram shows is a list of node
and edge labels, so tests read it without looking at pixels; `draw` renders it."""
from deeplab_dpc import spec


def cell_graph(cell):
    """{"nodes": [{"id", "label", "depth"}], "edges": [{"from", "to"}]}: the backbone
    features, one node per branch (its op with rates or grid), and the concat with its
    1x1 projection, which every branch feeds."""
    cell = cell if isinstance(cell, spec.CellSpec) else spec.CellSpec.from_reference(cell)
    nodes = [{"id": "F", "label": "backbone features", "depth": 0}]
    edges = []
    depth = {}
    for i, branch in enumerate(cell.branches):
        source = "F" if branch.input < 0 else f"b{branch.input}"
        depth[i] = 1 if branch.input < 0 else depth[branch.input] + 1
        op = branch.op
        if isinstance(op, spec.SeparableConv):
            what = f"3x3 sep conv, rate {op.rate_h}x{op.rate_w}"
        elif isinstance(op, spec.PyramidPooling):
            what = f"avg pool {op.grid_h}x{op.grid_w} grid"
        else:
            what = "1x1 conv"
        nodes.append({"id": f"b{i}", "label": f"b{i}: {what}", "depth": depth[i]})
        edges.append({"from": source, "to": f"b{i}"})
    last = max(depth.values()) + 1
    nodes.append({"id": "concat", "label": "concat + 1x1 projection", "depth": last})
    edges += [{"from": f"b{i}", "to": "concat"} for i in range(len(cell.branches))]
    return {"nodes": nodes, "edges": edges}


def draw(graph, title=None):
    """The graph as a matplotlib figure: nodes by depth from top to bottom, arrows for
    edges."""
    # A bare Figure: no backend switch, so a notebook's inline display still works.
    from matplotlib.figure import Figure

    levels = {}
    for node in graph["nodes"]:
        levels.setdefault(node["depth"], []).append(node)
    width = max(len(level) for level in levels.values())
    position = {}
    for depth, level in levels.items():
        for i, node in enumerate(level):
            position[node["id"]] = ((i + 0.5) * width / len(level), -depth)
    fig = Figure(figsize=(2.6 * width + 1, 1.3 * len(levels) + 1))
    ax = fig.subplots()
    for edge in graph["edges"]:
        (x0, y0), (x1, y1) = position[edge["from"]], position[edge["to"]]
        ax.annotate("", xy=(x1, y1 + 0.18), xytext=(x0, y0 - 0.18),
                    arrowprops={"arrowstyle": "->", "color": "0.4"})
    for node in graph["nodes"]:
        x, y = position[node["id"]]
        ax.text(x, y, node["label"], ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round", "fc": "#dde8f5" if node["id"].startswith("b")
                      else "#eeeeee", "ec": "0.3"})
    ax.set_xlim(0, width)
    ax.set_ylim(-len(levels) + 0.5, 0.5)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return fig
