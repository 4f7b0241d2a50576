"""Reading image and label files: the one place where pixels are decoded.

Images: what the model sees must be what training saw, so `read_image` decodes
PNG, JPEG, BMP and GIF with TensorFlow's own decoder, exactly as the input
pipeline decodes the bytes a converter stored: palette, grey, grey+alpha, RGBA
and CMYK become RGB, and 16-bit samples are scaled to 8 bits (the top byte).
Other formats (TIFF, WebP, ...) go through PIL with the same rules. Labels are
class ids: `read_label` never scales or converts them (a palette PNG gives its
indices, a 16-bit PNG its values).

The converters validate files with `open_file` before TensorFlow is imported.
"""
import io
import os

import numpy as np
from PIL import Image

from deeplab_dpc.errors import InputError
from deeplab_dpc.tf_import import import_tensorflow

TF_FORMATS = ("PNG", "JPEG", "BMP", "GIF")  # what tf.io.decode_image reads
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def open_file(path, what, data=None, full=False):
    """(format, (width, height), mode, pixels) with PIL. `full` decodes every pixel,
    the only way to see a truncated file, and checks a PNG's closing IEND chunk, as PIL
    decodes a PNG cut inside its last chunk without complaint (else: header only,
    pixels None). InputError naming the file."""
    if data is None and not os.path.isfile(path):
        raise InputError(f"{path}: missing {what}")
    try:
        if full and data is None:
            with open(path, "rb") as f:
                data = f.read()
        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            pixels = np.asarray(im) if full else None
            fmt, size, mode = im.format, im.size, im.mode
    except Exception as e:  # noqa: BLE001 - any decoder failure means a bad user file
        raise InputError(f"{path}: cannot decode {what} ({e})") from None
    if full and fmt == "PNG" and b"IEND" not in data[-1024:]:
        raise InputError(f"{path}: cannot decode {what} (truncated: no IEND chunk)")
    return fmt, size, mode, pixels


def read_label(path):
    """The class ids of a single-channel label file, unscaled (PIL's pixel values)."""
    return open_file(path, "label", full=True)[3]


def _pil_rgb(im, path):
    """RGB uint8 of an image PIL decoded, by TensorFlow's rules (16-bit: top byte)."""
    if im.mode in _SIXTEEN_BIT:
        grey = (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if im.mode in ("I", "F"):
        raise InputError(f"{path}: {im.mode} images (32-bit samples) are not supported; "
                         "save it as an 8- or 16-bit image")
    return np.asarray(im.convert("RGB"))


def _orientation(im):
    try:
        return im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block means no orientation
        return 1


def read_image(path, exif_transpose=False):
    """uint8 RGB [H, W, 3] of an image file, decoded as training decodes it;
    InputError naming the file. `exif_transpose`: rotate as photo viewers do (for
    users' photos; TFRecords store pixels as they are)."""
    tf = import_tensorflow()
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except (tf.errors.OpError, OSError) as e:
        raise InputError(f"{path}: cannot read the image ({e})") from None
    try:
        im = Image.open(io.BytesIO(data))
        fmt, orientation = im.format, _orientation(im)
        if fmt not in TF_FORMATS:
            im.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: cannot read the image ({e})") from None
    if fmt in TF_FORMATS:
        try:
            pixels = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
        except tf.errors.OpError as e:
            raise InputError(f"{path}: cannot decode the image "
                             f"({' '.join(e.message.split())[:200]})") from None
    else:
        pixels = _pil_rgb(im, path)
    if exif_transpose and orientation != 1:
        pixels = _transpose(pixels, orientation)
    return pixels


def _transpose(pixels, orientation):
    """The EXIF orientation (2..8) undone on an [H, W, C] array, as PIL's
    `ImageOps.exif_transpose` does it."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.transpose(a, (1, 0, 2)),
           6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, -1)[::-1],
           8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops.get(orientation, lambda a: a)(pixels))
