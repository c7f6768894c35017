"""Near-duplicate paintings: the same work photographed twice, resized, re-encoded or slightly cropped.

1. Candidates: every painting's nearest neighbours in the search embedding (the hnswlib index of the
   *base* space with the current blend weights; the adapted space is trained to pull different
   paintings of one hand together, the opposite of what is wanted here) whose cosine similarity is
   at least ``threshold``. The embedding gives recall; it cannot confirm: different paintings of one
   style can be as close as a copy (measured in docs/explore.md).
2. Confirmation by the perceptual hash (a 64-bit DCT pHash of a 64x64 greyscale thumbnail):

   * same picture: the hashes of the whole images differ in at most ``max_hamming`` bits
     (re-encodes, resizes, small colour changes: 0-4 bits measured; unrelated paintings 12 and up);
   * crop: cropping a few per cent moves every DCT coefficient, so the whole-image hashes of a crop
     and its original differ as much as unrelated paintings' (4-44 bits measured). For a pair that
     fails the first test, crops of each image (0-12.5 % off every side, a 2-pixel grid on the
     thumbnail refined to 1 pixel) are aligned with the other whole image; the pair is a crop when
     the best-aligned crop's pixels correlate by at least :data:`CROP_CORRELATION` *and* its hash is
     within ``max_hamming - CROP_HASH_SLACK`` bits (stricter: some 700 alignments are tried per
     pair). Both are needed: among 496 unrelated synthetic pairs the best alignment reached a
     correlation of 0.913 (at 20 bits) and a hash distance of 10 bits (at a correlation of 0.81),
     while crops of 3-8 % reached 0.93-1.00 within 0-6 bits (docs/explore.md).
3. Confirmed pairs are joined into groups (union-find); groups are sorted by size, then similarity.

Thumbnails (and hashes) are made only for candidates, decoded read-only from the collection with
:func:`.imageio.load_rgb` (reduced JPEG decoding), and cached in the index directory
(``duplicates.sqlite``, keyed by content hash) so a second run decodes nothing. A file that cannot
be read, or whose content changed since it was indexed, is skipped with a reason
(:attr:`Collection.duplicate_skipped`). Nothing is ever deleted, moved or written in the collection.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from ..analysis.neighbors import NeighbourIndex
from ..analysis.parts import blend
from ..derived import DerivedFiles
from ..errors import ArtStyleError, DecodeError
from ..ingest.imageio import DEFAULT_MAX_MEGAPIXELS, load_rgb
from ..model import Analysis
from ..progress import Progress, ProgressGen

HASH_SIZE = 8  # 8 x 8 low frequencies -> 64 bits
THUMB = 64  # side of the cached greyscale thumbnail (aspect ratio squashed: crops are per axis)
_DCT_SIZE = 32
NEIGHBOURS = 20  # candidates per painting
CACHE_FILE = "duplicates.sqlite"
CROP_CORRELATION = 0.90  # pixel correlation of the best-aligned crop that (with the hash) confirms a crop
CROP_HASH_SLACK = 2  # a crop's aligned hash must be within max_hamming - 2 bits
_CROP_MAX = 8  # largest margin searched, thumbnail pixels per side (12.5 %)
_CROP_STEP = 2
_CROP_REFINE = 10  # margins up to this after the 1-pixel refinement


# --------------------------------------------------------------------------- perceptual hash
def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m  # orthonormal DCT-II


_DCT = _dct_matrix(_DCT_SIZE)


@functools.lru_cache(maxsize=256)
def _area(lo: int, hi: int) -> np.ndarray:
    """(32, THUMB) matrix that area-averages the pixels [lo, hi) of a line into 32 cells."""
    s = (hi - lo) / _DCT_SIZE
    m = np.zeros((_DCT_SIZE, THUMB))
    for i in range(_DCT_SIZE):
        a, b = lo + i * s, lo + (i + 1) * s
        for j in range(int(np.floor(a)), min(THUMB, int(np.ceil(b)))):
            m[i, j] = max(0.0, min(b, j + 1) - max(a, j))
        m[i] /= m[i].sum()
    m.setflags(write=False)
    return m


def thumbnail(img: Image.Image) -> np.ndarray:
    """The 64x64 greyscale thumbnail (uint8) hashes and crop checks are computed from."""
    return np.asarray(img.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX), np.uint8)


def _hash_bits(arrs: np.ndarray) -> np.ndarray:
    """pHash bits (n, 64) of 32x32 arrays (n, 32, 32): 2-D DCT, 8x8 lowest frequencies > their median."""
    d = (_DCT @ arrs @ _DCT.T)[:, :HASH_SIZE, :HASH_SIZE].reshape(len(arrs), HASH_SIZE * HASH_SIZE)
    return d > np.median(d, axis=1, keepdims=True)


def _to_int(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _whole(thumb: np.ndarray) -> np.ndarray:
    """The whole thumbnail area-averaged to 32x32 (float64)."""
    a = _area(0, THUMB)
    return a @ thumb.astype(np.float64) @ a.T


def thumb_phash(thumb: np.ndarray) -> int:
    return _to_int(_hash_bits(_whole(thumb)[None])[0])


def phash(img: Image.Image) -> int:
    """64-bit DCT perceptual hash: greyscale, 64x64 (area) -> 32x32 -> 2-D DCT -> the 8x8 lowest
    frequencies compared with their median (the usual pHash, as in the ``imagehash`` package).
    The first bit (most significant) is the DC term."""
    return thumb_phash(thumbnail(img))


def hamming(a: int, b: int) -> int:
    """Number of differing bits of two hashes."""
    return int(a ^ b).bit_count()


def _hamming_matrix(h: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances of uint64 hashes."""
    x = h[:, None] ^ h[None, :]
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(-1).astype(np.int64)


