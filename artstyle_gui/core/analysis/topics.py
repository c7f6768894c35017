"""The style topics: what LDA is fed, and the fit (K by the perplexity elbow).

Topics (scikit-learn's LatentDirichletAllocation needs non-negative counts):

``style`` soft style codes (the default with the art style model): the deep part is quantised into
          style prototypes by k-means and each painting's soft assignment to them becomes its
          pseudo-counts, so topics group paintings by the art model's sense of style.

``bovw``  bag of visual words: every cell of a mid-level conv feature map (7x7 per
          painting) is PCA-reduced and quantised by MiniBatchKMeans into a visual
          vocabulary; each painting is the count vector of its words plus its colour
          words (the colour histogram coarsened to 4x4x4 bins, scaled to counts).
``pca``   the research line's variant: the deep PCA scores shifted and scaled to
          non-negative pseudo-counts.

K is given or chosen by the elbow of held-out perplexity over K = 5..20.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..progress import Progress, ProgressGen
from .parts import PartModel, Projection, l2n, ssqrt

TOPIC_INPUTS = ("style", "bovw", "pca")
#: what the app and the CLI call each topic input
TOPIC_INPUT_LABELS = {"style": "Style codes (art model)", "bovw": "Visual words (local features + colour)",
                      "pca": "PCA scores of deep features"}


@dataclass
class TopicInput:
    kind: str
    counts: np.ndarray  # (N, V) non-negative
    vocab_arrays: dict[str, np.ndarray] = field(default_factory=dict)


def bovw_counts(local: np.ndarray, colour: np.ndarray, *, vocab_size: int = 256, pca_dims: int = 32,
                colour_weight: float = 0.5, seed: int = 0) -> ProgressGen[TopicInput]:
    """Bag of visual words from local descriptors (N, cells, C) float16 + colour words."""
    from sklearn.cluster import MiniBatchKMeans

    n, cells, c = local.shape
    rng = np.random.default_rng(seed)
    yield Progress("vocab", 0, 3, "sampling local descriptors")
    flat_idx = rng.choice(n * cells, size=min(n * cells, 60_000), replace=False)
    sample = l2n(ssqrt(local.reshape(n * cells, c)[np.sort(flat_idx)].astype(np.float32)))
    proj = Projection.fit(sample, pca_dims, seed)
    z = proj(sample)
    v = int(min(vocab_size, max(2, len(z) // 20)))
    yield Progress("vocab", 1, 3, f"clustering {len(z):,} descriptors into {v} visual words")
    km = MiniBatchKMeans(n_clusters=v, random_state=seed, batch_size=4096, n_init=3, max_iter=100)
    km.fit(z)
    yield Progress("vocab", 2, 3, "counting words per painting")
    counts = np.zeros((n, v), np.float32)
    step = 2048
    for s in range(0, n, step):
        blk = local[s : s + step].astype(np.float32).reshape(-1, c)
        words = km.predict(proj(l2n(ssqrt(blk)))).reshape(-1, cells)
        for r, row in enumerate(words):
            counts[s + r] = np.bincount(row, minlength=v)
    if colour_weight > 0:
        counts = np.concatenate([counts, coarse_colour(colour) * cells * colour_weight], axis=1)
    yield Progress("vocab", 3, 3, "visual vocabulary ready")
    return TopicInput("bovw", counts, {"bovw_mean": proj.mean, "bovw_comp": proj.components,
                                       "bovw_centers": km.cluster_centers_.astype(np.float32),
                                       "bovw_colour_weight": np.array(colour_weight, np.float64)})


def coarse_colour(hist: np.ndarray) -> np.ndarray:
    """Merge 2x2x2 blocks of an n^3 colour histogram (n even): 8^3 = 512 bins -> 64 colour words.

    512 sparse colour words made LDA collapse onto a few topics on small collections (48 sample
    paintings: topic sizes 34/11/1/1/1); 64 words keep topics balanced and gave the highest NMI
    with style on wikiart7-dev (docs/topics.md)."""
    n = round(hist.shape[1] ** (1 / 3))
    if n**3 != hist.shape[1] or n % 2:
        return hist
    h = n // 2
    return hist.reshape(len(hist), h, 2, h, 2, h, 2).sum((2, 4, 6)).reshape(len(hist), h**3)


def pca_counts(deep_scores: np.ndarray, scale: float = 10.0) -> TopicInput:
    """The research line's input: PCA scores min-max shifted/scaled to non-negative pseudo-counts."""
    lo, hi = deep_scores.min(0), deep_scores.max(0)
    x = (deep_scores - lo) / np.maximum(hi - lo, 1e-9) * scale
    return TopicInput("pca", x.astype(np.float32), {"pca_lo": lo, "pca_hi": hi, "pca_scale": np.array(scale)})


