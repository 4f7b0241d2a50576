"""`--dry_run`: what a binary would do, resolved and shown, with nothing done.

A flagfile for real data is checked on a laptop before a GPU is booked: the
binary resolves its flags exactly as for a real run and builds its model (and one
input batch where the data is there); this module measures that and formats it.
Nothing here writes a file.
"""
import json

DEFAULT_IMAGE_SIZE = (513, 513)  # shown when nothing fixes the input size


def model_facts(model, image_size=None):
    """The model's config with its trainable parameters and multiply-adds (convs, as
    the paper counts them) on one image of `image_size`."""
    from deeplab_dpc.stats import complexity

    image_size = tuple(image_size or DEFAULT_IMAGE_SIZE)
    cost = complexity.model_complexity(model, image_size)
    return {"config": model.get_config(), "image_size": list(image_size),
            "feature_shape": list(cost.feature_shape[1:]),
            "parameters": cost.total_params, "multiply_adds": cost.total_macs,
            "backbone_parameters": cost.backbone_params,
            "backbone_multiply_adds": cost.backbone_macs,
            "head_parameters": cost.head.trainable_params,
            "head_multiply_adds": cost.head.branch_macs + cost.head.projection_macs}


def batch_facts(dataset):
    """Shape and dtype of each tensor of the first element of `dataset` (a dict)."""
    element = next(iter(dataset))
    return {key: {"shape": list(value.shape), "dtype": value.dtype.name}
            for key, value in element.items()}


def show(binary, settings, model=None, batch=None, data=None, notes=()):
    """Prints the dry run and returns its answer (what tests read): resolved
    `settings`, `model_facts`, `batch_facts` (None without data) and where the data
    was looked for."""
    answer = {"binary": binary, "settings": settings, "model": model, "batch": batch,
              "data": data, "notes": list(notes)}
    print(format_report(answer), flush=True)
    return answer


def _value(value):
    return json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)


def format_report(answer):
    """Lines for a person: settings, model, batch, notes."""
    lines = [f"dry run of {answer['binary']}: nothing trained or written"]
    for key, value in answer["settings"].items():
        if key != "model":
            lines.append(f"  {key} = {_value(value)}")
    model = answer["model"]
    if model:
        config = model["config"]
        head = config["head"] + (f" cell {json.dumps(config['cell'])}" if config.get("cell")
                                 else f" rates {config.get('atrous_rates')}")
        lines += [
            f"model: {config['backbone']} (depth {config['depth_multiplier']}), output stride "
            f"{config['output_stride']}, decoder {config['decoder_output_stride'] or 'none'}, "
            f"{config['num_classes']} classes, head {head}",
            f"  input {model['image_size'][0]}x{model['image_size'][1]} -> features "
            f"{'x'.join(map(str, model['feature_shape']))}: {model['parameters']:,} trainable "
            f"parameters, {model['multiply_adds'] / 1e9:.2f}B multiply-adds (head "
            f"{model['head_parameters']:,}, {model['head_multiply_adds'] / 1e9:.2f}B)"]
    if answer["batch"]:
        lines.append("batch: " + ", ".join(
            f"{k} {v['shape']} {v['dtype']}" for k, v in answer["batch"].items()))
    elif answer["data"]:
        lines.append(f"batch: none (no data at {answer['data']}; model only)")
    lines += [f"note: {n}" for n in answer["notes"]]
    return "\n".join(lines)