# --------------------------------------------------------------------------- crop alignment
def _crops(thumb: np.ndarray, lr: list[tuple[int, int]], tb: list[tuple[int, int]]) -> np.ndarray:
    """Every crop (left/right margins from ``lr`` x top/bottom from ``tb``) area-resized to 32x32:
    (len(tb) * len(lr), 32, 32), ordered tb-major."""
    ry = np.stack([_area(t, THUMB - b) for t, b in tb])  # (A, 32, 64)
    rx = np.stack([_area(l, THUMB - r) for l, r in lr])  # (B, 32, 64)
    y = ry @ thumb.astype(np.float64)  # (A, 32, 64)
    c = y[:, None] @ rx.transpose(0, 2, 1)[None]  # (A, B, 32, 32)
    return c.reshape(-1, _DCT_SIZE, _DCT_SIZE)


def _z(a: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1)
    a = a - a.mean(1, keepdims=True)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-9)


_COARSE = [(a, b) for a in range(0, _CROP_MAX + 1, _CROP_STEP) for b in range(0, _CROP_MAX + 1, _CROP_STEP)]


def _coarse_crops(thumb: np.ndarray) -> np.ndarray:
    return _z(_crops(thumb, _COARSE, _COARSE)).astype(np.float32)  # (625, 1024)


def _near(m: int) -> list[int]:
    return [x for x in (m - 1, m, m + 1) if 0 <= x <= _CROP_REFINE]


