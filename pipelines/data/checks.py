"""Every image file checked once, up front, with Pillow: what to skip, what to convert, counted.

TensorFlow decodes PNG (any mode, 16-bit too) and grey or RGB JPEG itself. Anything else it
would misread or fail on mid-epoch (CMYK JPEG, BMP, GIF, TIFF, WebP; alpha to flatten for
`rgba-to-rgb`) is converted once to a PNG under the cache folder, so training never meets it.
"""

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

NATIVE_FORMATS = {"PNG", "JPEG"}
ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
DEEP_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


@dataclass(frozen=True)
class FileFacts:
    """What Pillow found in one file; cached by the file's size and modification time."""

    status: str  # ok | zero-byte | non-image | undecodable
    format: str = ""
    mode: str = ""
    width: int = 0
    height: int = 0
    alpha: bool = False
    bit_depth: int = 8
    detail: str = ""


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as stream:
        header = stream.read(25)
    return header[24] if len(header) == 25 else 8


def inspect_file(path: Path) -> FileFacts:
    """Open, size and integrity-check one file, decoding no more than needed."""
    if path.stat().st_size == 0:
        return FileFacts("zero-byte")
    try:
        with Image.open(path) as image:
            width, height = image.size
            alpha = image.mode in ALPHA_MODES or "transparency" in image.info
            facts = FileFacts("ok", image.format or "", image.mode, width, height, alpha)
            if image.format == "PNG":
                # Walks every chunk and its CRC up to IEND without inflating: finds truncation.
                image.verify()
                facts = FileFacts(*astuple(facts)[:6], bit_depth=_png_bit_depth(path))
            else:
                if image.format == "JPEG":
                    # 1/8-scale DCT decode: reads every coefficient (so finds truncation), fast.
                    image.draft(image.mode, (1, 1))
                image.load()
    except UnidentifiedImageError:
        return FileFacts("non-image")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return FileFacts("undecodable", detail=f"{type(error).__name__}: {error}"[:200])
    return facts


def conversion_kind(facts: FileFacts) -> str | None:
    """The summary's name for what changes in this image on the way in, if anything."""
    if facts.alpha:
        return "RGBA"
    if facts.mode == "CMYK":
        return "CMYK"
    if facts.mode == "P":
        return "palette"
    if facts.mode in DEEP_MODES or facts.bit_depth > 8:
        return "16-bit"
    if facts.format not in NATIVE_FORMATS:
        return facts.format or "other"
    return None


def needs_rewrite(facts: FileFacts, color_mode: str) -> bool:
    """True when TensorFlow cannot decode the file as wanted and it is converted to PNG once."""
    if facts.format == "PNG":
        return color_mode == "rgba-to-rgb" and facts.alpha
    return facts.format != "JPEG" or facts.mode not in ("L", "RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    top = pixels.max(initial=0)
    if top > 255:
        pixels = pixels / 257 if top <= 65535 else (pixels - pixels.min()) * 255 / np.ptp(pixels)
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), mode="L")


def rewrite_as_png(source: Path, target: Path, color_mode: str) -> None:
    """Decode with Pillow, convert to the loader's colour mode, write `target` atomically."""
    with Image.open(source) as image:
        image.seek(0)  # the first frame of an animation, as tf.io.decode_image reads it
        if image.mode in DEEP_MODES:
            image = _to_8bit(image)
        if color_mode == "rgba-to-rgb" and (image.mode in ALPHA_MODES or "transparency" in image.info):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        converted = image.convert("L" if color_mode == "grayscale" else "RGB")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    converted.save(partial, format="PNG", compress_level=1)
    os.replace(partial, target)