def _shape_fit(x: np.ndarray, log_aspect: np.ndarray | None) -> dict[str, np.ndarray] | None:
    """Least squares of ``x`` on a cubic of the standardised log aspect ratio (None: nothing to remove)."""
    if log_aspect is None or len(x) < 8:
        return None
    a = np.nan_to_num(np.asarray(log_aspect, np.float64).reshape(-1))
    sd = float(a.std())
    if sd < 1e-6:
        return None
    mu = float(a.mean())
    a = (a - mu) / sd
    design = np.column_stack([np.ones_like(a), a, a**2, a**3])
    beta, *_ = np.linalg.lstsq(design, x.astype(np.float64), rcond=None)
    return {"mu": np.array(mu), "sd": np.array(sd), "beta": beta[1:]}


def _shape_remove(x: np.ndarray, log_aspect: np.ndarray | None, fit: dict[str, np.ndarray] | None) -> np.ndarray:
    if fit is None or log_aspect is None:
        return l2n(x.astype(np.float32))
    a = (np.nan_to_num(np.asarray(log_aspect, np.float64).reshape(-1)) - float(fit["mu"])) / float(fit["sd"])
    return l2n((x - np.column_stack([a, a**2, a**3]) @ fit["beta"]).astype(np.float32))


def without_shape(x: np.ndarray, log_aspect: np.ndarray | None) -> np.ndarray:
    """``x`` with what a smooth (cubic) function of the picture's log aspect ratio explains removed
    (least squares over the collection), L2-normalised. A tall portrait and a wide landscape differ in
    content that an art model sees; this keeps that correlation from becoming a topic."""
    return _shape_remove(x, log_aspect, _shape_fit(x, log_aspect))


