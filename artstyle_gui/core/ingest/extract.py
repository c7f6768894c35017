"""Read, decode and extract one batch of images: the work of an indexing run that happens before the commit.

The same functions run in the local indexing loop (decode threads + the network in the calling process)
and in a cluster worker (:mod:`..index.cluster`, one network per Ray actor), so both give the same bytes
for the same image, backbone and runtime. The driver (:meth:`Collection.update`) is the only writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import DecodeError
from .features import FeatureLayout, Prepared, content_hash, prepare

#: images per network pass on a GPU (``Backbone.to_device`` passes 64 at a time): the local run's batches there,
#: and a GPU cluster worker's, so that both pass the same images together
GPU_BATCH = 64


@dataclass
class Extracted:
    """What one file gave: its content hash and either its packed features, an error, or neither (its
    content is already known: the stored features are reused)."""

    relpath: str
    hash: str | None
    error: str | None = None
    blob: bytes | None = None
    width: int | None = None
    height: int | None = None


def read_local(path: str) -> bytes:
    with open(path, "rb") as fh:  # read-only; the collection is never written
        return fh.read()


def read_prepared(read: Callable[[str], bytes], relpath: str, known, *, colour_bins: int, trim_borders: bool,
                  max_megapixels: float) -> tuple[str | None, Prepared | None, str | None]:
    """Read the bytes once (``read(relpath)``), hash them, decode unless the content is ``in known``:
    (hash, prepared or None, error or None). Never raises for a bad file: the reason is returned. A storage
    that fails as a whole (``read`` raises an ArtStyleError: throttling, expired credentials, a network
    outage) is not a bad file: that error stops the run, and the file is not marked unreadable."""
    try:
        data = read(relpath)
    except FileNotFoundError:
        return None, None, "file vanished before it could be read"
    except PermissionError:
        return None, None, "permission denied"
    except IsADirectoryError:
        return None, None, "is a folder"
    except OSError as e:
        return None, None, f"read error: {e.strerror or e}"
    h = content_hash(data)
    if h in known:
        return h, None, None
    try:
        return h, prepare(data, bins=colour_bins, trim_borders=trim_borders, max_megapixels=max_megapixels), None
    except DecodeError as e:
        return h, None, e.reason
    except MemoryError:
        return h, None, "not enough memory to process this image"
    except Exception as e:  # one odd file must never stop the run: it is reported instead
        return h, None, f"could not process: {type(e).__name__}: {e}"


def prepared_reader(read: Callable[[str], bytes], known, st) -> Callable[[str], tuple]:
    """:func:`read_prepared` for one run: ``relpath -> (hash, prepared, error)`` with the decode settings of
    ``st`` (a :class:`~..model.Settings`: ``colour_bins``, ``trim_borders``, ``max_megapixels``)."""
    def read_one(relpath: str) -> tuple:
        return read_prepared(read, relpath, known, colour_bins=st.colour_bins, trim_borders=st.trim_borders,
                             max_megapixels=st.max_megapixels)

    return read_one


def extract_batch(relpaths: Iterable[str], results, net, layout: FeatureLayout) -> list[Extracted]:
    """One network pass over the decoded images of a batch (``results``: what :func:`read_prepared` gave for
    each path, in order); the features are packed as the index stores them."""
    out: list[Extracted] = []
    to_net: list[tuple[int, Prepared]] = []
    for i, (relpath, (h, prep, err)) in enumerate(zip(relpaths, results)):
        ex = Extracted(relpath, h, err)
        if prep is not None:
            ex.width, ex.height = prep.width, prep.height
            to_net.append((i, prep))
        out.append(ex)
    if to_net:
        res = net.forward(np.stack([p.crop for _, p in to_net]))
        for j, (i, prep) in enumerate(to_net):
            out[i].blob = layout.pack(res["deep"][j], [g[j] for g in res["grams"]], prep.colour, res["local"][j],
                                      prep.aspect)
    return out


class KnownHashes:
    """A compact, read-only set of content hashes (hex blake2b-128): 16 bytes each in a sorted array, so a
    million of them travel to every cluster worker as 16 MB instead of a 100 MB Python set."""

    def __init__(self, hashes: Iterable[str]) -> None:
        raw = [bytes.fromhex(h) for h in hashes if h and len(h) == 32]
        self._a = np.unique(np.array(raw, dtype="S16")) if raw else np.zeros(0, "S16")  # numpy's order: searchsorted

    def __len__(self) -> int:
        return len(self._a)

    def __contains__(self, h: object) -> bool:
        if not isinstance(h, str) or len(h) != 32 or not len(self._a):
            return False
        try:
            b = np.array(bytes.fromhex(h), dtype="S16")
        except ValueError:
            return False
        i = int(np.searchsorted(self._a, b))
        return i < len(self._a) and self._a[i] == b