def _align(thumb: np.ndarray, coarse: np.ndarray, other: np.ndarray) -> tuple[float, int]:
    """Best crop of ``thumb`` aligned with the whole ``other``: (pixel correlation, hash distance)."""
    target = _whole(other)
    zt = _z(target[None])[0].astype(np.float32)
    i = int(np.argmax(coarse @ zt))
    (t, b), (l, r) = _COARSE[i // len(_COARSE)], _COARSE[i % len(_COARSE)]
    tb = [(a, c) for a in _near(t) for c in _near(b)]
    lr = [(a, c) for a in _near(l) for c in _near(r)]
    fine = _crops(thumb, lr, tb)
    ncc = _z(fine) @ zt
    j = int(np.argmax(ncc))
    bits = _hash_bits(np.stack([fine[j], target]))
    return float(ncc[j]), int((bits[0] != bits[1]).sum())


# --------------------------------------------------------------------------- the thumbnail cache
def _cache_path(index_dir: Path) -> Path:
    return index_dir / CACHE_FILE


class _ThumbCache:
    """content hash -> 64x64 greyscale thumbnail, in its own SQLite file beside the index (a cache:
    a damaged one is replaced)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db: sqlite3.Connection | None = None
        try:
            self.db = self._open()
        except sqlite3.DatabaseError:
            try:
                self._reset()
            except (sqlite3.DatabaseError, OSError):  # unwritable index folder: run without a cache
                self.db = None

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS thumbs (hash TEXT PRIMARY KEY, thumb BLOB NOT NULL) WITHOUT ROWID")
        return db

    def _reset(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(str(self.path) + suffix)
            except OSError:
                pass
        self.db = self._open()

    def get(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        hs = list(hashes)
        if self.db is None:
            return out
        try:
            for i in range(0, len(hs), 500):
                part = hs[i: i + 500]
                q = ",".join("?" * len(part))
                for h, blob in self.db.execute(f"SELECT hash, thumb FROM thumbs WHERE hash IN ({q})", part):
                    if isinstance(blob, bytes) and len(blob) == THUMB * THUMB:
                        out[h] = np.frombuffer(blob, np.uint8).reshape(THUMB, THUMB)
        except sqlite3.DatabaseError:
            self._safe_reset()
            return {}
        return out

    def _safe_reset(self) -> None:
        try:
            self._reset()
        except (sqlite3.DatabaseError, OSError):
            self.db = None

    def put(self, items: dict[str, np.ndarray]) -> None:
        if not items or self.db is None:
            return
        try:
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO thumbs(hash, thumb) VALUES(?, ?)",
                                    [(h, sqlite3.Binary(t.tobytes())) for h, t in items.items()])
        except sqlite3.OperationalError:
            pass  # disk full, read-only, busy: it is only a cache
        except sqlite3.DatabaseError:
            self._safe_reset()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def _read_thumb(root: Path, relpath: str, expected: str,
                max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> tuple[np.ndarray | None, str | None]:
    """Read one painting (read-only): (thumbnail, None) or (None, reason)."""
    from ..ingest.features import content_hash

    try:
        with open(root / relpath, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None, "the file is gone (run index again)"
    except OSError as e:
        return None, f"read error: {e.strerror or e}"
    if expected and content_hash(data) != expected:
        return None, "the file changed since it was indexed (run index again)"
    try:
        return thumbnail(load_rgb(data, 256, max_megapixels=max_megapixels)), None
    except DecodeError as e:
        return None, e.reason
    except Exception as e:  # one odd file must not stop the search
        return None, f"could not process: {type(e).__name__}: {e}"


# --------------------------------------------------------------------------- groups
@dataclass
class DuplicatePair:
    """One confirmed pair: rows, embedding similarity, hash distance (after crop alignment for a crop)."""

    a: int
    b: int
    similarity: float
    hamming: int
    crop: bool  # confirmed as a crop (aligned hash + pixel correlation), not by the whole-image hash


@dataclass
class DuplicateGroup:
    rows: list[int]  # rows of the analysis, in path order
    relpaths: list[str]
    similarity: float  # the smallest embedding (cosine) similarity of any two members
    max_hamming: int  # the largest hash distance of the pairs that joined the group (after alignment for crops)
    phashes: list[int] = field(default_factory=list)  # per member (whole image)
    similarities: list[float] = field(default_factory=list)  # per member: cosine to the first member
    hammings: list[int] = field(default_factory=list)  # per member: whole-image hash distance to the first
    crops: list[bool] = field(default_factory=list)  # per member: joined the group as a crop
    pairs: list[DuplicatePair] = field(default_factory=list)  # the confirmed pairs inside the group

    @property
    def size(self) -> int:
        return len(self.rows)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, a: int) -> int:
        self.parent.setdefault(a, a)
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


# --------------------------------------------------------------------------- the search
@dataclass
class DuplicateStats:
    """What a :func:`find_duplicates` run could not read, and how many images it decoded (the others
    came from its thumbnail cache). Filled as the run goes, so a cancelled run reports too."""

    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)
    decoded: int = 0


def find_duplicates(an: Analysis, files: DerivedFiles, threshold: float = 0.80, max_hamming: int = 10, *,
                    crops: bool = True, stats: DuplicateStats | None = None) -> ProgressGen[list[DuplicateGroup]]:
    """Groups of near-duplicates among the paintings of ``an`` (largest first); unreadable candidates are
    skipped (``stats.skipped``). Reads the collection folder ``files.root`` only."""
    stats = stats if stats is not None else DuplicateStats()
    if not 0.0 < threshold <= 1.0:
        raise ArtStyleError("The duplicate threshold must be in (0, 1].")
    if not 0 <= max_hamming <= 64:
        raise ArtStyleError("The hash distance limit must be between 0 and 64 bits.")
    if an.n < 2:
        return []
    vec = blend(an.base_space.parts, an.weights)
    yield Progress("duplicates", 0, 1, f"nearest neighbours of {an.n:,} paintings")
    index = an.index if an.space == "base" else NeighbourIndex.build(vec, "cosine", seed=files.settings.seed)
    labels, _ = index.query(vec, min(an.n, NEIGHBOURS + 1))
    rows = np.repeat(np.arange(an.n), labels.shape[1])
    other = labels.ravel()
    keep = rows != other
    a, b = np.minimum(rows, other)[keep], np.maximum(rows, other)[keep]
    cos = np.einsum("ij,ij->i", vec[a], vec[b]) if len(a) else np.zeros(0, np.float32)
    cand = cos >= threshold
    # the index may list a pair from both sides or one: one entry per pair
    pairs = {(int(x), int(y)): float(c) for x, y, c in zip(a[cand], b[cand], cos[cand])}
    members = sorted({r for p in pairs for r in p})
    yield Progress("duplicates", 0, 1, f"{len(pairs):,} candidate pair{'s' if len(pairs) != 1 else ''} "
                                       f"(similarity >= {threshold:g}) among {an.n:,} paintings"
                                       + (f", {len(members):,} of them in a pair" if members else ""))

    # thumbnails of the candidates: cached by content hash, else decoded (read-only)
    thumbs: dict[int, np.ndarray] = {}
    cache = _ThumbCache(_cache_path(files.index_dir))
    try:
        cached = cache.get({an.hashes[r] for r in members if an.hashes[r]})
        todo = []
        for r in members:
            t = cached.get(an.hashes[r])
            if t is not None:
                thumbs[r] = t
            else:
                todo.append(r)
        if todo:
            mp = files.settings.max_megapixels
            threads = max(1, min(8, os.cpu_count() or 2))
            done = 0
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="artstyle-dups") as pool:
                for s in range(0, len(todo), 64):
                    chunk = todo[s: s + 64]
                    results = list(pool.map(lambda r: _read_thumb(files.root, an.relpaths[r], an.hashes[r], mp), chunk))
                    new: dict[str, np.ndarray] = {}
                    for r, (t, why) in zip(chunk, results):
                        if t is None:
                            stats.skipped.append((an.relpaths[r], why or "unreadable"))
                            continue
                        thumbs[r] = t
                        stats.decoded += 1
                        if an.hashes[r]:
                            new[an.hashes[r]] = t
                    cache.put(new)  # batch by batch: a cancelled run keeps what it decoded
                    done += len(chunk)
                    yield Progress("duplicates", done, len(todo), f"thumbnails {done:,}/{len(todo):,}")
            for rel, why in stats.skipped:
                yield Progress("duplicates", done, len(todo), f"skipped {rel}: {why}")
    finally:
        cache.close()

    # confirm: whole-image hash, else (crops) the best-aligned crop's correlation and hash
    hashes = {r: thumb_phash(t) for r, t in thumbs.items()}
    uf = _UnionFind()
    confirmed: list[DuplicatePair] = []
    coarse: dict[int, np.ndarray] = {}
    todo_pairs = sorted(p for p in pairs if p[0] in thumbs and p[1] in thumbs)  # unreadable: never grouped
    for i, (x, y) in enumerate(todo_pairs):
        c = pairs[(x, y)]
        h = hamming(hashes[x], hashes[y])
        if h <= max_hamming:
            confirmed.append(DuplicatePair(x, y, c, h, False))
            uf.union(x, y)
        elif crops:
            best = (-1.0, 64)
            for p, q in ((x, y), (y, x)):
                if p not in coarse:
                    if len(coarse) > 64:
                        coarse.clear()
                    coarse[p] = _coarse_crops(thumbs[p])
                ncc, hh = _align(thumbs[p], coarse[p], thumbs[q])
                if ncc > best[0]:
                    best = (ncc, hh)
            if best[0] >= CROP_CORRELATION and best[1] <= max_hamming - CROP_HASH_SLACK:
                confirmed.append(DuplicatePair(x, y, c, best[1], True))
                uf.union(x, y)
        if i % 256 == 255:
            yield Progress("duplicates", i + 1, len(todo_pairs), f"checked {i + 1:,}/{len(todo_pairs):,} pairs")

    comps: dict[int, list[int]] = {}
    for r in list(uf.parent):
        comps.setdefault(uf.find(r), []).append(r)
    by_root: dict[int, list[DuplicatePair]] = {}
    for pr in confirmed:
        by_root.setdefault(uf.find(pr.a), []).append(pr)
    groups = []
    for root, rs in comps.items():
        if len(rs) < 2:
            continue
        rs = sorted(rs, key=lambda r: an.relpaths[r])
        v = vec[rs]
        sims = v @ v.T
        ham = _hamming_matrix(np.array([hashes[r] for r in rs], np.uint64))
        links = by_root.get(root, [])
        crop_rows = {r for pr in links if pr.crop for r in (pr.a, pr.b)}
        hash_rows = {r for pr in links if not pr.crop for r in (pr.a, pr.b)}
        groups.append(DuplicateGroup(
            rows=list(rs), relpaths=[an.relpaths[r] for r in rs], similarity=float(min(1.0, sims.min())),
            max_hamming=max((pr.hamming for pr in links), default=0), phashes=[hashes[r] for r in rs],
            similarities=[float(min(1.0, s)) for s in sims[0]], hammings=[int(x) for x in ham[0]],
            crops=[r in crop_rows and r not in hash_rows for r in rs], pairs=links))
    groups.sort(key=lambda g: (-g.size, -g.similarity, g.relpaths[0]))
    yield Progress("duplicates", 1, 1, f"{len(groups):,} groups of near-duplicates")
    return groups


def export_duplicates_csv(groups: list[DuplicateGroup], path: str | os.PathLike,
                          collection_root: str | os.PathLike) -> Path:
    """One row per painting of every group: group, size, relpath, path, similarity and whole-image
    hash distance to the group's first painting, match ("hash" or "crop"), and the group's smallest
    similarity / largest confirming hash distance. Cells are escaped against spreadsheet formulas;
    the file is written atomically, never inside the collection."""
    from ..ingest.store import atomic_write_bytes, check_outside
    from .summaries import csv_bytes

    path = Path(path).expanduser()
    root = Path(collection_root)
    check_outside(root, path, what="duplicates CSV")
    rows = []
    for gi, g in enumerate(groups, 1):
        sims = g.similarities or [float("nan")] * g.size
        hams = g.hammings or [""] * g.size
        crop = g.crops or [False] * g.size
        for rel, s, h, c in zip(g.relpaths, sims, hams, crop):
            rows.append([gi, g.size, rel, str(root / rel), f"{s:.4f}", h, "crop" if c else "hash",
                         f"{g.similarity:.4f}", g.max_hamming])
    atomic_write_bytes(path, csv_bytes(["group", "size", "relpath", "path", "similarity", "hamming", "match",
                                         "group_min_similarity", "group_max_hamming"], rows))
    return path