def style_counts(deep: np.ndarray, *, shape: np.ndarray | None = None, words: int = 64, temperature: float = 0.15,
                 tokens: float = 200.0, seed: int = 0) -> ProgressGen[TopicInput]:
    """Soft style codes: the deep part of the search embedding (L2-normalised PCA scores of the art
    model's pooled feature), with the part explained by the picture's log aspect ratio (``shape``,
    stored with the features) removed, quantised into ``words`` style prototypes by k-means; each
    painting is its soft assignment to the prototypes (softmax of cosine / ``temperature``) scaled to
    ``tokens`` pseudo-counts. LDA then groups prototypes that co-occur into topics. It sees only the
    pooled feature of the trimmed picture, never the bars; the shape is regressed out."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n = len(deep)
    v = int(max(2, min(words, max(8, n // 8), n - 1)))  # small collections: ~8 paintings per prototype
    yield Progress("vocab", 0, 2, f"finding {v} style prototypes among {n:,} paintings")
    shape_fit = _shape_fit(deep, shape)
    x = _shape_remove(deep, shape, shape_fit)
    if n <= 20_000:
        km = KMeans(n_clusters=v, n_init=2, random_state=seed).fit(x)
    else:
        km = MiniBatchKMeans(n_clusters=v, random_state=seed, batch_size=4096, n_init=3, max_iter=100).fit(x)
    centres = l2n(km.cluster_centers_.astype(np.float32))
    yield Progress("vocab", 1, 2, "soft style codes per painting")
    counts = np.empty((n, v), np.float32)
    for s in range(0, n, 8192):
        z = x[s : s + 8192] @ centres.T / temperature
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        counts[s : s + 8192] = p / p.sum(1, keepdims=True) * tokens
    yield Progress("vocab", 2, 2, "style codes ready")
    vocab = {"style_centres": centres, "style_params": np.array([temperature, tokens], np.float64)}
    if shape_fit is not None:
        vocab.update({f"style_shape_{k}": v for k, v in shape_fit.items()})
    return TopicInput("style", counts, vocab)


def topic_counts(kind: str, raw: dict[str, np.ndarray], model: "PartModel", *, vocab_size: int = 256,
                 seed: int = 0) -> ProgressGen[TopicInput]:
    """The LDA input ``kind`` (:data:`TOPIC_INPUTS`) of stored features ``raw`` under the fitted ``model``:
    the one place that decides what each topic input is (the engine and the benchmarks call it)."""
    if kind == "bovw":
        return (yield from bovw_counts(raw["local"], raw["colour"], vocab_size=vocab_size, seed=seed))
    if kind == "style":  # the search embedding's deep part, the picture's shape regressed out
        return (yield from style_counts(model.fitted["deep"](raw), shape=raw.get("shape"), seed=seed))
    return pca_counts(model.fitted["deep"].projection(l2n(raw["deep"])))


def counts_for(kind: str, raw: dict[str, np.ndarray], model: "PartModel", vocab: dict[str, np.ndarray]) -> np.ndarray:
    """The LDA input of new paintings (``raw``) with the vocabulary fitted on the collection (``vocab``, a
    TopicModel's): the same counts the fit gave the paintings it saw. KeyError if ``vocab`` lacks it."""
    if kind == "bovw":
        local = np.asarray(raw["local"], np.float32)
        n, cells, c = local.shape
        proj = Projection(vocab["bovw_mean"], vocab["bovw_comp"])
        centres = vocab["bovw_centers"].astype(np.float32)
        z = proj(l2n(ssqrt(local.reshape(-1, c))))
        d = (z * z).sum(1, keepdims=True) - 2 * z @ centres.T + (centres * centres).sum(1)[None, :]
        words = d.argmin(1).reshape(n, cells)
        counts = np.stack([np.bincount(row, minlength=len(centres)) for row in words]).astype(np.float32)
        w = float(vocab["bovw_colour_weight"])
        if w > 0:
            counts = np.concatenate([counts, coarse_colour(raw["colour"]) * cells * w], axis=1)
        return counts
    if kind == "style":
        fit = ({k: vocab[f"style_shape_{k}"] for k in ("mu", "sd", "beta")} if "style_shape_beta" in vocab else None)
        x = _shape_remove(model.fitted["deep"](raw), raw.get("shape"), fit)
        temperature, tokens = (float(v) for v in vocab["style_params"])
        z = x @ vocab["style_centres"].T / temperature
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(1, keepdims=True) * tokens).astype(np.float32)
    scores = model.fitted["deep"].projection(l2n(raw["deep"]))
    lo, hi = vocab["pca_lo"], vocab["pca_hi"]
    return ((scores - lo) / np.maximum(hi - lo, 1e-9) * float(vocab["pca_scale"])).astype(np.float32)


def lda_transform(components: np.ndarray, counts: np.ndarray, seed: int = 0, *, max_iter: int = 100,
                  tol: float = 1e-3) -> np.ndarray:
    """Topic mixtures (rows summing to 1) of ``counts`` under the fitted topic-word ``components``: the
    variational E-step of scikit-learn's LatentDirichletAllocation.transform (the same updates, start,
    prior 1/K and stopping rule), from the saved model, in numpy (no scikit-learn import on the path
    that places one new painting). ``seed`` is unused: the E-step starts from ones, not at random."""
    from scipy.special import psi

    comps = np.asarray(components, np.float64)
    k = comps.shape[0]
    exp_tw = np.exp(psi(comps) - psi(comps.sum(1))[:, None])  # (K, V)
    x = np.asarray(counts, np.float64)
    eps = np.finfo(float).eps
    gamma = np.ones((len(x), k))
    exp_dt = np.exp(psi(gamma) - psi(gamma.sum(1))[:, None])
    active = np.arange(len(x))
    for _ in range(max_iter):
        if not len(active):
            break
        last = gamma[active]
        norm_phi = exp_dt[active] @ exp_tw + eps
        g = exp_dt[active] * ((x[active] / norm_phi) @ exp_tw.T) + 1.0 / k
        gamma[active] = g
        exp_dt[active] = np.exp(psi(g) - psi(g.sum(1))[:, None])
        active = active[np.abs(last - g).mean(1) >= tol]
    mix = gamma.astype(np.float32)
    return mix / np.maximum(mix.sum(1, keepdims=True), 1e-12)


