"""Every image file read once, up front, with Pillow: checked, converted, resized, counted.

One pass per file does what the usual notebook's ImageDataGenerator does on every epoch (open,
decode, convert, resize) and also tells what to skip and what was converted; the loader runs it in
threads (Pillow releases the GIL while decoding) and keeps the pixels, so nothing is decoded
again during training and a bad file can never stop a trial mid-epoch.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
DEEP_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
NATIVE_FORMATS = {"PNG", "JPEG"}


def conversion_kind(image: Image.Image) -> str | None:
    """The summary's name for what changes in this image on the way in, if anything."""
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return "RGBA"
    if image.mode == "CMYK":
        return "CMYK"
    if image.mode == "P":
        return "palette"
    tiles = getattr(image, "tile", None) or []  # an image made from an array has none
    if image.mode in DEEP_MODES or any(";16" in str(tile.args) for tile in tiles):
        return "16-bit"
    if image.format not in NATIVE_FORMATS:
        return image.format or "other"
    return None


def _to_8bit(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    top = pixels.max(initial=0)
    if top > 255:
        pixels = pixels / 257 if top <= 65535 else (pixels - pixels.min()) * 255 / np.ptp(pixels)
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), mode="L")


def _in_color_mode(image: Image.Image, color_mode: str) -> Image.Image:
    if image.mode in DEEP_MODES:
        image = _to_8bit(image)
    if color_mode == "rgba-to-rgb" and (image.mode in ALPHA_MODES or "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    # Like Keras' load_img: "rgb" drops an alpha channel, "grayscale" takes luminance.
    mode = "L" if color_mode == "grayscale" else "RGB"
    return image if image.mode == mode else image.convert(mode)


@dataclass(frozen=True)
class ReadResult:
    status: str  # ok | zero-byte | non-image | undecodable | too-small
    kind: str | None = None  # conversion_kind
    pixels: np.ndarray | None = None  # uint8 (height, width, channels)


def read_image(
    path: Path | BinaryIO,
    *,
    image_size: tuple[int, int],
    crop: tuple[int, int] | None,
    color_mode: str,
) -> ReadResult:
    """Decode, convert, centre-crop and resize one file (or file object), or say why it is
    skipped."""
    try:
        if isinstance(path, Path) and path.stat().st_size == 0:
            return ReadResult("zero-byte")
        with Image.open(path) as image:
            return fit_image(image, image_size=image_size, crop=crop, color_mode=color_mode)
    except UnidentifiedImageError:
        return ReadResult("non-image")
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return ReadResult("undecodable")


def fit_image(
    image: Image.Image,
    *,
    image_size: tuple[int, int],
    crop: tuple[int, int] | None,
    color_mode: str,
) -> ReadResult:
    """An opened image converted to `color_mode`, centre-cropped and resized as training read."""
    height, width = image_size
    kind = conversion_kind(image)
    if crop and (image.height < crop[0] or image.width < crop[1]):
        return ReadResult("too-small", kind)
    try:
        if image.format == "JPEG" and not crop:
            # DCT-scaled decode: a large photo is decoded at no more than ~2x the size kept.
            image.draft(image.mode, (width, height))
        image.load()  # the whole file: a truncated one raises here
        converted = _in_color_mode(image, color_mode)
        if crop:
            top, left = (converted.height - crop[0]) // 2, (converted.width - crop[1]) // 2
            converted = converted.crop((left, top, left + crop[1], top + crop[0]))
        if converted.size != (width, height):
            # Pillow's bilinear filter widens its support when shrinking: antialiased.
            converted = converted.resize((width, height), Image.BILINEAR)
        resized = np.asarray(converted)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return ReadResult("undecodable")
    return ReadResult("ok", kind, resized if resized.ndim == 3 else resized[..., None])


SKIP_LABELS = {
    "zero-byte": "zero-byte",
    "undecodable": "truncated/undecodable",
    "non-image": "non-image",
    "too-small": "smaller than the crop",
}


@dataclass
class FileReport:
    """The counted outcome of the up-front check: printed once and logged to every run."""

    checked: int = 0
    cached: int = 0
    seconds: float = 0.0
    used: int = 0
    nested: int = 0
    skipped: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in SKIP_LABELS})
    converted: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, path: Path | str) -> None:
        self.skipped[reason].append(str(path))

    def convert(self, kind: str) -> None:
        self.converted[kind] = self.converted.get(kind, 0) + 1

    def counts(self) -> dict[str, int]:
        """Flat counts, e.g. skipped_zero_byte, converted_CMYK: ready for metrics or tests."""
        counts = {
            f"skipped_{reason.replace('-', '_')}": len(paths)
            for reason, paths in self.skipped.items()
        }
        counts.update({f"converted_{kind}": count for kind, count in self.converted.items()})
        counts.update(images_used=self.used, in_nested_folders=self.nested)
        return counts

    def summary(self) -> str:
        """One line: what was checked, used, skipped, converted and found nested."""
        parts = [
            f"checked {self.checked} files in {self.seconds:.1f}s"
            + (
                " (unchanged since the last check: read back from the cache)"
                if self.cached
                else ""
            )
            + f": {self.used} images used"
        ]
        skipped = [
            f"{len(paths)} {SKIP_LABELS[reason]}"
            for reason, paths in self.skipped.items()
            if paths
        ]
        parts.append("skipped " + ", ".join(skipped) if skipped else "none skipped")
        if self.converted:
            kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.converted.items()))
            parts.append(f"converted {kinds}")
        if self.nested:
            parts.append(f"{self.nested} found in nested folders (used)")
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"summary": self.summary(), "counts": self.counts(), "skipped_files": self.skipped}