class FactsCache:
    """FileFacts of one folder tree in a JSON file, valid while size and mtime are unchanged."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._entries = json.loads(path.read_text())
        except (OSError, ValueError):
            self._entries = {}
        self._fresh: dict[str, list] = {}

    def get(self, path: Path, stat: os.stat_result) -> FileFacts | None:
        entry = self._entries.get(str(path))
        if entry and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
            self._fresh[str(path)] = entry
            return FileFacts(*entry[2:])
        return None

    def put(self, path: Path, stat: os.stat_result, facts: FileFacts) -> None:
        self._fresh[str(path)] = [stat.st_size, stat.st_mtime_ns, *astuple(facts)]

    def save(self) -> None:
        """Keep only the files seen this time; written beside and renamed into place."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(self._fresh))
        os.replace(partial, self.path)


def inspect_files(
    paths: list[Path], *, cache_dir: Path, workers: int | None = None
) -> tuple[dict[Path, FileFacts], int, float]:
    """Facts for every path (in parallel; cached ones reused); returns (facts, cached, seconds)."""
    started = time.monotonic()
    tree = hashlib.sha1("\n".join(sorted({str(path.parent.parent) for path in paths})).encode())
    cache = FactsCache(cache_dir / f"file_checks-{tree.hexdigest()[:12]}.json")
    facts, missing = {}, []
    for path in paths:
        stat = path.stat()
        cached = cache.get(path, stat)
        if cached is None:
            missing.append((path, stat))
        else:
            facts[path] = cached
    # Pillow releases the GIL while it decodes, so threads use every core.
    with ThreadPoolExecutor(max_workers=workers or min(32, 2 * (os.cpu_count() or 1))) as pool:
        found = pool.map(lambda item: inspect_file(item[0]), missing)
        for (path, stat), result in zip(missing, found, strict=True):
            facts[path] = result
            cache.put(path, stat, result)
    cache.save()
    return facts, len(paths) - len(missing), time.monotonic() - started


def converted_path(cache_dir: Path, source: Path, color_mode: str) -> Path:
    """Where the PNG conversion of `source` lives: named by its path, size, mtime and mode."""
    stat = source.stat()
    key = f"{source}|{stat.st_size}|{stat.st_mtime_ns}|{color_mode}"
    return cache_dir / "converted" / f"{hashlib.sha1(key.encode()).hexdigest()[:24]}.png"


def rewrite_all(jobs: list[tuple[Path, Path]], color_mode: str) -> None:
    """Write the PNG conversions that are not already there, in parallel."""
    todo = [(source, target) for source, target in jobs if not target.exists()]
    with ThreadPoolExecutor(max_workers=min(32, 2 * (os.cpu_count() or 1))) as pool:
        list(pool.map(lambda job: rewrite_as_png(job[0], job[1], color_mode), todo))


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
    rewritten: int = 0
    skipped: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in SKIP_LABELS})
    converted: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, path: Path | str) -> None:
        self.skipped[reason].append(str(path))

    def convert(self, kind: str) -> None:
        self.converted[kind] = self.converted.get(kind, 0) + 1

    def counts(self) -> dict[str, int]:
        """Flat counts, e.g. skipped_zero_byte, converted_CMYK: ready for metrics or tests."""
        counts = {f"skipped_{reason.replace('-', '_')}": len(paths) for reason, paths in self.skipped.items()}
        counts.update({f"converted_{kind}": count for kind, count in self.converted.items()})
        counts.update(images_used=self.used, in_nested_folders=self.nested)
        return counts

    def summary(self) -> str:
        """One line: what was checked, used, skipped, converted and found nested."""
        parts = [
            f"checked {self.checked} files in {self.seconds:.1f}s"
            + (f" ({self.cached} unchanged since the last check)" if self.cached else "")
            + f": {self.used} images used"
        ]
        skipped = [f"{len(paths)} {SKIP_LABELS[reason]}" for reason, paths in self.skipped.items() if paths]
        parts.append("skipped " + ", ".join(skipped) if skipped else "none skipped")
        if self.converted:
            kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.converted.items()))
            parts.append(f"converted {kinds}")
        if self.nested:
            parts.append(f"{self.nested} found in nested folders (used)")
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"summary": self.summary(), "counts": self.counts(), "skipped_files": self.skipped}
