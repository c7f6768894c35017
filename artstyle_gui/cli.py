"""`artstyle`: the engine from the command line (no Qt).

Exit codes: 0 success; 1 a clear error (message on stderr); 2 bad usage;
130 interrupted by Ctrl-C (finished batches are kept; run again to resume).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
from pathlib import Path

from . import __version__
from .core.analysis.parts import PARTS
from .core.analysis.topics import TOPIC_INPUTS
from .core.errors import ArtStyleError, IndexCorrupt, IndexMissing
from .core.ingest.backbones import DEFAULT_BACKBONE, IMAGENET_BACKBONE, REGISTRY
from .core.ingest.imageio import DEFAULT_MAX_MEGAPIXELS
from .core.progress import Progress, ProgressGen, stage_label

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of the output went away (`artstyle topics ... | head -1`)


def printable(text: object) -> str:
    """``text`` safe to print on a terminal: control characters (C0 with newline and tab, ESC, DEL, C1),
    other non-printable characters and lone surrogates are shown as escapes (``\\x1b``, ``\\n``, ``\\u202e``);
    a byte of a non-UTF-8 file name (PEP 383 surrogate) as ``\\xNN``. File names and labels are printed
    through it, so a name cannot retitle or garble the terminal. JSON output (--json) stays exact."""
    s = str(text)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch.isprintable():
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # a raw byte of a non-UTF-8 name
            out.append(f"\\x{ord(ch) - 0xdc00:02x}")
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


def _int_in(lo: int, hi: int | None, what: str):
    """An argparse type: a whole number from ``lo`` to ``hi`` (None: no upper bound)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number (got {text!r})") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{what} must be {lo:,} or more (got {v:,})" if hi is None else
                                             f"{what} must be from {lo:,} to {hi:,} (got {v:,})")
        return v
    return parse