def _lda(k: int, n: int, seed: int):
    from sklearn.decomposition import LatentDirichletAllocation

    # batch variational Bayes for small sets; online (mini-batch) beyond, which reached the same NMI
    # on wikiart7-dev in a third of the time (docs/topics.md)
    small = n <= 1000
    return LatentDirichletAllocation(
        n_components=k, learning_method="batch" if small else "online", batch_size=512,
        max_iter=30 if small else 10, random_state=seed, n_jobs=1, evaluate_every=-1,
    )


def knee(ks: list[int], values: list[float]) -> int:
    """Elbow of a perplexity curve: the K farthest below the chord of the normalised curve
    (Kneedle). A curve that only rises (more topics never help on held-out data) gives its minimum."""
    x = np.asarray(ks, float)
    y = np.asarray(values, float)
    if len(x) < 3:
        return int(x[int(np.argmin(y))])
    if y[-1] >= y[0]:
        return int(x[int(np.argmin(y))])
    xn = (x - x[0]) / (x[-1] - x[0])
    yn = (y - y.min()) / max(1e-12, y.max() - y.min())
    chord = yn[0] + (yn[-1] - yn[0]) * xn
    return int(x[int(np.argmax(chord - yn))])


@dataclass
class TopicModel:
    k: int
    mixtures: np.ndarray  # (N, K) rows sum to 1
    components: np.ndarray  # (K, V) topic-word pseudo-counts
    curve_k: list[int]
    curve_perplexity: list[float]
    input_kind: str
    #: the topic input's vocabulary (counts_for): places new paintings without a re-fit ({}: not saved)
    vocab: dict[str, np.ndarray] = field(default_factory=dict)


#: Where :func:`fit_topics` fits its models: 0 = in the calling thread (the CLI, tests); N > 0 = in
#: up to N worker processes at low CPU priority (the app: scikit-learn's LDA runs a pure-Python loop
#: per painting, and in a thread it took the GIL from the GUI thread for 20-110 ms at a time during
#: the K sweep; docs/benchmarks.md).  Set with :func:`set_topic_processes`.
_topic_processes = 0
PROCESS_MIN_PAINTINGS = 500  # smaller fits take well under a second: not worth starting processes


def set_topic_processes(n: int) -> None:
    """Fit topic models in up to ``n`` worker processes (0: in the calling thread)."""
    global _topic_processes
    _topic_processes = max(0, int(n))


def _as_array(x: np.ndarray | str) -> np.ndarray:
    """An array, or the .npy file a worker process was handed instead (see :class:`_Runner`)."""
    return np.load(x) if isinstance(x, str) else x


def _perplexity_for(k: int, train: np.ndarray | str, test: np.ndarray | str, seed: int) -> float:
    """One point of the K sweep: fit on ``train``, held-out perplexity on ``test``."""
    train, test = _as_array(train), _as_array(test)
    return float(_lda(k, len(train), seed).fit(train).perplexity(test))


def _final_fit(k: int, counts: np.ndarray | str, seed: int, out_dir: str | None = None):
    """The K-topic model on every painting: (mixtures, rows summing to 1; topic-word components), or
    in a worker process the two .npy files in ``out_dir`` that hold them."""
    counts = _as_array(counts)
    lda = _lda(k, counts.shape[0], seed).fit(counts)
    mix = lda.transform(counts).astype(np.float32)
    mix /= np.maximum(mix.sum(1, keepdims=True), 1e-12)
    comps = lda.components_.astype(np.float32)
    if out_dir is None:
        return mix, comps
    import os

    paths = os.path.join(out_dir, "mixtures.npy"), os.path.join(out_dir, "components.npy")
    np.save(paths[0], mix)
    np.save(paths[1], comps)
    return paths


def _child_init() -> None:  # pragma: no cover - runs in the worker process
    """Topic worker process: below the app's priority, one BLAS/OpenMP thread per process."""
    import os

    try:
        os.nice(10)
    except (AttributeError, OSError):
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # noqa: BLE001 - only a tuning
        pass


