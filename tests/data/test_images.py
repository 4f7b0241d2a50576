"""`data.images`: every kind of image decodes as training decodes it; labels unscaled."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from deeplab_dpc.data import images
from deeplab_dpc.data import input_pipeline as ip
from deeplab_dpc.errors import InputError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 9, 3)).astype(np.uint8)
GREY16 = RNG.integers(0, 65536, (6, 9)).astype(np.uint16)


def _encoded(kind):
    """(bytes, file extension) of one kind of image."""
    buffer = io.BytesIO()
    if kind == "grey16":
        Image.fromarray(GREY16).save(buffer, "PNG")  # PIL mode I;16
        return buffer.getvalue(), "png"
    if kind == "rgb16":
        return tf.io.encode_png(RGB.astype(np.uint16) * 257 + 3).numpy(), "png"
    image = Image.fromarray(RGB)
    image = {"rgb": image, "grey": image.convert("L"), "rgba": image.convert("RGBA"),
             "grey_alpha": image.convert("LA"), "bilevel": image.convert("1"),
             "palette": image.convert("P", palette=Image.ADAPTIVE, colors=12),
             "jpeg": image, "cmyk_jpeg": image.convert("CMYK")}[kind]
    fmt = "JPEG" if kind.endswith("jpeg") else "PNG"
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue(), fmt.lower()


@pytest.mark.parametrize("kind", ["rgb", "grey", "rgba", "grey_alpha", "bilevel", "palette",
                                  "grey16", "rgb16", "jpeg", "cmyk_jpeg"])
def test_images_decode_exactly_as_the_input_pipeline(kind, tmp_path):
    data, ext = _encoded(kind)
    path = tmp_path / f"image.{ext}"
    path.write_bytes(data)
    ours = images.read_image(str(path))
    label = tf.io.encode_png(np.zeros(ours.shape[:2] + (1,), np.uint8))
    theirs = ip.decode(tf.constant(data), label, tf.constant(""))[ip.IMAGE].numpy()
    assert ours.dtype == np.uint8 and ours.shape == (6, 9, 3)
    np.testing.assert_array_equal(ours, theirs)


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    """PIL's convert("RGB") of a 16-bit grey PNG is almost all white; the top byte is
    what TensorFlow (and so training) sees."""
    path = tmp_path / "grey16.png"
    path.write_bytes(_encoded("grey16")[0])
    expected = np.repeat((GREY16 >> 8).astype(np.uint8)[..., None], 3, -1)
    np.testing.assert_array_equal(images.read_image(str(path)), expected)
    tiff = tmp_path / "grey16.tif"  # not a TensorFlow format: PIL, by the same rule
    Image.fromarray(GREY16).save(tiff)
    np.testing.assert_array_equal(images.read_image(str(tiff)), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_photo_viewers(orientation, tmp_path):
    image = Image.fromarray(RGB)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.png"
    image.save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(images.read_image(str(path), exif_transpose=True), expected)
    np.testing.assert_array_equal(images.read_image(str(path)), RGB)  # as stored


def test_labels_are_class_ids_never_scaled(tmp_path):
    path = tmp_path / "label16.png"
    ids = np.array([[0, 1, 300], [2, 65535, 7]], np.uint16)
    Image.fromarray(ids).save(path)
    np.testing.assert_array_equal(images.read_label(str(path)), ids)
    palette = tmp_path / "palette.png"
    indexed = Image.fromarray(np.array([[0, 15, 255]], np.uint8)).convert("L")
    indexed = Image.frombytes("P", indexed.size, indexed.tobytes())
    indexed.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    indexed.save(palette)
    np.testing.assert_array_equal(images.read_label(str(palette)), [[0, 15, 255]])


def test_bad_files_are_one_line_naming_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(_encoded("rgb")[0][:40])
    with pytest.raises(InputError, match=f"{path}: cannot"):
        images.read_image(str(path))
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(InputError, match=f"{text}: cannot read the image"):
        images.read_image(str(text))
