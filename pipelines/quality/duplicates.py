"""Exact and near-duplicate images within and across splits, without comparing every pair.

Why this method: a perceptual hash (imagehash's pHash: the signs of an image's lowest DCT
frequencies) is the same for an image re-encoded, slightly brightened or resized, so copies
land in the same hash buckets and only those few candidate pairs are compared. pHash is not
shift-invariant, and at 28 pixels one pixel is 4 % of the image: so the held-out images (val,
test, where a copy in train inflates the score) are also hashed shifted by one pixel each way.
Hash neighbours are found by multi-index hashing (a 64-bit code cut into distance+1 chunks: two
codes within the distance agree exactly on at least one chunk), then every candidate pair is
checked on its pixels, so similar-looking but different garments are not reported.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
from PIL import Image

# Larger images are compared at this side: the check is about content, not detail.
VIEW_SIDE = 64
ONE_PIXEL_SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
# A bucket holding more codes than this (e.g. thousands of blank images) pairs each code
# with this many neighbours only: the pairs stay linear in the number of images.
BUCKET_PAIR_LIMIT = 256
HELD_OUT = ("val", "test")


@dataclass(frozen=True)
class DuplicatePair:
    split_a: str
    file_a: str
    split_b: str
    file_b: str
    kind: str  # exact (same decoded pixels) | near
    hash_distance: int
    pixel_difference: float  # mean |a - b| (0..255) at the best one-pixel shift, brightness aside

    @property
    def cross_split(self) -> bool:
        return self.split_a != self.split_b


def grayscale_views(images: np.ndarray) -> np.ndarray:
    """uint8 (n, H, W, C) → float32 (n, h, w) grayscale, at most VIEW_SIDE a side."""
    gray = images.mean(axis=-1) if images.shape[-1] > 1 else images[..., 0]
    if max(gray.shape[1:]) <= VIEW_SIDE:
        return gray.astype(np.float32)
    size = (VIEW_SIDE, VIEW_SIDE)
    return np.stack(
        [np.asarray(Image.fromarray(view.astype(np.uint8)).resize(size)) for view in gray]
    ).astype(np.float32)


def _shifted(views: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The views moved by (dy, dx) pixels, their edges repeated into the gap."""
    padded = np.pad(views, [(0, 0), (1, 1), (1, 1)], mode="edge")
    height, width = views.shape[1:]
    return padded[:, 1 - dy : 1 - dy + height, 1 - dx : 1 - dx + width]


def _resampling_matrix(size: int, side: int) -> np.ndarray:
    """(side, size): Pillow's Lanczos resize of a row of `size` pixels to `side`, as a matrix."""
    rows = []
    for index in range(size):
        unit = np.zeros((1, size), dtype=np.float32)
        unit[0, index] = 1.0
        rows.append(np.asarray(Image.fromarray(unit, mode="F").resize((side, 1), Image.LANCZOS)))
    return np.concatenate(rows).T


def phash_codes(views: np.ndarray, hash_size: int = 8, highfreq_factor: int = 4) -> np.ndarray:
    """imagehash.phash's 64 bits for each view, as one uint64 each.

    The same steps as imagehash.phash (Lanczos to 32x32, 2-D DCT, the 8x8 lowest frequencies
    above their median), batched: one imagehash call per image costs ~0.15 ms, and the
    200,000 codes of fashion10 with its shifted held-out images would take half a minute.
    """
    side = hash_size * highfreq_factor
    rows = _resampling_matrix(views.shape[1], side)
    columns = _resampling_matrix(views.shape[2], side)
    # Two large matrix products rather than one small one per image.
    height, width = views.shape[1:]
    wide = (views.reshape(-1, width) @ columns.T).reshape(len(views), height, side)
    small = (wide.transpose(0, 2, 1).reshape(-1, height) @ rows.T).reshape(len(views), side, side)
    small = small.transpose(0, 2, 1)
    low = scipy.fft.dct(scipy.fft.dct(small, axis=1), axis=2)[:, :hash_size, :hash_size]
    bits = low.reshape(len(views), -1) > np.median(low.reshape(len(views), -1), axis=1)[:, None]
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def hash_codes(views: np.ndarray, *, shifted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit pHash codes, the image each belongs to): one per view, nine per `shifted` view."""
    codes, owners = [phash_codes(views)], [np.arange(len(views))]
    moved = np.flatnonzero(shifted)
    for dy, dx in ONE_PIXEL_SHIFTS:
        if (dy, dx) != (0, 0) and len(moved):
            codes.append(phash_codes(_shifted(views[moved], dy, dx)))
            owners.append(moved)
    return np.concatenate(codes), np.concatenate(owners)


def _bucket_pairs(keys: np.ndarray) -> np.ndarray:
    """(i, j) index pairs of entries with the same key (at most BUCKET_PAIR_LIMIT per entry)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pairs = []
    for offset in range(1, BUCKET_PAIR_LIMIT + 1):
        # Entry k with entry k+offset of the same bucket: every pair once in small buckets.
        first = np.arange(len(keys) - offset)
        same = sorted_keys[first] == sorted_keys[first + offset]
        if not same.any():
            break
        pairs.append(np.stack([order[first[same]], order[first[same] + offset]], axis=1))
    return np.concatenate(pairs) if pairs else np.empty((0, 2), dtype=np.int64)