class _Runner:
    """Runs the fits in the calling thread, or in a pool of spawned worker processes (closed, and
    its processes ended, with the runner: a cancelled sweep leaves nothing running).

    The arrays go to the workers as .npy files in a private temporary folder, and the final model
    comes back the same way, so every message through the pool's pipes is a few hundred bytes.
    With the arrays in the messages, ``Pool.terminate()`` on Cancel hung for good: the pool's task
    thread was blocked writing a 2 MB task into a full pipe that no (terminated) worker would read,
    and terminate waits for that thread."""

    def __init__(self, processes: int):
        self.pool = None
        self.tmp: str | None = None
        if processes > 0:
            import multiprocessing
            import tempfile

            try:
                self.tmp = tempfile.mkdtemp(prefix="artstyle-topics-")
                self.pool = multiprocessing.get_context("spawn").Pool(processes, initializer=_child_init)
            except (OSError, ValueError, ImportError):
                self.pool = None  # no processes here (a sandbox, a frozen app without freeze_support)
                self._remove_tmp()

    def share(self, name: str, arr: np.ndarray) -> np.ndarray | str:
        """``arr`` as the workers get it: itself in-thread, else a .npy file in the private folder."""
        if self.pool is None:
            return arr
        import os

        path = os.path.join(self.tmp, f"{name}.npy")
        np.save(path, arr)
        return path

    @property
    def out_dir(self) -> str | None:
        return None if self.pool is None else self.tmp

    def submit(self, fn, *args):
        if self.pool is None:
            return lambda: fn(*args)  # lazy: runs when its result is asked for
        res = self.pool.apply_async(fn, args)
        return res.get

    def _remove_tmp(self) -> None:
        if self.tmp is not None:
            import shutil

            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None
        self._remove_tmp()


def _live_topics(mix: np.ndarray) -> int:
    """Topics that are used: the dominant topic of some painting, or 1 % of the collection's mass."""
    if mix.size == 0:
        return mix.shape[1] if mix.ndim == 2 else 0
    dominant = np.bincount(mix.argmax(1), minlength=mix.shape[1]) > 0
    return int((dominant | (mix.sum(0) >= 0.01 * len(mix))).sum())


def fit_topics(counts: np.ndarray, *, k: int | None = None, k_range: tuple[int, int] = (5, 20),
               seed: int = 0, kind: str = "bovw", processes: int | None = None) -> ProgressGen[TopicModel]:
    """LDA topics of ``counts``: K given, or picked by the perplexity elbow over ``k_range`` (fitted on
    a sample of at most 2,000 paintings, a fifth held out). ``processes``: see
    :func:`set_topic_processes` (None: the value set there). The result does not depend on where
    the models are fitted."""
    n = counts.shape[0]
    curve_k: list[int] = []
    curve_p: list[float] = []
    procs = _topic_processes if processes is None else processes
    runner = _Runner(procs if n >= PROCESS_MIN_PAINTINGS else 0)
    try:
        if k is None:
            lo, hi = k_range
            hi = max(lo, min(hi, max(2, n // 2)))
            ks = list(range(lo, hi + 1))
            rng = np.random.default_rng(seed)
            idx = rng.permutation(n)[: min(n, 2000)]  # the sweep runs on a sample
            n_test = max(1, len(idx) // 5)
            test, train = counts[idx[:n_test]], counts[idx[n_test:]] if len(idx) > n_test else counts[idx]
            train_in, test_in = runner.share("train", train), runner.share("test", test)
            pending = [runner.submit(_perplexity_for, kk, train_in, test_in, seed) for kk in ks]
            for i, (kk, result) in enumerate(zip(ks, pending)):
                yield Progress("k-select", i, len(ks), f"perplexity for K={kk}")
                curve_k.append(kk)
                curve_p.append(result())
            k = knee(curve_k, curve_p)
            yield Progress("k-select", len(ks), len(ks), f"chose K={k} (perplexity elbow)")
        auto = bool(curve_k)
        k = int(max(1, k))
        shared = runner.share("counts", counts)
        final = runner.submit(_final_fit, k, shared, seed, runner.out_dir)
        yield Progress("topics", 0, 1, f"fitting {k} topics on {n:,} paintings")
        mix, components = (_as_array(a) for a in final())
        live = _live_topics(mix)
        floor = max(2, k_range[0])
        while auto and live < k and k > floor:  # an automatic K that leaves topics empty: fit the topics used
            live = max(live, floor)  # (never below the range the user gave)
            yield Progress("topics", 0, 1, f"K={k} left {k - live} topic(s) empty: fitting {live} topics")
            k = live
            mix, components = (_as_array(a) for a in runner.submit(_final_fit, k, shared, seed, runner.out_dir)())
            live = _live_topics(mix)
        yield Progress("topics", 1, 1, f"{k} topics fitted")
    finally:
        runner.close()
    return TopicModel(k, mix, components, curve_k, curve_p, kind)
