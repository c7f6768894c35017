"""The index side of a collection: scan -> extract (incremental) -> analyse -> neighbours.

The plain data it produces (Settings, UpdateReport, Neighbour, Analysis) lives in :mod:`..model`.
Queries are the pure functions of :mod:`..search`; the satellites (:mod:`..learn`, :mod:`..explore`)
get what they need as arguments: an Analysis and the collection's :class:`~..derived.DerivedFiles`.

All long steps are progress generators (see :mod:`.progress`); the CLI and the app
drive the same generators.  Work is committed batch by batch before each yield, so
stopping a generator (Ctrl-C, Cancel, a crash) keeps every finished batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import search
from ..analysis.neighbors import NeighbourIndex
from ..analysis.parts import PARTS, PartModel, blend, fit_parts
from ..analysis.topics import TopicModel, counts_for, fit_topics, lda_transform, topic_counts
from ..derived import DerivedFiles, choose_labels
from ..errors import ArtStyleError, DecodeError, IndexCorrupt
from ..explore import duplicates, stylemap, summaries
from ..ingest.backbones import (
    REGISTRY,
    Backbone,
    default_weights_path,
    file_sha256,
    load_backbone,
)
from ..ingest.extract import GPU_BATCH, Extracted, extract_batch, prepared_reader
from ..ingest.features import FeatureLayout, prepare
from ..ingest.labels import artist_from_parent, read_labels_csv
from ..ingest.remote import RemoteFolder, is_url, reader_for
from ..ingest.scan import iter_image_files
from ..ingest.store import (
    FileRecord,
    IndexStore,
    check_outside,
    index_dir_for,
    load_json,
    load_npz,
    save_json,
    save_npz,
)
from ..learn import adapt, verify
from ..model import Analysis, Neighbour, Settings, UpdateReport
from ..progress import Progress, ProgressGen, run
from . import sampled


#: an incremental analysis places new paintings into the fit until more than this share of the paintings it
#: was fitted on have been added or removed since; then (or when asked: Re-fit, ``artstyle index --refit``)
#: everything is fitted again. Fits on fewer than REFIT_MIN paintings are always redone (they take seconds).
REFIT_SHARE = 0.10
REFIT_MIN = 50
PLACED_NPZ, PLACED_JSON = "placed.npz", "placed.json"


def problems_of(records: list[FileRecord]) -> list[tuple[str, str]]:
    """(relpath, reason) of the unreadable files among ``records`` (what :meth:`Collection.problems` lists)."""
    return [(r.relpath, r.error or "unknown error") for r in records if r.status == "error"]

class Collection:
    """One painting folder and its index (which lives outside the folder)."""

    def __init__(self, root: str | os.PathLike, *, settings: Settings | None = None,
                 index_dir: str | os.PathLike | None = None, labels_csv: str | os.PathLike | None = None,
                 artist_from_folder: bool | None = None, clear_labels: bool = False,
                 readonly: bool = False) -> None:
        """``labels_csv``, ``artist_from_folder``, ``clear_labels``: where labels come from; not given (None),
        what the index remembers (:func:`~..derived.choose_labels`). ``readonly``: a command that only
        reads: the index must exist, and nothing is created or written (derived caches at best)."""
        #: a collection at an fsspec URL (s3://bucket/prefix, ...): listed and read through fsspec; its
        #: ``root`` is then the URL (text), and what reads the images again later needs a local folder
        self.remote = RemoteFolder(str(root)) if is_url(root) else None
        if self.remote is not None:
            self.root = self.remote.url
        else:
            self.root = Path(root).expanduser().resolve()
            if not self.root.is_dir():
                raise ArtStyleError(f"{self.root} is not a folder.")
        self.settings = settings or Settings()
        self.settings.validate()
        self.index_dir = Path(index_dir).expanduser().resolve() if index_dir else index_dir_for(self.root)
        check_outside(self.root, self.index_dir)
        if labels_csv is not None and not clear_labels:  # before anything is created
            choose_labels(None, self.root, labels_csv)
        self.store = IndexStore(self.index_dir, readonly=readonly)
        try:
            if not readonly and self.store.get_meta("root") != str(self.root):
                self.store.set_meta("root", str(self.root))
            #: the public handle to the derived files (folder, write lock, settings, topic names)
            self.files = DerivedFiles(self.store, self.root, lambda: self.settings)
            #: where this run's labels come from (given, else remembered with the index, else labels.csv)
            self.labels_choice = choose_labels(self.files.labels_source(), self.root, labels_csv,
                                               None if artist_from_folder is None else bool(artist_from_folder),
                                               clear_labels)
        except BaseException:
            self.store.close()
            raise
        self.labels_csv = self.labels_choice.csv
        self.artist_from_folder = self.labels_choice.artist_from_folder
        #: notes of the last read of the labels CSV (rows skipped, encoding), for the user
        self.labels_warnings: list[str] = []
        self._backbone: Backbone | None = None
        self.analysis: Analysis | None = None
        self.derived_problem: str | None = None  # why the saved analysis could not be used, if it was damaged
        self.duplicate_skipped: list[tuple[str, str]] = []  # (relpath, reason) of the last find_duplicates
        self.duplicate_decoded = 0  # images the last find_duplicates decoded (the others came from its cache)

    # ------------------------------------------------------------------ helpers
    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def backbone(self) -> Backbone:
        from ..ingest.runtime import use_runtime  # ONNX Runtime or torch, on the CPU or a GPU

        st = self.settings
        key = (st.backbone, st.weights_file, st.runtime, st.device)
        if self._backbone is None or getattr(self, "_backbone_key", None) != key:
            self._backbone = use_runtime(load_backbone(st.backbone, st.weights_file), st.runtime, st.device)
            self._backbone_key = key
        return self._backbone

    @property
    def layout(self) -> FeatureLayout:
        return FeatureLayout.for_backbone(REGISTRY[self.settings.backbone], self.settings.colour_bins)

    def need_local(self, what: str) -> None:
        """ArtStyleError for a step that reads the images again when the collection is at a URL."""
        if self.remote is not None:
            raise ArtStyleError(f"{what} reads the images again, which needs the collection in a local folder; "
                                f"{self.root} is a URL (indexing, neighbours, topics, the map and the exports "
                                "work from the index).")

    def records(self) -> list[FileRecord]:
        return self.store.records()

    def problems(self, records: list[FileRecord] | None = None) -> list[tuple[str, str]]:
        """The files that could not be read (of ``records``, default the index's) and what the last scan could
        not read or left out (unreadable folders, broken links, loops, links outside the collection), by path."""
        found = problems_of(self.store.records() if records is None else records)
        scan = self.files.scan_problems()
        return sorted(found + scan, key=lambda p: p[0]) if scan else found

    def _labels_table(self) -> dict[str, dict[str, str]]:
        """The labels CSV by relpath, read again only when the file changed (size, mtime)."""
        if not self.labels_csv:
            return {}
        path = Path(self.labels_csv)
        try:
            st = path.stat()
        except OSError as e:  # labels are user data: a labels file that cannot be read never wipes them
            raise ArtStyleError(f"Cannot read labels file {path}: {e.strerror or e}. "
                                "Stored labels are left as they are.") from e
        key = (str(path), st.st_size, st.st_mtime_ns)
        cached = self.__dict__.get("_labels_cache")
        if cached is None or cached[0] != key:
            lab = read_labels_csv(path, self.root)
            cached = (key, lab.by_path)
            self._labels_cache = cached
            self.labels_warnings = list(lab.warnings)
        return cached[1]

    def labels_for(self, relpaths: list[str]) -> dict[str, dict[str, str]]:
        table = self._labels_table()
        out = {}
        for p in relpaths:
            lab = dict(table.get(p, {}))
            if self.artist_from_folder and not lab.get("artist"):
                a = artist_from_parent(p)
                if a:
                    lab["artist"] = a
            out[p] = {k: v for k, v in lab.items() if v not in (None, "")}
        return out

    # ------------------------------------------------------------------ update
    def update(self, retry_failed: bool = False, extractor=None) -> ProgressGen[UpdateReport]:
        """Scan the folder and extract features of new/changed files (one transaction per batch).

        ``extractor(collection, todo, known)``: who reads and extracts the files to do (default: this
        process, :meth:`_extract_local`; a Ray cluster: :func:`..cluster.ray_extractor`); an iterable of
        batches of :class:`Extracted`, committed here, one transaction each, as they arrive."""
        t0 = time.monotonic()
        st = self.settings
        self.store.acquire_writer_lock()
        try:
            rep = UpdateReport()
            scan_errors: list[tuple[str, str]] = []
            files = []
            found = (self.remote.scan(on_error=lambda p, r: scan_errors.append((p, r))) if self.remote else
                     iter_image_files(self.root, follow_outside_links=st.follow_links,
                                      on_error=lambda p, r: scan_errors.append((p, r))))
            for f in found:
                files.append(f)
                if len(files) % 1000 == 0:
                    yield Progress("scan", len(files), None, f"found {len(files):,} images")
            rep.scanned = len(files)
            self.files.save_scan_problems(scan_errors)  # for `problems` (they have no record)
            # payload: every image path found, so views can show the collection before extraction
            yield Progress("scan", len(files), len(files), f"found {len(files):,} images",
                           payload=[f.relpath for f in files])

            fs, _ = self.files.featureset()
            known = self.store.known_hashes(fs)
            old = self.store.record_map()
            # sizes of known content: a moved, renamed or re-read file reuses its vector *and* its size
            dims = {r.hash: (r.width, r.height) for r in old.values() if r.hash and r.width is not None}
            labels = self.labels_for([f.relpath for f in files])
            if self.labels_choice.keep_stored:  # no labels source (or its CSV is gone): the stored labels stay
                labels = {p: ({**lab, **old[p].labels} if p in old else lab) for p, lab in labels.items()}
            if self.labels_choice.remember is not None:  # given once: kept until replaced or cleared
                self.files.save_labels_source(self.labels_choice.remember)
                self.labels_choice.remember = None
            current = {f.relpath for f in files}
            gone = [p for p in old if p not in current]
            with self.store.transaction():
                rep.removed = self.store.delete_files(gone) if gone else 0
            todo = []
            relabel: dict[str, dict[str, str]] = {}
            for f in files:
                r = old.get(f.relpath)
                same = r is not None and r.size == f.size and r.mtime_ns == f.mtime_ns
                if same and r.status == "ok" and r.hash in known:
                    rep.unchanged += 1
                    if r.labels != labels[f.relpath]:
                        relabel[f.relpath] = labels[f.relpath]
                elif same and r.status == "error" and not retry_failed:
                    rep.unchanged += 1
                    rep.failed.append((f.relpath, r.error or ""))
                else:
                    todo.append(f)
            if relabel:
                self.store.update_labels(relabel)

            total = len(todo)
            if total:
                yield Progress("load-model", 0, 1, f"loading {st.backbone}")
                scanned = {f.relpath: f for f in todo}
                batches = extractor(self, todo, known) if extractor is not None else self._extract_local(todo, known)
                try:
                    yield Progress("extract", 0, total, f"{total:,} images to read")
                    done = 0
                    for extracted in batches:
                        recs, vecs, new_paths = self._records_of(extracted, scanned, labels, known, rep, dims)
                        with self.store.transaction():
                            self.store.put_vectors(fs, vecs)
                            self.store.upsert_files(recs)
                        known.update(h for h, _ in vecs)
                        done += len(extracted)
                        yield Progress("extract", done, total, f"{done:,}/{total:,} images"
                                       + (f" ({batches.rate})" if getattr(batches, "rate", "") else ""),
                                       payload=new_paths)
                finally:  # stopped early (cancel, an error): the extractor lets go of what it holds (a Ray cluster)
                    getattr(batches, "close", lambda: None)()
            # features of content that left the collection (removed or changed files) are dropped, in
            # every feature set; new files orphan nothing (adding one painting to 100,000 skips this)
            if gone or any(f.relpath in old for f in todo):
                keep = self.store.content_hashes()
                for fid, _key, _cfg in self.store.featuresets():
                    self.store.prune_vectors(fid, keep)
            rep.failed.extend(scan_errors)
            rep.seconds = time.monotonic() - t0
            return rep
        finally:
            self.store.release_writer_lock()

    def _extract_local(self, todo: list, known: set[str]):
        """The local run: decode threads read and prepare up to two batches ahead of the network, which runs
        here (ONNX Runtime or torch, CPU or GPU); an iterator of what each batch gave. The network is loaded
        here, before the first image is read (the "load-model" step)."""
        return self._local_batches(todo, known, self.backbone(), self.layout)

    def _local_batches(self, todo: list, known: set[str], net, layout):
        st = self.settings
        on_gpu = getattr(net, "device", "cpu") not in ("cpu", None)
        # on a GPU the network is no longer the CPU's work: every core decodes, in larger batches
        threads = st.decode_threads or (os.cpu_count() or 2 if on_gpu else max(2, min(8, os.cpu_count() or 2)))
        bs = max(1, st.batch_size, GPU_BATCH if on_gpu else 1)
        batches = [todo[i : i + bs] for i in range(0, len(todo), bs)]
        # a URL collection reads through the RemoteFolder it opened (no second connection)
        read_one = prepared_reader(self.remote.read if self.remote else reader_for(str(self.root)), known, st)

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="artstyle-decode") as pool:
            pending: deque = deque()

            def submit(batch):
                return [pool.submit(read_one, f.relpath) for f in batch]

            it = iter(batches)
            for _ in range(2):  # keep up to two batches decoding ahead of the network
                b = next(it, None)
                if b is not None:
                    pending.append((b, submit(b)))
            while pending:
                batch, futs = pending.popleft()
                nb = next(it, None)
                if nb is not None:
                    pending.append((nb, submit(nb)))
                yield extract_batch([f.relpath for f in batch], [fu.result() for fu in futs], net, layout)

    def _records_of(self, extracted: list[Extracted], scanned: dict, labels, known: set[str], rep: UpdateReport,
                    dims=None):
        """The records and new feature vectors of one extracted batch (content seen before, in the index or
        earlier in the batch, is reused, not stored twice)."""
        recs: list[FileRecord] = []
        vecs: list[tuple[str, bytes]] = []
        seen: set[str] = set()
        for ex in extracted:
            f = scanned[ex.relpath]
            h = ex.hash
            rec = FileRecord(0, f.relpath, f.size, f.mtime_ns, h, "ok", None, labels.get(f.relpath, {}))
            if ex.error is not None:
                rec.status, rec.error = "error", ex.error
                rep.failed.append((f.relpath, ex.error))
            elif ex.blob is None or h in known or h in seen:
                rep.reused += 1
                rec.width, rec.height = ((dims or {}).get(h, (None, None)) if ex.width is None
                                         else (ex.width, ex.height))
            else:
                seen.add(h)
                vecs.append((h, ex.blob))
                rec.width, rec.height = ex.width, ex.height
                rep.extracted += 1
            if dims is not None and h and ex.width is not None:
                dims[h] = (ex.width, ex.height)
            recs.append(rec)
        return recs, vecs, [r.relpath for r in recs if r.status == "ok"]

    # ------------------------------------------------------------------ analysis
    def _fingerprint(self, recs: list[FileRecord]) -> str:
        h = hashlib.sha1()
        h.update(json.dumps(self.settings.analysis_config(), sort_keys=True).encode())
        h.update(self.settings.featureset_key().encode())
        for r in recs:
            h.update(r.relpath.encode("utf-8", "surrogateescape") + b"\0" + (r.hash or "").encode() + b"\n")
        return h.hexdigest()

    def ok_records(self) -> list[FileRecord]:
        fs, _ = self.files.featureset()
        known = self.store.known_hashes(fs)
        return [r for r in self.store.records() if r.status == "ok" and r.hash in known]

    def analyse(self, force: bool = False) -> ProgressGen[Analysis | None]:
        """Fit PCA parts, topics and the neighbour index on the extracted features (or reuse saved ones).

        If :attr:`analysis` is what loading the saved analysis would give, it is returned as it is
        (Analyses are immutable: the app, whose views already show it, then holds one copy of the parts
        and the neighbour index instead of two: 300 MB at 100,000 paintings)."""
        st = self.settings
        recs = self.ok_records()
        if not recs:
            self.analysis = None
            return None
        fp = self._fingerprint(recs)
        if not force and self._current_matches(recs, fp):
            yield Progress("done", 1, 1, "analysis up to date")
            return self.analysis
        if not force:
            loaded = self.load_analysis(recs, fp)
            if loaded is not None:
                yield Progress("done", 1, 1, "loaded saved analysis")
                return loaded  # load_analysis applied settings.space
            placed = yield from self._place(recs, fp)
            if placed is not None:
                self._save_placed(placed)
                self.analysis = placed
                return (yield from self._space_hook(placed))
        fs, key = self.files.featureset()
        if len(recs) > sampled.SAMPLE_ABOVE:  # too many to load at once: fitted on a sample (index/sampled.py)
            return (yield from self._analyse_sampled(recs, fs, key))
        yield Progress("pca", 0, 2, f"loading features of {len(recs):,} paintings")
        blobs = self.store.get_vectors(fs, [r.hash for r in recs])
        bad = {h for h, b in blobs.items() if not self._vector_ok(b)}
        if bad:  # damaged stored vectors: forget them, so the next update extracts those files again
            if not self.store.readonly:
                self.store.delete_vectors(fs, bad)
            recs = [r for r in recs if r.hash not in bad]
            yield Progress("pca", 0, 2, f"{len(bad):,} damaged feature vectors discarded; "
                                        "the next update extracts them again")
            if not recs:
                self.analysis = None
                return None
            fp = self._fingerprint(recs)
        raw = self.layout.unpack_many([blobs[r.hash] for r in recs])
        yield Progress("pca", 1, 2, "reducing with PCA")
        model, parts = fit_parts(raw, deep_components=st.deep_components, gram_components=st.gram_components,
                                 colour_components=st.colour_components, seed=st.seed)
        yield Progress("pca", 2, 2, "PCA done")
        yield Progress("index", 0, 1, "building the neighbour index")
        weights = dict(st.blend)
        an = Analysis(
            relpaths=[r.relpath for r in recs], file_ids=np.array([r.id for r in recs], np.int64),
            hashes=[r.hash or "" for r in recs], labels=[r.labels for r in recs], parts=parts, part_model=model,
            topics=None, index=NeighbourIndex.build(blend(parts, weights), st.metric, seed=st.seed),
            weights=weights, metric=st.metric, fingerprint=fp, settings=replace(st), featureset=key,
        )
        # neighbours are usable now, before topics: views may adopt this partial analysis
        before = self.analysis
        self.analysis = an  # similar() works from here on, before topics are fitted
        try:
            yield Progress("index", 1, 1, "neighbour index ready", payload=an)
            an = replace(an, topics=(yield from self._fit_topics(raw, model, len(recs))))
        except BaseException:  # cancelled (GeneratorExit) or failed: the partial analysis is not a result
            self.analysis = before
            raise
        del raw
        self._save_analysis(an)
        self.analysis = an
        an = yield from self._space_hook(an)  # style adapter: settings.space
        return an

    def _analyse_sampled(self, recs: list[FileRecord], fs: int, key: str) -> ProgressGen[Analysis | None]:
        """More than :data:`.sampled.SAMPLE_ABOVE` paintings: the PCA and the topics fitted on a seeded sample,
        then every painting placed into them chunk by chunk, the neighbour index built as they come."""
        st = self.settings
        fit = yield from sampled.fit_sampled(self.store, fs, self.layout, st, recs, self._fit_topics, self._vector_ok)
        if fit is not None and fit.bad:  # damaged stored vectors: forget them, as the full path does
            if not self.store.readonly:
                self.store.delete_vectors(fs, fit.bad)
            yield Progress("index", 1, 1, f"{len(fit.bad):,} damaged feature vectors discarded; "
                                          "the next update extracts them again")
        if fit is None or not fit.recs:
            self.analysis = None
            return None
        recs = fit.recs
        an = Analysis(
            relpaths=[r.relpath for r in recs], file_ids=np.array([r.id for r in recs], np.int64),
            hashes=[r.hash or "" for r in recs], labels=[r.labels for r in recs], parts=fit.parts,
            part_model=fit.model, topics=fit.topics, index=fit.index, weights=dict(st.blend), metric=st.metric,
            fingerprint=self._fingerprint(recs), settings=replace(st), featureset=key, sample_n=fit.sample_n,
        )
        self._save_analysis(an)
        self.analysis = an
        return (yield from self._space_hook(an))

    def _current_matches(self, recs: list[FileRecord], fp: str) -> bool:
        """Whether :attr:`analysis` is what loading the saved analysis for ``recs`` would give:
        same fingerprint (records, analysis settings), settings, labels and file ids, and the
        derived files still on disk."""
        an = self.analysis
        if an is None or an.fingerprint != fp or an.n != len(recs) or an.settings != self.settings:
            return False
        if an.weights != self.settings.blend or an.metric != self.settings.metric or an.space != self.settings.space:
            return False
        d = self.files.dir
        if not all((d / name).is_file() for name in ("analysis.json", "analysis.npz", "neighbours.hnsw")):
            return False
        for r in recs:  # rows may be in another order than the records (paintings placed since the fit)
            row = an.row_of(r.relpath)
            if row is None or int(an.file_ids[row]) != r.id or an.labels[row] != r.labels:
                return False
        return True

    def _vector_ok(self, blob: bytes) -> bool:
        lay = self.layout
        if len(blob) != 2 * lay.size:  # float16
            return False
        return bool(np.isfinite(np.frombuffer(blob, np.float16)).all())

    def _fit_topics(self, raw, model: PartModel, n: int) -> ProgressGen[TopicModel | None]:
        st = self.settings
        if n < 4:
            return None
        ti = yield from topic_counts(st.topic_input, raw, model, vocab_size=st.vocab_size, seed=st.seed)
        k = st.k if st.k is not None else None
        if k is not None:
            k = min(k, n)
        tm = yield from fit_topics(ti.counts, k=k, k_range=st.k_range, seed=st.seed, kind=st.topic_input)
        return replace(tm, vocab=dict(ti.vocab_arrays))

    def refit_topics(self, k: int | None = None, topic_input: str | None = None) -> ProgressGen[Analysis | None]:
        """Change K or the topic input and refit topics only (no feature extraction). An analysis with
        paintings placed since its fit is fitted again on every painting."""
        self.settings.k = k
        if topic_input:
            self.settings.topic_input = topic_input
        self.settings.validate()
        placed = self.analysis is not None and (self.analysis.added_since or self.analysis.removed_since)
        return (yield from self.analyse(force=bool(placed)))

    def _save_analysis(self, an: Analysis) -> None:
        """Write the derived files (a cache of the analysis) under the writer lock.

        If another process holds the lock it is indexing and saves its own analysis: this one
        stays in memory only. Each file is replaced atomically and carries the fingerprint, so a
        mix of files from two runs (a crash between them) is detected and recomputed.
        """
        self.files.write_if_unlocked(lambda: self._write_analysis(an))

    def _write_analysis(self, an: Analysis) -> None:
        d = self.files.dir
        if d.is_dir():  # temp files of these three, left by a crashed run (only the lock holder writes them)
            for name in ("analysis.npz", "neighbours.hnsw", "analysis.json"):
                for tmp in d.glob(name + ".*.tmp"):
                    try:
                        tmp.unlink()
                    except OSError:
                        pass
        arrays: dict[str, np.ndarray] = {f"part_{p}": v for p, v in an.parts.items()}
        arrays.update(an.part_model.to_arrays())
        arrays["file_ids"] = an.file_ids
        arrays["fingerprint"] = np.array(an.fingerprint)
        if an.topics is not None:
            arrays["mixtures"] = an.topics.mixtures
            arrays["topic_components"] = an.topics.components
            arrays["curve_k"] = np.asarray(an.topics.curve_k, np.int64)
            arrays["curve_perplexity"] = np.asarray(an.topics.curve_perplexity, np.float64)
            arrays.update({f"topic_vocab_{k}": np.asarray(v) for k, v in an.topics.vocab.items()})
        if an.fit_rows is not None:
            arrays["fit_rows"] = an.fit_rows
        if an.index.rows is not None:
            arrays["index_rows"] = an.index.rows
        save_npz(d / "analysis.npz", **arrays)
        for name in (PLACED_NPZ, PLACED_JSON):  # placements of an older fit
            (d / name).unlink(missing_ok=True)
        an.index.save(d / "neighbours.hnsw")
        save_json(d / "analysis.json", {
            "fingerprint": an.fingerprint, "relpaths": an.relpaths, "hashes": an.hashes, "count": an.n,
            "neighbours_sha256": file_sha256(d / "neighbours.hnsw"),
            "weights": an.weights, "metric": an.metric, "settings": an.settings.to_json(),
            "topic_input": an.topics.input_kind if an.topics else None, "k": an.topics.k if an.topics else None,
            "fit_n": an.fit_n, "fit_fingerprint": an.fit_fingerprint, "sample_n": an.sample_n,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })

    def load_analysis(self, recs: list[FileRecord] | None = None, fp: str | None = None) -> Analysis | None:
        """Load the saved analysis if it matches the current records and settings; else None.

        The derived files are a cache: missing, stale, damaged or hostile ones give None (and
        :attr:`derived_problem` says why), so :meth:`analyse` recomputes them.
        """
        self.derived_problem = None
        if recs is None:
            recs = self.ok_records()
        fp = fp or self._fingerprint(recs)
        try:
            an = self._load_analysis(recs, fp)
            if an is not None and self.settings.space != "base":  # style adapter: settings.space
                an = run(self._space_hook(an))
            return an
        except IndexCorrupt as e:
            self.derived_problem = str(e)
            return None
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
            self.derived_problem = (f"The saved analysis in {self.files.dir} is damaged "
                                    f"({type(e).__name__}: {e}); it will be recomputed.")
            return None

    def _load_analysis(self, recs: list[FileRecord], fp: str | None) -> Analysis | None:
        """The saved analysis (the fit, plus the paintings placed since) if its fingerprint is ``fp``;
        ``fp`` None: whatever is saved, for placing the current records into it."""
        d = self.files.dir
        if not (d / "analysis.json").exists():
            return None
        meta = load_json(d / "analysis.json")
        if not isinstance(meta, dict):
            raise IndexCorrupt(f"The index file {d / 'analysis.json'} is damaged (not a JSON object).")
        placed = load_json(d / PLACED_JSON) if (d / PLACED_JSON).is_file() else None
        if not (isinstance(placed, dict) and placed.get("base_fingerprint") == meta.get("fingerprint")):
            placed = None
        if fp is not None and meta.get("fingerprint") != fp:
            if placed is None or placed.get("fingerprint") != fp:
                return None
        elif fp is not None:
            placed = None
        by_path = {r.relpath: r for r in recs}
        an = self._read_saved(d, meta, by_path)
        if placed is not None:
            an = self._apply_placed(an, d, placed, by_path)
        if fp is not None:
            if an.n != len(recs) or any(p not in by_path for p in an.relpaths):
                raise IndexCorrupt(f"The saved analysis in {d} does not match the records (an interrupted save?).")
            self.analysis = an
        return an

    def _read_saved(self, d: Path, meta: dict, by_path: dict[str, FileRecord]) -> Analysis:
        """analysis.npz + neighbours.hnsw as saved (rows in the saved order; labels and ids of the
        current records where they still exist)."""
        fp = meta.get("fingerprint")
        rel, hashes = meta.get("relpaths"), meta.get("hashes")
        if not isinstance(fp, str) or not isinstance(rel, list) or not isinstance(hashes, list) \
                or len(rel) != len(hashes) or not all(isinstance(x, str) for x in rel + hashes):
            raise IndexCorrupt(f"The index file {d / 'analysis.json'} is damaged.")
        # a large (sampled) analysis maps its parts from the file: only the rows used take memory (640 MB
        # of a million paintings' parts stay on disk in the app until the map or a re-rank reads them)
        a = load_npz(d / "analysis.npz", mapped=[f"part_{p}" for p in PARTS] if meta.get("sample_n") else ())
        n = len(rel)
        if ("fingerprint" in a and str(a["fingerprint"]) != fp) or len(a["file_ids"]) != n or any(
                a[f"part_{p}"].ndim != 2 or a[f"part_{p}"].shape[0] != n for p in PARTS):
            raise IndexCorrupt(f"The saved analysis in {d} does not match the records (an interrupted save?).")
        if not all(np.issubdtype(v.dtype, np.number) for k, v in a.items() if k != "fingerprint"):
            raise IndexCorrupt(f"The index file {d / 'analysis.npz'} holds unexpected data.")
        parts = {p: a[f"part_{p}"] for p in PARTS}
        topics = None
        if "mixtures" in a:
            kind = meta.get("topic_input")
            topics = TopicModel(int(a["mixtures"].shape[1]), a["mixtures"], a["topic_components"],
                                [int(x) for x in a["curve_k"]], [float(x) for x in a["curve_perplexity"]],
                                kind if isinstance(kind, str) and kind else self.settings.topic_input,
                                {k[len("topic_vocab_"):]: v for k, v in a.items() if k.startswith("topic_vocab_")})
        st = self.settings
        weights = dict(st.blend)
        hnsw = d / "neighbours.hnsw"
        rows = a.get("index_rows")
        # hnswlib's loader is native code that trusts the file: only a file whose digest was
        # recorded with this analysis is loaded; otherwise the index is rebuilt from the parts.
        verified = hnsw.is_file() and isinstance(meta.get("neighbours_sha256"), str) and \
            meta["neighbours_sha256"] == file_sha256(hnsw)
        if verified and meta.get("weights") == weights and meta.get("metric") == st.metric:
            dim = sum(v.shape[1] for v in parts.values())
            index = NeighbourIndex.load(hnsw, dim, st.metric, n if rows is None else len(rows))
            if rows is not None:
                if rows.ndim != 1 or int(rows.max(initial=-1)) >= n or int((rows >= 0).sum()) != n:
                    raise IndexCorrupt(f"The neighbour index in {d} does not match the analysis.")
                index.rows = rows.astype(np.int64)
        else:
            index = NeighbourIndex.build(blend(parts, weights), st.metric, seed=st.seed)
        recs = [by_path.get(p) for p in rel]
        # the records' own strings, not a second copy of each from the JSON (200 MB at a million paintings)
        rel = [r.relpath if r is not None else p for r, p in zip(recs, rel)]
        hashes = [r.hash if r is not None and r.hash == h else h for r, h in zip(recs, hashes)]
        fit_rows = a.get("fit_rows")
        return Analysis(
            relpaths=rel, file_ids=np.array([r.id if r is not None else -1 for r in recs], np.int64),
            hashes=hashes, labels=[r.labels if r is not None else {} for r in recs], parts=parts,
            part_model=PartModel.from_arrays(a), topics=topics, index=index, weights=weights, metric=st.metric,
            fingerprint=fp, settings=replace(st), featureset=st.featureset_key(),
            fit_rows=None if fit_rows is None else fit_rows.astype(np.int64), fit_n=int(meta.get("fit_n") or 0),
            fit_fingerprint=str(meta.get("fit_fingerprint") or ""), sample_n=int(meta.get("sample_n") or 0),
        )

    def _apply_placed(self, base: Analysis, d: Path, meta: dict, by_path: dict[str, FileRecord]) -> Analysis:
        """``base`` with the placements saved next to it (placed.npz / placed.json)."""
        z = load_npz(d / PLACED_NPZ)
        rel, hashes = meta.get("relpaths"), meta.get("hashes")
        keep = z["keep"].astype(bool)
        m = len(rel) if isinstance(rel, list) else -1
        if str(z.get("fingerprint", "")) != meta.get("fingerprint") or not isinstance(hashes, list) \
                or len(hashes) != m or len(keep) != base.n \
                or any(z[f"part_{p}"].shape != (m, base.parts[p].shape[1]) for p in base.parts):
            raise IndexCorrupt(f"The placed paintings saved in {d} do not match the analysis.")
        return self._combine(base, keep, list(rel), list(hashes), {p: z[f"part_{p}"] for p in base.parts},
                             z.get("mixtures"), by_path, str(meta["fingerprint"]))

    def _combine(self, base: Analysis, keep: np.ndarray, rel: list[str], hashes: list[str],
                 parts_new: dict[str, np.ndarray], mix_new: np.ndarray | None, by_path: dict[str, FileRecord],
                 fp: str) -> Analysis:
        """``base``'s rows where ``keep``, then the new rows: the fitted models stay, the index grows."""
        parts = {p: np.concatenate([base.parts[p][keep], parts_new[p].astype(base.parts[p].dtype)])
                 for p in base.parts}
        topics = base.topics
        if topics is not None:
            topics = replace(topics, mixtures=np.concatenate([topics.mixtures[keep], mix_new.astype(np.float32)]))
        index = base.index.placed(blend(parts_new, base.weights), keep)
        fit_rows = (np.arange(base.n, dtype=np.int64) if base.fit_rows is None else base.fit_rows)[keep]
        relpaths = [p for p, k in zip(base.relpaths, keep) if k] + rel
        recs = [by_path.get(p) for p in relpaths]
        return replace(
            base, relpaths=relpaths, hashes=[h for h, k in zip(base.hashes, keep) if k] + hashes,
            file_ids=np.array([r.id if r is not None else -1 for r in recs], np.int64),
            labels=[r.labels if r is not None else {} for r in recs], parts=parts, topics=topics, index=index,
            fingerprint=fp, fit_rows=np.concatenate([fit_rows, np.full(len(rel), -1, np.int64)]),
            fit_n=base.fitted_on, fit_fingerprint=base.topics_fingerprint, settings=replace(self.settings))

    # ------------------------------------------------------------------ incremental analysis
    def _place(self, recs: list[FileRecord], fp: str) -> ProgressGen[Analysis | None]:
        """The current records placed into the fitted analysis (the one in memory, else the saved one):
        PCA transform, hnswlib add / mark deleted, the topic model's transform. None when a re-fit is due:
        no usable fit, other analysis settings, or more than :data:`REFIT_SHARE` of the paintings it was
        fitted on added or removed since (or a fit on fewer than :data:`REFIT_MIN` paintings)."""
        st = self.settings
        base = self.analysis
        if base is None or base.settings.analysis_config() != st.analysis_config() \
                or base.featureset != st.featureset_key():
            try:
                base = self._load_analysis(recs, None)
            except (IndexCorrupt, KeyError, ValueError, TypeError, IndexError, AttributeError):
                return None
        if base is None or base.featureset != st.featureset_key() \
                or base.settings.analysis_config() != st.analysis_config():
            return None
        base = base.base_space  # placed in the base space; the style adapter is applied afterwards
        if base.topics is not None and not base.topics.vocab:
            return None  # saved before topic vocabularies were kept: fit again
        by_path = {r.relpath: r for r in recs}
        keep = np.array([by_path.get(p) is not None and by_path[p].hash == h
                         for p, h in zip(base.relpaths, base.hashes)], bool)
        have = {p for p, k in zip(base.relpaths, keep) if k}
        new = [r for r in recs if r.relpath not in have]
        fit_rows = np.arange(base.n) if base.fit_rows is None else base.fit_rows
        fitted_on = base.fitted_on
        added = int((fit_rows[keep] < 0).sum()) + len(new)
        removed = fitted_on - int((fit_rows[keep] >= 0).sum())
        if fitted_on < REFIT_MIN or added + removed > REFIT_SHARE * fitted_on:
            return None
        if base.weights != st.blend or base.metric != st.metric:
            base = base.with_blend(st.blend, st.metric, st)
        yield Progress("place", 0, 1, f"placing {len(new):,} new paintings into the analysis of {fitted_on:,}")
        hashes = [r.hash or "" for r in new]
        mix = None
        if new:
            raw = self.files.load_raw(hashes)
            parts_new = base.part_model.transform(raw)
            if base.topics is not None:
                mix = lda_transform(base.topics.components,
                                    counts_for(base.topics.input_kind, raw, base.part_model, base.topics.vocab),
                                    seed=st.seed)
        else:
            parts_new = {p: np.zeros((0, v.shape[1]), v.dtype) for p, v in base.parts.items()}
            if base.topics is not None:
                mix = np.zeros((0, base.topics.k), np.float32)
        an = self._combine(base, keep, [r.relpath for r in new], hashes, parts_new, mix, by_path, fp)
        yield Progress("place", 1, 1, f"{len(new):,} placed; topics fitted on {fitted_on:,} paintings, "
                                      f"{an.added_since:,} added since")
        return an

    def _save_placed(self, an: Analysis) -> None:
        """Save the placements next to the fit they were placed into (a few KB), or, when the saved fit
        is not that one, the whole analysis."""
        def write() -> None:
            d = self.files.dir
            try:
                meta = load_json(d / "analysis.json") if (d / "analysis.json").is_file() else None
            except IndexCorrupt:
                meta = None
            nk = int((an.fit_rows >= 0).sum())
            if not isinstance(meta, dict) or meta.get("fingerprint") != an.fit_fingerprint or meta.get("fit_n") \
                    or meta.get("count") != an.fit_n or not np.all(an.fit_rows[:nk] >= 0):
                self._write_analysis(an)
                return
            keep = np.zeros(an.fit_n, bool)
            keep[an.fit_rows[:nk]] = True
            arrays = {f"part_{p}": v[nk:] for p, v in an.parts.items()}
            arrays.update(keep=keep, fingerprint=np.array(an.fingerprint))
            if an.topics is not None:
                arrays["mixtures"] = an.topics.mixtures[nk:]
            save_npz(d / PLACED_NPZ, **arrays)
            save_json(d / PLACED_JSON, {"base_fingerprint": an.fit_fingerprint, "fingerprint": an.fingerprint,
                                        "relpaths": an.relpaths[nk:], "hashes": an.hashes[nk:],
                                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

        self.files.write_if_unlocked(write)

    def index(self, retry_failed: bool = False) -> ProgressGen[tuple[UpdateReport, Analysis | None]]:
        """Everything: update (incremental extraction) then analysis."""
        rep = yield from self.update(retry_failed=retry_failed)
        an = yield from self.analyse()
        yield Progress("done", 1, 1, rep.summary())
        return rep, an

    # ------------------------------------------------------------------ queries
    def require_analysis(self) -> Analysis:
        """The current analysis (loaded from the index if need be); a plain error if there is none."""
        if self.analysis is None:
            self.analysis = self.load_analysis()
        if self.analysis is None:
            why = f" ({self.derived_problem})" if self.derived_problem else ""
            raise ArtStyleError(f"This collection has no up-to-date index yet{why}. "
                                "Run `artstyle index` on it first.")
        return self.analysis

    def set_blend(self, weights: dict[str, float], metric: str | None = None) -> Analysis:
        """Change blend weights/metric: a new Analysis with its neighbour index rebuilt from the stored
        parts (no extraction); it becomes :attr:`analysis` and is returned."""
        an = self.require_analysis()
        self.settings.blend = {p: float(weights.get(p, 0.0)) for p in PARTS}
        if metric:
            self.settings.metric = metric
        self.settings.validate()
        self.analysis = an.with_blend(self.settings.blend, self.settings.metric, self.settings)
        return self.analysis

    def similar(self, row: int, k: int = 10) -> list[Neighbour]:
        return search.similar(self.require_analysis(), row, k)

    def find(self, path_or_relpath: str) -> int | None:
        an = self.require_analysis()
        p = Path(path_or_relpath)
        if p.is_absolute() or p.exists():
            local = self.remote.local_path() if self.remote is not None else self.root  # file:// URLs have one
            try:
                rel = p.resolve().relative_to(Path(local).resolve()).as_posix() if local else None
            except ValueError:
                return None
            if rel is None:
                return None
        else:
            rel = Path(path_or_relpath).as_posix()
        return an.row_of(rel)

    def embed_file(self, path: str | os.PathLike) -> dict[str, np.ndarray]:
        """Embedding parts of an image outside the index (not added to it)."""
        an = self.require_analysis()
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ArtStyleError(f"Cannot read {path}: {e.strerror or e}") from e
        st = self.settings
        try:
            prep = prepare(data, bins=st.colour_bins, trim_borders=st.trim_borders, max_megapixels=st.max_megapixels)
        except DecodeError as e:
            raise ArtStyleError(f"Cannot read {path}: {e.reason}") from e
        raw = self.layout.raw_of(self.backbone().forward(prep.crop[None]), prep.colour, prep.aspect)
        if an.space == "adapted" and an.adapter is not None:  # style adapter (learn/adapt.py)
            return an.adapter.transform_raw(raw)
        return an.part_model.transform(raw)

    def similar_to_file(self, path: str | os.PathLike, k: int = 10) -> list[Neighbour]:
        an = self.require_analysis()
        return search.similar_to_parts(an, self.embed_file(path), k)

    # ------------------------------------------------------------------ style adapter (learn/adapt.py, learn/verify.py)
    space_problem: str | None = None  # why settings.space = "adapted" could not be shown (no adapter yet)

    def _space_hook(self, an: Analysis | None) -> ProgressGen[Analysis | None]:
        """``an`` in the space chosen by ``settings.space``; without an adapter it stays base."""
        if an is None or an.space == self.settings.space:
            return an
        self.space_problem = None
        try:
            an = yield from adapt.use_space(an, self.files, self.settings.space)
        except ArtStyleError as e:
            self.space_problem = str(e)
        self.analysis = an
        return an

    def adapt(self, label: str, config: Any = None) -> ProgressGen[Any]:
        """Train the style adapter and the same-hand verifier on a label column; saved with the index.
        Returns (StyleAdapter, AdapterReport); :attr:`analysis` then shows ``settings.space``.
        Cancelling between yields writes nothing."""
        an = yield from self.analyse()
        if an is None:
            raise ArtStyleError(f"{self.root} has no indexed paintings yet. Run `artstyle index` first.")
        adapter, rep, an = yield from adapt.adapt_collection(an, self.files, label, config)
        self.analysis = an
        return adapter, rep

    def use_space(self, space: str) -> ProgressGen[Analysis]:
        """Switch neighbours and topics between the "base" and the "adapted" space (no extraction):
        a new Analysis, which becomes :attr:`analysis`."""
        an = self.require_analysis()
        old = self.settings.space
        self.settings.space = space
        try:
            self.settings.validate()
            an = yield from adapt.use_space(an, self.files, space)
        except ArtStyleError:
            self.settings.space = old
            raise
        self.analysis = replace(an, settings=replace(self.settings))
        return self.analysis

    def adapter_info(self) -> dict[str, Any] | None:
        """Provenance and figures of the saved adapter (None: no adapter trained yet)."""
        ad = adapt.load_adapter(self.files)
        return ad.meta if ad is not None else None

    def verifier_info(self) -> dict[str, Any] | None:
        """Provenance and figures of the saved "same hand?" verifier (None: none trained yet)."""
        ver = verify.load_verifier(self.files.dir)
        return ver.meta if ver is not None else None

    def compare(self, a: int, b: int) -> Any:
        """"Same hand?": probability that paintings ``a`` and ``b`` (rows) share the label the
        verifier was trained on, with the per-part contributions (verify.Comparison)."""
        return adapt.compare_rows(self.files, self.require_analysis(), a, b)

    def weights_sha256(self) -> str | None:
        """sha256 of the backbone's weights file (None where it loads torchvision's own cache)."""
        st = self.settings
        try:
            path = st.weights_file or default_weights_path(st.backbone)
            return file_sha256(path) if path else None
        except (ArtStyleError, OSError):
            return None

    def export(self, outdir: str | os.PathLike, *, top_n: int = 10,
               topic_names: dict[int, str] | None = None) -> list[Path]:
        """Write the topic, painting and artist CSVs and the provenance JSON to ``outdir`` (never inside
        the collection); returns the paths written."""
        outdir = Path(outdir)
        check_outside(self.root, outdir, what="export folder")
        an = self.analysis or self.load_analysis()
        if an is None:
            raise ArtStyleError("There is no analysis to export yet: let the indexing finish first.")
        names = self.topic_names(an) if topic_names is None else topic_names
        return summaries.export(an, outdir, backbone_sha256=self.weights_sha256(), top_n=top_n,
                                topic_names=names or None)

    # ------------------------------------------------------------------ explore: map, duplicates, topic search
    def style_map(self, method: str = "auto") -> ProgressGen[np.ndarray]:
        """2-D layout (float32 (n, 2) in [-1, 1], rows of the analysis) of the current search
        embedding: "pca", "tsne" or "auto". Saved with the index; a matching saved layout is loaded
        without recomputation (explore/stylemap.py)."""
        return (yield from stylemap.style_map(self.require_analysis(), self.files, method))

    def saved_style_map(self, method: str = "auto") -> np.ndarray | None:
        """The saved layout of the current embedding, or None (never computes)."""
        return stylemap.saved_style_map(self.require_analysis(), self.files, method)

    def find_duplicates(self, threshold: float = 0.80, max_hamming: int = 10, *,
                        crops: bool = True) -> ProgressGen[list[Any]]:
        """Groups of near-duplicate paintings (list of duplicates.DuplicateGroup, largest first):
        embedding candidates (cosine >= threshold) confirmed by the perceptual hash (whole image, or
        with ``crops`` a crop-aligned hash + pixel correlation). Unreadable candidates are skipped:
        :attr:`duplicate_skipped`. Never writes the collection."""
        self.need_local("Finding near-duplicates")
        stats = duplicates.DuplicateStats()
        try:
            return (yield from duplicates.find_duplicates(self.require_analysis(), self.files, threshold,
                                                          max_hamming, crops=crops, stats=stats))
        finally:
            self.duplicate_skipped, self.duplicate_decoded = stats.skipped, stats.decoded

    def steered_similar(self, row: int, adjust: dict[int, float], k: int = 10, alpha: float = 0.5,
                        metric: str = "hellinger") -> list[Neighbour]:
        """"More like this, but...": neighbours ranked by alpha * topic-space similarity to the
        steered mixture of ``row`` + (1 - alpha) * embedding similarity (search.steered_similar)."""
        return search.steered_similar(self.require_analysis(), row, adjust, k=k, alpha=alpha, metric=metric)

    def topic_names(self, an: Analysis | None = None) -> dict[int, str]:
        """The user's names of the topics of ``an`` (default: the current analysis), {topic (0-based): name}.
        One small SQLite read per call: names set by another process (the CLI beside the app) show up."""
        if an is None:
            try:
                an = self.require_analysis()
            except ArtStyleError:
                return {}
        return search.topic_names(an, self.files.topic_names_raw())

    def set_topic_name(self, topic: int, name: str | None, an: Analysis | None = None) -> None:
        """Name topic ``topic`` (0-based) of the topics of ``an`` (default: the current analysis);
        None or "" clears the name."""
        an = an or self.require_analysis()
        self.files.save_topic_names_raw(search.with_topic_name(an, self.files.topic_names_raw(), topic, name))

    def detail_scores(self, an: Analysis):
        """rows of ``an`` -> how detailed each painting is (summaries.gram_detail of its stored first Gram
        layer), for the automatic topic names; reads only the rows asked for."""
        def scores(rows: np.ndarray) -> np.ndarray:
            raw = self.files.load_raw([an.hashes[int(r)] for r in rows], keys=("gram0",))
            return summaries.gram_detail(raw["gram0"])

        return scores

    def topic_label(self, t: int) -> str:
        """"Topic 3 · Dark portraits" (named) or "Topic 3" for topic t = 2."""
        return search.format_topic_label(t, self.topic_names().get(int(t)))