def _positive_float(what: str, hi: float | None = None):
    """An argparse type: a finite number above 0 (at most ``hi``)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number (got {text!r})") from None
        if not (math.isfinite(v) and v > 0) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{what} must be a number above 0" + (f" and at most {hi:g}" if hi
                                                                                  else "") + f" (got {text})")
        return v
    return parse


def _parse_blend(text: str) -> dict[str, float]:
    out = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, _, val = item.partition("=")
        key = key.strip().lower().replace("color", "colour")
        if key not in PARTS or not val:
            example = ",".join(f"{p}={w:g}" for p, w in zip(PARTS, (1, 0.5, 0.25, 0.1)))
            raise argparse.ArgumentTypeError(f"blend must look like {example} (parts: {', '.join(PARTS)}; "
                                             f"got {item!r})")
        try:
            w = float(val)
        except ValueError:
            w = float("nan")
        if not (math.isfinite(w) and w >= 0):
            raise argparse.ArgumentTypeError(f"a blend weight must be a finite number of 0 or more (got {item!r})")
        out[key] = w
    if out and not any(w > 0 for w in out.values()) and set(out) >= set(PARTS):
        raise argparse.ArgumentTypeError("at least one blend weight must be above 0")
    return out


def _parse_k(text: str) -> int | None:
    if text.lower() == "auto":
        return None
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("K must be a number or 'auto'") from None
    if not 1 <= k <= 200:
        raise argparse.ArgumentTypeError("K must be between 1 and 200")
    return k


def _parse_adjust(text: str) -> tuple[int, float]:
    """--raise/--lower: "3" (by 0.3) or "3=0.5"; topics are numbered from 1 as shown."""
    t, sep, d = text.partition("=")
    try:
        topic = int(t)
        delta = float(d) if sep else 0.3
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TOPIC or TOPIC=AMOUNT, e.g. 3 or 3=0.3 (got {text!r})") from None
    if topic < 1:
        raise argparse.ArgumentTypeError(f"topics are numbered from 1 (got {topic})")
    if not 0.0 < delta <= 1.0:
        raise argparse.ArgumentTypeError(f"the amount must be in (0, 1] (got {d})")
    return topic, delta


def _parse_name(text: str) -> tuple[int, str]:
    """--name 3="Dark portraits" (or 3= to clear)."""
    t, sep, name = text.partition("=")
    try:
        topic = int(t)
    except ValueError:
        topic = 0
    if not sep or topic < 1:
        raise argparse.ArgumentTypeError(f"expected TOPIC=NAME, e.g. 3=\"Dark portraits\" (got {text!r})")
    return topic, name.strip()


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 (got {text!r})") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 (got {text})")
    return v


def _similarity(text: str) -> float:
    v = _fraction(text)
    if v <= 0:
        raise argparse.ArgumentTypeError("the threshold must be above 0")
    return v


def _hamming_limit(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bits, 0 to 64 (got {text!r})") from None
    if not 0 <= v <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of bits, 0 to 64 (got {v})")
    return v


class UsageError(ArtStyleError):
    """Bad arguments found once the index is open (e.g. a topic number above K): exit 2."""


def _folder(text: str) -> Path | str:
    """A collection folder (a Path), or an fsspec URL kept as text (``Path`` would fold its ``//``)."""
    from .core.ingest.remote import is_url

    return text if is_url(text) else Path(text)


def _common(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    p.add_argument("folder", type=_folder, help="the painting collection (never written to): a folder, or for `index` "
                                                "and the commands that read the index, an fsspec URL (s3://bucket/"
                                                "prefix, ...)")
    g = p.add_argument_group("index and labels")
    g.add_argument("--index-dir", type=Path, help="where the index lives (default: per-user data dir)")
    lab = g.add_mutually_exclusive_group()
    lab.add_argument("--labels", type=Path,
                     help="labels CSV (path, artist, title, year, style, ...); `index` remembers it with the index "
                          "until another is given or --no-labels; default: the remembered one, else labels.csv in "
                          "the folder if present")
    lab.add_argument("--no-labels", action="store_true",
                     help="no labels CSV (`index` clears the stored labels and forgets the remembered CSV)")
    g.add_argument("--artist-from-folder", action=argparse.BooleanOptionalAction, default=None,
                   help="take the artist from the parent folder name (remembered by `index`)")
    g.add_argument("--follow-links", action=argparse.BooleanOptionalAction, default=None,
                   help="follow symbolic links that lead outside the collection folder (default: no; links inside "
                        "it are always followed; remembered)")
    g = p.add_argument_group("features")
    g.add_argument("--backbone", choices=list(REGISTRY), help=f"CNN (default {DEFAULT_BACKBONE}: the art style model, "
                                                                  "offline; effnet-lite0: ImageNet features)")
    g.add_argument("--weights", help="weights file for the backbone (e.g. a ResNet50 state dict), or the name "
                                     "of a fine-tuned backbone (artstyle backbones)")
    if device:  # finetune has its own --device: where it trains
        g.add_argument("--device", dest="net_device", choices=["auto", "cpu", "cuda", "mps"],
                       help="where the network runs (default auto: CUDA, then Apple MPS, else the CPU; "
                            "for this command, not remembered with the collection)")
    g.add_argument("--runtime", choices=["auto", "onnx", "torch"],
                   help="what runs the network on the CPU (default auto: ONNX Runtime when installed, else "
                        "torch; both give the same features; for this command)")
    g.add_argument("--no-trim", action="store_true", help="do not trim uniform borders (letterbox bars)")
    g.add_argument("--max-megapixels", type=_positive_float("--max-megapixels"),
                   help=f"skip images larger than this (default {DEFAULT_MAX_MEGAPIXELS:g})")
    g.add_argument("--batch-size", type=_int_in(1, 4096, "--batch-size"), help="images per batch of the network")
    g = p.add_argument_group("analysis")
    g.add_argument("--blend", type=_parse_blend, help="search blend, e.g. deep=1,texture=0.5,colour=0.25")
    g.add_argument("--metric", choices=["cosine", "euclidean"])
    g.add_argument("--pca", type=_int_in(1, 4096, "--pca"), help="PCA components of the deep part (default 128)")
    g.add_argument("--topic-input", choices=list(TOPIC_INPUTS),
                   help="LDA input: style (soft style codes of the deep feature; the art model's default), bovw "
                        "(visual words + colour; the ImageNet default) or pca")
    g.add_argument("--k", type=_parse_k, default=argparse.SUPPRESS, help="number of topics, or 'auto'")
    g.add_argument("--seed", type=_int_in(0, 2**32 - 1, "--seed"),
                   help="random seed of PCA, topics and the neighbour index (0 to 4294967295)")
    g.add_argument("--space", choices=["base", "adapted"],
                   help="neighbours and topics in the base space or the style adapter's (see `artstyle adapt`)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="artstyle", description="Explore a collection of paintings by visual style.")
    ap.add_argument("--version", action="version", version=f"artstyle {__version__}")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="scan the folder, extract features (incrementally), fit topics")
    _common(p)
    p.add_argument("--retry-failed", action="store_true", help="try unreadable files again")
    p.add_argument("--no-analysis", action="store_true", help="only extract features")
    p.add_argument("--refit", action="store_true",
                   help="fit PCA and topics again on every painting (by default new paintings are placed into the "
                        "existing fit until 10%% of the collection has changed)")
    g = p.add_argument_group("on a Ray cluster (pip install \"artstyle-gui[cluster]\")")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="read and extract on a Ray cluster; this machine writes the index. ADDRESS: the cluster "
                        "(auto, host:6379, ray://host:10001); without one, the cluster of RAY_ADDRESS, else one "
                        "started here with `ray start`, else a local one for this run. Every node must see the "
                        "folder at the same path (or read its URL). Put --ray after the folder (or write "
                        "--ray=ADDRESS)")
    g.add_argument("--ray-workers", type=_int_in(1, 100000, "--ray-workers"), metavar="N",
                   help="workers (one network each; default: one per GPU, else one per node)")
    g.add_argument("--ray-cpus", type=_positive_float("--ray-cpus"), metavar="C",
                   help="CPUs per worker (default: a node's CPUs, or its share per GPU)")
    g.add_argument("--ray-gpus", type=_fraction, metavar="G",
                   help="GPUs per worker (default: 1 where the cluster has GPUs, else 0)")

    p = sub.add_parser("similar", help="nearest neighbours of a painting in the collection or of any image")
    _common(p)
    p.add_argument("query", help="a painting in the collection (path relative to the folder) or any image file")
    p.add_argument("-k", "-n", "--count", dest="count", type=_int_in(1, None, "-k"), default=10,
                   help="number of neighbours")
    p.add_argument("--json", action="store_true", help="print JSON")
    g = p.add_argument_group("more like this, but... (search in topic space)")
    g.add_argument("--raise", dest="raise_", metavar="TOPIC[=AMOUNT]", type=_parse_adjust, action="append",
                   default=[], help="raise a topic of the painting's mixture (amount 0-1, default 0.3); repeatable")
    g.add_argument("--lower", metavar="TOPIC[=AMOUNT]", type=_parse_adjust, action="append", default=[],
                   help="lower a topic of the painting's mixture (default 0.3); repeatable")
    g.add_argument("--alpha", type=_fraction, help="weight of topic-space similarity against the embedding's "
                                                    "(0-1, default 0.5)")
    g.add_argument("--topic-metric", choices=["hellinger", "js"], help="distance between topic mixtures "
                                                                     "(default hellinger)")

    p = sub.add_parser("topics", help="fit or show the style topics, and name them")
    _common(p)
    p.add_argument("--top", type=_int_in(0, None, "--top"), default=5, help="paintings listed per topic")
    p.add_argument("--name", metavar="TOPIC=NAME", type=_parse_name, action="append", default=[],
                   help='name a topic, e.g. --name 3="Dark portraits" (kept with the index; 3= clears); repeatable')
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("map", help="2-D style map of the collection (t-SNE or PCA of the search embedding) as CSV")
    _common(p)
    p.add_argument("--method", choices=["auto", "pca", "tsne"], default="auto",
                   help="layout (default auto: t-SNE unless the collection is tiny or huge)")
    p.add_argument("--out", type=Path, help="write the CSV here (default: standard output)")
    p.add_argument("--label", help="write only this label column (default: every label column)")

    p = sub.add_parser("duplicates", help="groups of near-duplicate paintings (never deletes anything)")
    _common(p)
    p.add_argument("--threshold", type=_similarity, default=0.80,
                   help="embedding cosine similarity of candidate pairs (default 0.80)")
    p.add_argument("--max-hamming", type=_hamming_limit, default=10,
                   help="most differing bits of the perceptual hashes of a duplicate pair (default 10)")
    p.add_argument("--no-crops", action="store_true",
                   help="do not look for crops (only the whole-image hash confirms a pair)")
    p.add_argument("--out", type=Path, help="write the groups as CSV here")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("export", help="write topic, painting and artist summaries as CSV + provenance JSON")
    _common(p)
    p.add_argument("outdir", type=Path, help="output folder (must not be inside the collection)")

    p = sub.add_parser("evaluate", help="precision@K / mAP@K of neighbours and NMI of topics against a label")
    _common(p)
    p.add_argument("--label", required=True, help="label column, e.g. style or artist")
    p.add_argument("--at", type=_int_in(1, None, "--at"), default=10, help="K of precision@K (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("problems", help="list files that could not be read, with reasons")
    _common(p)

    # style adapter and same-hand verifier (core/learn/adapt.py, core/learn/verify.py)
    p = sub.add_parser("adapt", help="learn the style metric and the same-hand verifier from a label column")
    _common(p)
    p.add_argument("--label", required=True, help="label column to learn from: artist, style or any CSV column")
    p.add_argument("--kind", choices=["linear", "mlp"], default="linear", help="projection head (default linear)")
    p.add_argument("--loss", choices=["supcon", "triplet"], default="supcon",
                   help="supervised contrastive (default) or batch-hard triplet")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of every label held out (default 0.2)")
    p.add_argument("--epochs", type=_int_in(1, None, "--epochs"),
                   help="most epochs (default 80; training stops early on held-out P@10)")
    p.add_argument("--max-seconds", type=_positive_float("--max-seconds"),
                   help="time budget of the training (default 100)")
    p.add_argument("--no-local", action="store_true", help="texture head without the local-map statistics")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("finetune", help="fine-tune the backbone's last stages on a label (GPU if present); "
                                        "the result is a selectable backbone")
    _common(p, device=False)
    p.add_argument("--label", required=True, help="label column to learn from: artist, style or any CSV column")
    p.add_argument("--stages", type=_int_in(1, None, "--stages"),
                   help="trained stages: effnet-lite0 last N of 16 blocks (default 5), resnet50 last N of 4 layers")
    p.add_argument("--epochs", type=_int_in(1, None, "--epochs"),
                   help="most epochs (default 12; stops early on held-out P@10)")
    p.add_argument("--train-batch", type=_int_in(1, 4096, "--train-batch"), help="training batch size (default 32)")
    p.add_argument("--lr", type=_positive_float("--lr", 10.0),
                   help="learning rate of the new classifier head (default 1e-3)")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of every label held out (default 0.2)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    p.add_argument("--max-seconds", type=_positive_float("--max-seconds"),
                   help="time budget of the epochs (best epoch kept)")
    p.add_argument("--name", help="name of the fine-tuned backbone (default: backbone-label-folder-date)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("backbones", help="list the backbones: built-in and fine-tuned (use with --weights NAME)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("compare", help="same hand? probability that two paintings share the learned label")
    _common(p)
    p.add_argument("a", help="a painting of the collection (path relative to the folder)")
    p.add_argument("b", help="another painting of the collection")
    p.add_argument("--json", action="store_true", help="print JSON")
    return ap


def _settings(args, index_dir_saved):
    from dataclasses import replace

    from .core.model import Settings

    st = Settings()
    if index_dir_saved is not None:  # a copy: the remembered settings are compared with these
        st = replace(index_dir_saved, blend=dict(index_dir_saved.blend))
    if args.backbone and args.backbone != st.backbone:
        from .core.model import with_backbone

        st = with_backbone(st, args.backbone, st.weights_file)  # its default topic input and blend come along
    if args.weights:
        from .core.learn.finetune import finetuned_info, resolve_weights

        st.weights_file = resolve_weights(args.weights)  # a file, or the name of a fine-tuned backbone
        base = (finetuned_info(st.weights_file) or {}).get("backbone")
        if not args.backbone and base in REGISTRY and base != st.backbone:  # a fine-tune runs on its own base
            from .core.model import with_backbone

            st = with_backbone(st, base, st.weights_file)
    if getattr(args, "follow_links", None) is not None:
        st.follow_links = args.follow_links
    if getattr(args, "net_device", None):
        st.device = args.net_device
    if args.runtime:
        st.runtime = args.runtime
    if args.no_trim:
        st.trim_borders = False
    if args.max_megapixels:
        st.max_megapixels = args.max_megapixels
    if args.batch_size:
        st.batch_size = args.batch_size
    if args.blend:
        st.blend = {p: args.blend.get(p, st.blend.get(p, 0.0)) for p in PARTS}
    if args.metric:
        st.metric = args.metric
    if args.pca:
        st.deep_components = args.pca
    if args.topic_input:
        st.topic_input = args.topic_input
    if hasattr(args, "k"):
        st.k = args.k
    if args.seed is not None:
        st.seed = args.seed
    if getattr(args, "space", None):
        st.space = args.space
    return st


#: the commands that change the index (and remember the settings given); the others only read it, and
#: write nothing (no settings, no labels; a derived cache such as a map layout at best) unless they are
#: given settings that differ from the remembered ones (then those are remembered, as by `index`)
WRITING_COMMANDS = ("index", "adapt", "finetune")


def _writes(args) -> bool:
    return args.command in WRITING_COMMANDS or (args.command == "topics" and bool(args.name))


def _machine_free(st):
    """Settings without where the network runs (this computer's choice, never kept in the index)."""
    from dataclasses import replace

    return replace(st, device="auto", runtime="auto") if st is not None else None


def open_collection(args):
    """The collection of ``args.folder`` with the settings given over the remembered ones. A command that
    only reads opens the index read-only: it must exist (nothing is created) and nothing is written."""
    from .core.derived import read_saved_settings
    from .core.index.collection import Collection
    from .core.ingest.labels import read_labels_csv
    from .core.ingest.store import IndexStore, index_dir_for
    from .core.model import Settings

    idx = args.index_dir or index_dir_for(args.folder)
    saved = None
    if args.command not in ("index", "finetune") and not (Path(idx) / "index.sqlite").is_file():  # nothing created
        if isinstance(args.folder, Path) and not args.folder.is_dir():
            raise ArtStyleError(f"{printable(args.folder)} is not a folder.")
        raise IndexMissing(f"No index of {printable(args.folder)} at {printable(idx)}. Run `artstyle index` first.")
    if (Path(idx) / "index.sqlite").is_file():
        s = IndexStore(Path(idx), readonly=True)
        try:
            saved = read_saved_settings(s)
        except (ArtStyleError, IndexCorrupt) as e:  # unusable: the options given (or defaults) replace them
            print(f"artstyle: warning: ignoring the saved settings of {printable(idx)}: {printable(e)}",
                  file=sys.stderr)
        finally:
            s.close()
    st = _settings(args, saved)
    st.validate()  # every option checked before anything is saved
    if args.labels is not None:  # a labels CSV that cannot be read is an error before anything is written
        read_labels_csv(args.labels, args.folder)
    write = _writes(args) or _machine_free(st) != _machine_free(saved if saved is not None else Settings())
    col = Collection(args.folder, settings=st, index_dir=args.index_dir, labels_csv=args.labels,
                     artist_from_folder=args.artist_from_folder, clear_labels=args.no_labels, readonly=not write)
    if write:
        col.files.save_settings()
    if col.labels_choice.note:
        print(f"artstyle: warning: {printable(col.labels_choice.note)}", file=sys.stderr)
    return col


#: the stages whose progress bar shows a rate and an ETA (images per second)
RATE_STAGES = ("extract", "finetune-read")


class _Bar:
    """tqdm progress bar per stage, with counts, and rate and ETA where they mean something."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.stage = None

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if p.stage != self.stage:
            self.close()
            self.stage = p.stage
            rate = p.stage in RATE_STAGES
            # a rate only where the units are alike and counted from the start (images read): a stage whose
            # first event arrives with its count done (the scan) or whose steps differ shows none
            fmt = None if rate else ("{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
                                     if p.total else "{desc}: {n_fmt} [{elapsed}{postfix}]")
            self.bar = tqdm(total=p.total, desc=stage_label(p.stage), unit="img" if rate else "step",
                            leave=p.stage == "extract", file=sys.stderr, dynamic_ncols=True, bar_format=fmt,
                            initial=p.done)
        if self.bar is not None:
            if p.total is not None and self.bar.total != p.total:
                self.bar.total = p.total
                if self.bar.bar_format and "{bar}" not in self.bar.bar_format:  # the total became known
                    self.bar.bar_format = ("{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                           "[{elapsed}{postfix}]")
            if p.done >= self.bar.n:
                self.bar.update(p.done - self.bar.n)
            else:
                self.bar.n = p.done
            self.bar.set_postfix_str(printable(p.message[:60]), refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def drive(gen: ProgressGen, quiet: bool = False):
    bar = _Bar(quiet)
    try:
        while True:
            try:
                bar(next(gen))
            except StopIteration as stop:
                return stop.value
    finally:
        bar.close()
        gen.close()


def _ensure_analysis(col, quiet, args=None):
    an = col.load_analysis()
    if an is None:
        if not col.ok_records():
            raise ArtStyleError(f"{col.root} has no indexed paintings yet. Run `artstyle index` first.")
        an = drive(col.analyse(), quiet)
    if an is not None and getattr(col, "space_problem", None):  # --space adapted without an adapter
        print(f"artstyle: warning: showing the base space: {printable(col.space_problem)}", file=sys.stderr)
    if an is not None and args is not None and _labels_given(args) and args.command != "index":
        an = _with_given_labels(col, an)
    return an


def _labels_given(args) -> bool:
    return args.labels is not None or args.no_labels or args.artist_from_folder is not None


def _with_given_labels(col, an):
    """The analysis with the labels given on the command line (for this command: `index` stores them)."""
    from dataclasses import replace

    table = col.labels_for(an.relpaths)
    keep = col.labels_choice.keep_stored  # the remembered CSV is gone: the stored labels (+ the folder's artist)
    labels = [{**table[p], **an.labels[i]} if keep else table[p] for i, p in enumerate(an.relpaths)]
    _report_labels(col)
    if labels == an.labels:
        return an
    base = an.base
    if base is not None:
        rows = {p: i for i, p in enumerate(an.relpaths)}
        base = replace(base, labels=[labels[rows[p]] if p in rows else base.labels[j]
                                     for j, p in enumerate(base.relpaths)])
    an = replace(an, labels=labels, base=base)
    col.analysis = an  # what the command goes on with (export, map)
    return an


def _report_labels(col) -> None:
    """Notes of the last read of the labels CSV (rows skipped: how many, the first reasons), on stderr once."""
    from .core.ingest.labels import warnings_summary

    notes, col.labels_warnings = col.labels_warnings, []
    for line in warnings_summary(notes, col.labels_csv):
        print(f"artstyle: warning: {printable(line)}", file=sys.stderr)


def cmd_index(args) -> int:
    cluster = _cluster(args)  # without Ray, --ray says so before anything is created
    with open_collection(args) as col:
        if col.settings.backbone == IMAGENET_BACKBONE and not col.settings.weights_file and not args.backbone:
            print(f"artstyle: note: this collection uses the older ImageNet features ({IMAGENET_BACKBONE}); "
                  f"'{_cmd(args, 'index', f' --backbone {DEFAULT_BACKBONE}')}' re-indexes it with the art "
                  "style model (the ImageNet features are kept).", file=sys.stderr)
        rep = drive(col.update(retry_failed=args.retry_failed, extractor=cluster), args.quiet)
        _report_labels(col)
        print(rep.summary())
        for path, reason in rep.failed[:20]:
            print(f"  skipped {printable(path)}: {printable(reason)}", file=sys.stderr)
        if len(rep.failed) > 20:
            print(f"  ... and {len(rep.failed) - 20} more ({_cmd(args, 'problems')})", file=sys.stderr)
        if not args.no_analysis:
            an = drive(col.analyse(force=args.refit), args.quiet)
            if an is None:
                print("No readable paintings: nothing to analyse.")
            else:
                k = an.topics.k if an.topics else 0
                print(f"{an.n:,} paintings indexed; {k} style topics; index at {printable(col.index_dir)}")
                if an.added_since or an.removed_since:
                    print(_fit_note(an, args))
    return EXIT_OK


def _cluster(args):
    """The Ray extractor that ``--ray`` asks for (None: this process extracts)."""
    if args.ray is None:
        if args.ray_workers or args.ray_cpus or args.ray_gpus is not None:
            raise UsageError("--ray-workers, --ray-cpus and --ray-gpus go with --ray.")
        return None
    from .core.index.cluster import ray_extractor

    def told(plan) -> None:
        if not args.quiet:
            print(f"artstyle: extracting on the Ray cluster: {plan.describe()}", file=sys.stderr)

    return ray_extractor(args.ray or None, actors=args.ray_workers, cpus_per_actor=args.ray_cpus,
                         gpus_per_actor=args.ray_gpus, on_plan=told)


def _json(obj, **kwargs) -> str:
    """JSON that strict parsers accept whatever the file names (non-UTF-8 bytes escaped, as in the CSVs)."""
    from .core.explore.summaries import json_safe

    return json.dumps(json_safe(obj), **kwargs)


def _fit_note(an, args) -> str:
    """"Topics fitted on N paintings, M added since" (and how to re-fit); a fit on a sample says so."""
    from .core.explore.summaries import fit_summary

    if not (an.added_since or an.removed_since):  # a large collection fitted on a sample, nothing placed since
        return f"{fit_summary(an)} (the others are placed into that fit)."
    return f"{fit_summary(an)} (placed into that fit; '{_cmd(args, 'index', ' --refit')}' fits them again)."


def _steering(args) -> bool:
    return bool(args.raise_ or args.lower or args.alpha is not None or args.topic_metric)


def cmd_similar(args) -> int:
    with open_collection(args) as col:
        an = _ensure_analysis(col, args.quiet, args)
        row = col.find(args.query)
        if _steering(args):
            return _similar_steered(args, col, an, row)
        if row is not None:
            res = col.similar(row, args.count)
            title = f"Nearest to {an.relpaths[row]}"
        elif Path(args.query).is_file():
            res = drive(_wrap(lambda: col.similar_to_file(args.query, args.count)), args.quiet)
            title = f"Nearest to external image {args.query}"
        else:
            raise ArtStyleError(f"{printable(args.query)} is neither a painting of the collection nor an image file.")
        if args.json:
            print(_json([{"path": n.relpath, "score": round(n.score, 5),
                               "shares": {k: round(v, 4) for k, v in n.shares.items()}} for n in res], indent=1))
            return EXIT_OK
        if an.space == "adapted":  # style adapter (core/learn/adapt.py)
            title += " (adapted space)"
        print(printable(title))
        widths = {p: max(5, len(p)) for p in PARTS}
        print(f"{'#':>3}  {'score':>6}  " + " ".join(f"{p:>{widths[p]}}" for p in PARTS) + "  path")
        for i, n in enumerate(res, 1):
            shares = " ".join(f"{n.shares.get(p, 0.0):{widths[p]}.0%}" for p in PARTS)
            print(f"{i:>3}  {n.score:6.3f}  {shares}  {printable(n.relpath)}")
    return EXIT_OK


def _similar_steered(args, col, an, row) -> int:
    """`similar --raise/--lower/--alpha/--topic-metric`: the topic-space query (core/search.py)."""
    if row is None:
        raise ArtStyleError(f"{printable(args.query)} is not an indexed painting of {col.root}: a topic-space query "
                            "starts from a painting of the collection.")
    if an.topics is None:
        raise ArtStyleError("This collection has no style topics (too few paintings).")
    k = an.topics.k
    adjust: dict[int, float] = {}
    for sign, items in ((1.0, args.raise_), (-1.0, args.lower)):
        for t, d in items:
            if t > k:
                raise UsageError(f"no topic {t}: the topics are 1 to {k}")
            adjust[t - 1] = max(-1.0, min(1.0, adjust.get(t - 1, 0.0) + sign * d))
    alpha = 0.5 if args.alpha is None else args.alpha
    metric = args.topic_metric or "hellinger"
    res = col.steered_similar(row, adjust, k=args.count, alpha=alpha, metric=metric)
    mix = an.topics.mixtures
    names = col.topic_names()
    if args.json:
        print(_json({"query": an.relpaths[row], "adjust": {str(t + 1): round(d, 4) for t, d in adjust.items()},
                          "alpha": alpha, "topic_metric": metric,
                          "neighbours": [{"path": n.relpath, "score": round(n.score, 5),
                                          "embedding_similarity": round(sum(n.parts.values()), 5),
                                          "dominant_topic": int(mix[n.row].argmax()) + 1,
                                          "dominant_topic_name": names.get(int(mix[n.row].argmax()), ""),
                                          "mixture": [round(float(v), 4) for v in mix[n.row]],
                                          "shares": {p: round(v, 4) for p, v in n.shares.items()}}
                                         for n in res]}, indent=1))
        return EXIT_OK
    how = ", ".join(f"{'raise' if d > 0 else 'lower'} {col.topic_label(t)} ({d:+.2f})"
                    for t, d in sorted(adjust.items())) or "no topic changed"
    print(f"More like {printable(an.relpaths[row])}, but: {printable(how)}  (alpha {alpha:g}, {metric})")
    shown = sorted(adjust) or [int(mix[row].argmax())]
    cols = " ".join(f"{'T' + str(t + 1):>5}" for t in shown)
    print(f"{'#':>3}  {'score':>6}  {'embed':>6}  {cols}  path")
    q = " ".join(f"{mix[row, t]:5.2f}" for t in shown)
    print(f"{'q':>3}  {'':>6}  {'':>6}  {q}  {printable(an.relpaths[row])}")
    for i, n in enumerate(res, 1):
        m = " ".join(f"{mix[n.row, t]:5.2f}" for t in shown)
        print(f"{i:>3}  {n.score:6.3f}  {sum(n.parts.values()):6.3f}  {m}  {printable(n.relpath)}")
    return EXIT_OK


def _wrap(fn):
    yield Progress("load-model", 0, 1, "embedding the query image")
    return fn()


def cmd_topics(args) -> int:
    from .core.explore.summaries import auto_topic_names, topic_summaries
    from .core.search import format_topic_label

    with open_collection(args) as col:
        an = _ensure_analysis(col, args.quiet, args)
        if an.topics is None:
            if args.name:
                raise ArtStyleError("This collection has no style topics to name (too few paintings).")
            print("Too few paintings to fit topics.")
            return EXIT_OK
        for t, _ in args.name:
            if t > an.topics.k:
                raise UsageError(f"no topic {t}: the topics are 1 to {an.topics.k}")
        for t, name in args.name:
            col.set_topic_name(t - 1, name or None)
        user = col.topic_names(an)
        auto = auto_topic_names(an, detail=col.detail_scores(an))  # suggestions for the topics not named
        sums = topic_summaries(an, args.top, names=user)
        if args.json:  # "name": the user's name or "Topic N"; "suggested_name": the automatic one
            # fitted_on: the paintings the topics were fitted on (a sample of sampled_from, in a large collection)
            print(_json({"k": an.topics.k, "fitted_on": an.models_fitted_on,
                         "sampled_from": an.fitted_on if an.sample_n else None, "added_since": an.added_since,
                              "removed_since": an.removed_since, "curve": {"k": an.topics.curve_k,
                              "perplexity": an.topics.curve_perplexity},
                              "topics": [{**s.__dict__, "suggested_name": auto.get(s.topic, "")}
                                         for s in sums]}, indent=1))
            return EXIT_OK
        mode = "fixed" if col.settings.k else "auto: held-out perplexity elbow"
        print(f"{an.topics.k} topics ({mode}; input {an.topics.input_kind}) over {an.n:,} paintings")
        if an.added_since or an.removed_since or an.sample_n:
            print(_fit_note(an, args))
        if an.topics.curve_k:
            print("perplexity: " + ", ".join(f"K={k}:{p:.0f}" for k, p in zip(an.topics.curve_k,
                                                                            an.topics.curve_perplexity)))
        for s in sums:
            arts = ", ".join(f"{a} ({c})" for a, c in s.top_artists) or "-"
            label = format_topic_label(s.topic, user.get(s.topic) or auto.get(s.topic))
            print(f"\n{printable(label)}: {s.size} paintings ({s.share:.0%}), "
                  f"mean p={s.mean_probability:.2f}; artists: {printable(arts)}")
            for p, v in s.top_paintings:
                print(f"    {v:.2f}  {printable(p)}")
    return EXIT_OK


def cmd_export(args) -> int:
    from .core.ingest.store import check_outside

    with open_collection(args) as col:
        check_outside(col.root, args.outdir, what="export folder")
        if args.outdir.exists() and not args.outdir.is_dir():
            raise ArtStyleError(f"{printable(args.outdir)} is a file: export writes a folder of files (topics.csv, "
                                "paintings.csv, artists.csv, provenance.json). Give a folder (new or existing).")
        from .core.explore.summaries import names_with_auto

        an = _ensure_analysis(col, args.quiet, args)
        for p in col.export(args.outdir, topic_names=names_with_auto(an, col.topic_names(an), col.detail_scores(an))):
            print(printable(p))
    return EXIT_OK


def cmd_evaluate(args) -> int:
    from .core.analysis.evaluate import evaluate_parts, nmi

    with open_collection(args) as col:
        an = _ensure_analysis(col, args.quiet, args)
        labels = an.label_column(args.label)
        if not any(labels):
            raise ArtStyleError(f"No painting has a {printable(args.label)!r} label. Pass --labels CSV or "
                                "--artist-from-folder.")
        scores = evaluate_parts(an.parts, an.weights, labels, args.at)
        res = {"n": sum(1 for x in labels if x), "label": args.label, "k": args.at,
               "retrieval": [s.__dict__ for s in scores], "space": an.space}
        if an.space == "adapted":  # style adapter: the labels it learned from are scored in-sample
            lab = (an.adapter.meta.get("label") if an.adapter is not None else None) or "its label"
            print(f"artstyle: note: adapted space learned from '{printable(lab)}'; figures on the paintings it "
                  "trained on "
                  "are optimistic (held-out figures: `artstyle adapt` output, docs/quality.md)", file=sys.stderr)
        if an.topics is not None:
            res["topics_nmi"] = nmi(list(an.dominant_topics()), labels)
            res["topics_k"] = an.topics.k
            res["topic_input"] = an.topics.input_kind
        if args.json:
            print(_json(res, indent=1))
            return EXIT_OK
        print(f"{res['n']:,} labelled paintings, label '{printable(args.label)}', "
              f"{len(set(x for x in labels if x))} classes")
        print(f"{'':28} {'P@' + str(args.at):>7} {'mAP@' + str(args.at):>8}")
        for s in scores:
            print(f"{s.name:28} {s.precision_at_k:7.3f} {s.map_at_k:8.3f}")
        if "topics_nmi" in res:
            print(f"NMI(dominant topic, {printable(args.label)}) = {res['topics_nmi']:.3f}  "
                  f"(K={res['topics_k']}, input {res['topic_input']})")
    return EXIT_OK


def cmd_problems(args) -> int:
    with open_collection(args) as col:
        probs = col.problems()
        for p, r in probs:
            print(f"{printable(p)}\t{printable(r)}")
        if not probs:
            print("No problems: every file was read.")
    return EXIT_OK


# ------------------------------------------------------------------ style adapter, same hand? (issue 6)
def cmd_adapt(args) -> int:
    from .core.learn.adapt import AdapterConfig
    from .core.learn.verify import load_verifier

    with open_collection(args) as col:
        an = _ensure_analysis(col, args.quiet, args)
        if not any(an.label_column(args.label)):
            hint = " Pass --artist-from-folder to take it from the folder names." if args.label == "artist" else ""
            raise ArtStyleError(f"No painting has a {printable(args.label)!r} label.{hint} Labels come from labels.csv "
                                "in the folder or --labels CSV.")
        cfg = AdapterConfig(label=args.label, kind=args.kind, loss=args.loss, holdout=args.holdout,
                            use_local=not args.no_local, seed=col.settings.seed)
        if args.epochs:
            cfg.epochs = args.epochs
        if args.max_seconds:
            cfg.max_seconds = args.max_seconds
        adapter, rep = drive(col.adapt(args.label, cfg), args.quiet)
        ver = load_verifier(col.files.dir)
        vf = (ver.meta.get("figures") or {}) if ver else {}
        if args.json:
            print(_json({"adapter": {k: v for k, v in adapter.meta.items() if k != "figures"},
                              "figures": {k: v for k, v in rep.__dict__.items() if k != "history"},
                              "history": rep.history,
                              "verifier": ver.meta if ver else None, "index_dir": str(col.index_dir)}, indent=1))
            return EXIT_OK
        k = rep.k
        print(f"Style adapter learned from '{printable(args.label)}': {rep.n_labelled:,} labelled paintings, "
              f"{rep.classes} labels "
              f"({rep.n_train:,} for training, {rep.n_heldout:,} held out)")
        print(f"{'precision@' + str(k):28} {'base':>6} {'adapted':>8}")
        print(f"{'  held-out paintings':28} {rep.base_heldout_p10:6.3f} {rep.heldout_p10:8.3f}")
        print(f"{'  held-out vs all labelled':28} {rep.base_heldout_vs_all_p10:6.3f} {rep.heldout_vs_all_p10:8.3f}")
        print(f"{'  training paintings':28} {'':>6} {rep.train_p10:8.3f}")
        print(f"best epoch {rep.best_epoch + 1} of {rep.epochs_run} ({rep.stopped}), {rep.seconds:.0f} s")
        if ver:
            auc = vf.get("heldout_pair_auc", float("nan"))
            print(f"Same-hand verifier: pairs of held-out paintings AUC {auc:.3f}, "
                  f"F1 {vf.get('heldout_pair_f1', float('nan')):.3f} at threshold {ver.threshold:.2f}")
        print(f"Saved with the index in {printable(col.files.dir)}. Use it with --space adapted "
              f"(e.g. {_cmd(args, 'similar', ' PAINTING --space adapted')}) or artstyle compare.")
    return EXIT_OK


def cmd_finetune(args) -> int:
    from .core.learn.finetune import FinetuneConfig, finetune

    with open_collection(args) as col:
        col.need_local("Fine-tuning")
        st = col.settings
        cfg = FinetuneConfig(label=args.label, backbone=st.backbone, base_weights=st.weights_file,
                             holdout=args.holdout, device=args.device, max_seconds=args.max_seconds,
                             trim_borders=st.trim_borders, seed=st.seed, name=args.name)
        for opt, attr in (("stages", "stages"), ("epochs", "epochs"), ("train_batch", "batch_size"), ("lr", "lr")):
            if getattr(args, opt):
                setattr(cfg, attr, getattr(args, opt))
        rep = drive(finetune(col, cfg), args.quiet)
    if args.json:
        print(_json(dict(rep.__dict__), indent=1, default=str))
        return EXIT_OK
    print(f"Fine-tuned {rep.backbone} on '{printable(rep.label)}': {len(rep.classes)} labels, "
          f"{rep.n_train:,} paintings for "
          f"training, {rep.n_heldout:,} held out" + (f", {rep.skipped} unreadable skipped" if rep.skipped else ""))
    print(f"  held-out precision@{rep.k} of the pooled features  {rep.base_heldout_p10:.3f} -> {rep.heldout_p10:.3f}")
    print(f"  held-out accuracy  {rep.heldout_acc:.3f} (nearest class mean before: {rep.base_heldout_acc:.3f}), "
          f"training {rep.train_acc:.3f}")
    print(f"  best epoch {rep.best_epoch + 1} of {rep.epochs_run} ({rep.stopped}), {rep.seconds:.0f} s on {rep.device}")
    if not rep.improved:
        print("  note: it did not beat the starting weights on the held-out paintings; more labelled paintings "
              "or more epochs may help.")
    print(f"Saved as '{printable(rep.name)}' ({printable(rep.weights_path)}). Index with it (a separate feature set, "
          f"the ImageNet one is kept): "
          f"{_cmd(args, 'index', ' --weights ' + shlex.quote(printable(rep.name)), features=False)}")
    return EXIT_OK


def cmd_backbones(args) -> int:
    from .core.learn.finetune import finetuned_dir, list_finetuned

    tuned = list_finetuned()
    if args.json:
        print(_json({"builtin": [dict(i.__dict__) for i in REGISTRY.values()], "finetuned": tuned},
                         indent=1, default=str))
        return EXIT_OK
    print("Built in (--backbone):")
    for info in REGISTRY.values():
        print(f"  {info.name:17} {info.description}{'  [default]' if info.name == DEFAULT_BACKBONE else ''}")
    print(f"Fine-tuned (--weights NAME; in {printable(finetuned_dir())}):")
    if not tuned:
        print("  none yet: artstyle finetune FOLDER --label style")
    for m in tuned:
        f = m.get("figures") or {}
        print(f"  {printable(m['name'])}  {printable(m.get('backbone'))} on "
              f"'{printable((m.get('config') or {}).get('label'))}', "
              f"{len(f.get('classes') or [])} labels, held-out P@{f.get('k', 10)} "
              f"{f.get('base_heldout_p10', float('nan')):.3f} -> {f.get('heldout_p10', float('nan')):.3f}, "
              f"{str(m.get('created', ''))[:10]}")
    return EXIT_OK


def cmd_compare(args) -> int:
    with open_collection(args) as col:
        an = _ensure_analysis(col, args.quiet, args)
        rows = []
        for q in (args.a, args.b):
            r = col.find(q)
            if r is None:
                raise ArtStyleError(f"{printable(q)} is not an indexed painting of {col.root}.")
            rows.append(r)
        c = col.compare(*rows)
        lab = (col.adapter_info() or {}).get("label", "label")
        if args.json:
            print(_json({"a": an.relpaths[rows[0]], "b": an.relpaths[rows[1]], "label": lab,
                              "probability": round(c.probability, 5), "same": bool(c.same),
                              "threshold": round(c.threshold, 5), "space": c.space,
                              "base_logit": round(c.base_logit, 5),
                              "contributions": {k: round(v, 5) for k, v in c.contributions.items()},
                              "cosine": {k: round(v, 5) for k, v in c.cosine.items()}}, indent=1))
            return EXIT_OK
        print(f"Same {printable(lab)}? {printable(an.relpaths[rows[0]])}  vs  {printable(an.relpaths[rows[1]])}")
        verdict = "same" if c.same else "different"
        print(f"probability {c.probability:.3f} -> {verdict} (threshold {c.threshold:.2f}, {c.space} space)")
        print(f"contributions in log-odds (an average pair: {c.base_logit:+.2f}):")
        for p in PARTS:
            print(f"  {p:8} {c.contributions[p]:+6.2f}   (cosine {c.cosine[p]:+.2f})")
    return EXIT_OK


# ------------------------------------------------------------------ explore: style map, near-duplicates
def cmd_map(args) -> int:
    from .core.explore.stylemap import map_csv_bytes, resolve_method, write_map_csv
    from .core.ingest.store import check_outside

    with open_collection(args) as col:
        if args.out is not None:
            check_outside(col.root, args.out, what="map CSV")
        an = _ensure_analysis(col, args.quiet, args)
        xy = drive(col.style_map(args.method), args.quiet)
        from .core.explore.summaries import names_with_auto

        names = names_with_auto(an, col.topic_names(an), col.detail_scores(an))  # the user's names, else automatic ones
        columns = [args.label] if args.label else None
        method = resolve_method(args.method, an.n)
        if args.out is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(map_csv_bytes(an, xy, names, columns=columns))
            sys.stdout.flush()
        else:
            write_map_csv(args.out, col.root, an, xy, names, columns=columns)
            print(f"Map of {an.n:,} paintings ({'t-SNE' if method == 'tsne' else 'PCA'}) written to "
                  f"{printable(args.out)}")
    return EXIT_OK


def cmd_duplicates(args) -> int:
    from .core.explore.duplicates import export_duplicates_csv

    with open_collection(args) as col:
        if args.out is not None:
            from .core.ingest.store import check_outside

            check_outside(col.root, args.out, what="duplicates CSV")
        an = _ensure_analysis(col, args.quiet, args)
        groups = drive(col.find_duplicates(args.threshold, args.max_hamming, crops=not args.no_crops), args.quiet)
        for path, reason in col.duplicate_skipped:
            print(f"  skipped {printable(path)}: {printable(reason)}", file=sys.stderr)
        if args.out is not None:
            export_duplicates_csv(groups, args.out, col.root)
        if args.json:
            print(_json([{"paths": g.relpaths, "similarity": round(g.similarity, 5),
                               "max_hamming": g.max_hamming, "crops": g.crops} for g in groups], indent=1))
            return EXIT_OK
        how = "whole image or crop-aligned" if not args.no_crops else "whole image"
        print(f"{len(groups)} group{'s' if len(groups) != 1 else ''} of near-duplicates among {an.n:,} paintings "
              f"(embedding similarity >= "
              f"{args.threshold:g}, perceptual hash within {args.max_hamming} bits, {how})")
        for i, g in enumerate(groups, 1):
            print(f"\nGroup {i}: {g.size} paintings, similarity >= {g.similarity:.3f}, hash distance <= "
                  f"{g.max_hamming}")
            print(f"    {'sim':>6} {'bits':>4}")
            for rel, sim, ham, crop in zip(g.relpaths, g.similarities, g.hammings, g.crops):
                print(f"    {sim:6.3f} {ham:4d}  {printable(rel)}{'  (crop)' if crop else ''}")
        if args.out is not None:
            print(f"\nWritten to {printable(args.out)}")
    return EXIT_OK


COMMANDS = {"index": cmd_index, "similar": cmd_similar, "topics": cmd_topics, "export": cmd_export,
            "evaluate": cmd_evaluate, "problems": cmd_problems,
            "adapt": cmd_adapt, "compare": cmd_compare, "finetune": cmd_finetune, "backbones": cmd_backbones, "map": cmd_map, "duplicates": cmd_duplicates}


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # non-UTF-8 file names must not crash printing
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    try:
        args = build_parser().parse_args(argv)
        try:
            code = COMMANDS[args.command](args)
        except UsageError as e:
            print(f"artstyle {args.command}: error: {printable(_hint(e, args))}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("\nInterrupted. Finished batches are saved; run the same command again to resume.",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        except ArtStyleError as e:
            print(f"artstyle: {printable(_hint(e, args))}", file=sys.stderr)
            return EXIT_ERROR
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except BrokenPipeError:  # `artstyle topics ... | head -1`: the reader has what it wanted
        _silence_broken_pipe()
        return EXIT_BROKEN_PIPE


def _silence_broken_pipe() -> None:
    """The recipe of the Python docs (signal module, "Note on SIGPIPE"): the rest of the output goes to
    devnull, so the interpreter's last flush at exit does not complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
            pass
    os.close(devnull)


_HINT = re.compile(r"`artstyle (index|adapt)((?: [^`]*)?)`")


def _hint(e: BaseException, args) -> str:
    """The error's message with its `artstyle index` / `artstyle adapt` hint made pasteable: the folder and
    the options given that pick the index and its data (--index-dir, --labels, --backbone, ...)."""
    msg = str(e)
    if not hasattr(args, "folder"):
        return msg

    def full(m: re.Match) -> str:
        rest = m.group(2)
        resolved = args.folder.expanduser().resolve() if isinstance(args.folder, Path) else args.folder
        for folder in ("FOLDER", str(args.folder), str(resolved)):
            if rest == " " + folder or rest.startswith(" " + folder + " "):
                rest = rest[len(folder) + 1:]
                break
        return f"`{_cmd(args, m.group(1), rest)}`"

    return _HINT.sub(full, msg)


def _cmd(args, command: str, rest: str = "", *, features: bool = True) -> str:
    """`artstyle COMMAND FOLDER` with the options given that pick this index and its data, ready to paste:
    --index-dir always, the labels options for `index` and `adapt`, --backbone/--weights (``features``)."""
    def q(v) -> str:
        return shlex.quote(printable(v))

    parts = ["artstyle", command, q(args.folder)]
    if getattr(args, "index_dir", None):
        parts += ["--index-dir", q(args.index_dir)]
    if command in ("index", "adapt"):
        if getattr(args, "labels", None) is not None:
            parts += ["--labels", q(args.labels)]
        elif getattr(args, "no_labels", False):
            parts.append("--no-labels")
        afs = getattr(args, "artist_from_folder", None)
        if afs is not None:
            parts.append("--artist-from-folder" if afs else "--no-artist-from-folder")
    if features and command != "problems":
        if getattr(args, "backbone", None) and "--backbone" not in rest:
            parts += ["--backbone", args.backbone]
        if getattr(args, "weights", None) and "--weights" not in rest:
            parts += ["--weights", q(args.weights)]
    return " ".join(parts) + rest


if __name__ == "__main__":
    sys.exit(main())