def close_code_pairs(codes: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """(pairs of entry indices, their Hamming distances) for codes within `max_distance` bits."""
    chunks = max_distance + 1
    edges = np.linspace(0, 64, chunks + 1).astype(int)
    found = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        mask = np.uint64((1 << int(high - low)) - 1)
        found.append(_bucket_pairs((codes >> np.uint64(low)) & mask))
    pairs = np.sort(np.concatenate(found), axis=1)
    pairs = pairs[np.bitwise_count(codes[pairs[:, 0]] ^ codes[pairs[:, 1]]) <= max_distance]
    # One number per pair: np.unique on rows (axis=0) is many times slower.
    keys = np.unique(pairs[:, 0] * len(codes) + pairs[:, 1])
    pairs = np.stack([keys // len(codes), keys % len(codes)], axis=1)
    return pairs, np.bitwise_count(codes[pairs[:, 0]] ^ codes[pairs[:, 1]]).astype(int)


def pixel_differences(views: np.ndarray, pairs: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Per pair: the smallest mean |a - b - offset| over one-pixel shifts (offset: the mean
    difference, so a brightness change is no difference; the median would be robust to
    clipped pixels too, at five times the cost)."""
    height, width = views.shape[1:]
    best = np.full(len(pairs), np.inf, dtype=np.float32)
    for start in range(0, len(pairs), batch):
        first = views[pairs[start : start + batch, 0]]
        second = views[pairs[start : start + batch, 1]]
        for dy, dx in ONE_PIXEL_SHIFTS:
            a = first[:, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)]
            b = second[:, max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)]
            difference = (a - b).reshape(len(a), -1)
            offset = difference.mean(axis=1, keepdims=True)
            score = np.abs(difference - offset).mean(axis=1)
            best[start : start + batch] = np.minimum(best[start : start + batch], score)
    return best


def find_duplicates(
    images: np.ndarray,
    *,
    files: list[str],
    splits: list[str],
    max_hash_distance: int,
    pixel_tolerance: float,
) -> list[DuplicatePair]:
    """Pairs of images that are copies of each other, exact or near, in any splits.

    Args:
        images: uint8 (n, H, W, C), the decoded images; row i is files[i] of splits[i].
        max_hash_distance: pHash bits two candidates may differ in.
        pixel_tolerance: the largest pixel difference (0..255) still called a copy.
    """
    views = grayscale_views(images)
    held_out = np.isin(np.asarray(splits), HELD_OUT)
    codes, owners = hash_codes(views, shifted=held_out)
    entry_pairs, distances = close_code_pairs(codes, max_hash_distance)
    image_pairs = np.sort(owners[entry_pairs], axis=1)
    distinct = image_pairs[:, 0] != image_pairs[:, 1]
    image_pairs, distances = image_pairs[distinct], distances[distinct]
    # Several shifted codes of one pair may match: keep the pair once, at its closest.
    order = np.lexsort((distances, image_pairs[:, 1], image_pairs[:, 0]))
    image_pairs, distances = image_pairs[order], distances[order]
    first = np.ones(len(image_pairs), dtype=bool)
    first[1:] = np.any(image_pairs[1:] != image_pairs[:-1], axis=1)
    image_pairs, distances = image_pairs[first], distances[first]
    differences = pixel_differences(views, image_pairs)
    found = []
    for (a, b), distance, difference in zip(image_pairs, distances, differences, strict=True):
        if difference > pixel_tolerance:
            continue
        if split_order(splits[b]) < split_order(splits[a]):
            a, b = b, a
        exact = bool(np.array_equal(images[a], images[b]))
        found.append(
            DuplicatePair(
                split_a=splits[a],
                file_a=files[a],
                split_b=splits[b],
                file_b=files[b],
                kind="exact" if exact else "near",
                hash_distance=int(distance),
                pixel_difference=round(float(difference), 3),
            )
        )
    return found


def split_order(name: str) -> int:
    """train, val, test, then anything else: the order pairs are written in."""
    return {"train": 0, "val": 1, "test": 2}.get(name, 3)


def relative_name(file: str) -> str:
    """class/file.png: how a file is shown in lines and tables."""
    path = Path(file)
    return f"{path.parent.name}/{path.name}"
