"""Style adapter, adapted space and the same-hand verifier (core/learn/adapt.py, core/learn/verify.py, CLI)."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from artstyle_gui.cli import main
from artstyle_gui.core.learn.adapt import ADAPTER_JSON, ADAPTER_NPZ, AdapterConfig, StyleAdapter, precision_at, train_adapter
from artstyle_gui.core.analysis.parts import PARTS, ColourPart, DeepPart, PartModel, Projection, TexturePart, blend
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.errors import ArtStyleError
from artstyle_gui.core.progress import collect, run
from artstyle_gui.core.learn.verify import PairVerifier, evaluate_unseen_labels, label_groups, train_verifier


def _copy_index(indexed, tmp_path_factory, name: str, **settings) -> Collection:
    """A private copy of the session's synthetic index (no re-extraction), so these tests never
    change the shared one."""
    col, _, _, _ = indexed
    dst = tmp_path_factory.mktemp(name) / "idx"
    shutil.copytree(col.index_dir, dst, ignore=shutil.ignore_patterns("lock"))
    return Collection(col.root, settings=Settings(k=4, **settings), index_dir=dst, labels_csv=col.labels_csv)


@pytest.fixture(scope="module")
def adapted(indexed, tmp_path_factory):
    col = _copy_index(indexed, tmp_path_factory, "adapted")
    run(col.analyse())
    base = {p: v.copy() for p, v in col.analysis.parts.items()}
    events, (adapter, rep) = collect(col.adapt("style", AdapterConfig(label="style", epochs=30)))
    yield col, adapter, rep, events, base
    col.close()


# ------------------------------------------------------------------ the learning itself (no images)
def _hidden_signal(n_per: int = 60, classes: int = 4, seed: int = 0):
    """Parts whose cosine is dominated by label-free noise; the label lives in a weak direction."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per)
    parts = {}
    for p, d in (("deep", 32), ("texture", 24), ("colour", 16)):
        centres = rng.normal(0, 1, (classes, d)) * 0.35
        x = rng.normal(0, 1, (len(y), d)) + centres[y]
        parts[p] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    eye = lambda d: Projection(np.zeros(d, np.float32), np.eye(d, dtype=np.float32))  # noqa: E731
    model = PartModel({"deep": DeepPart(eye(32)), "texture": TexturePart([eye(24)]), "colour": ColourPart(eye(16))})
    return parts, model, [f"c{v}" for v in y]


def test_adapter_improves_heldout_retrieval_on_a_weak_label_signal():
    parts, model, labels = _hidden_signal()
    w = {"deep": 1.0, "texture": 0.5, "colour": 0.25}
    events, (ad, rep) = collect(train_adapter(parts, None, model, labels, w,
                                              AdapterConfig(epochs=40, use_local=False, dim=16)))
    assert [e.stage for e in events].count("adapt") >= rep.epochs_run
    assert rep.n_heldout > 0 and rep.k == 10
    assert rep.heldout_p10 >= rep.base_heldout_p10 + 0.1, rep.summary()
    assert rep.train_p10 >= rep.heldout_p10 - 0.05
    # the adapter applied outside training (numpy only) reproduces the reported held-out figure
    y = np.array(labels)
    emb = blend(ad.apply(ad.inputs_from_parts(parts, None)), w)
    lab_rows = np.arange(len(y))
    assert precision_at(emb, y, lab_rows, lab_rows) > precision_at(blend(parts, w), y, lab_rows, lab_rows)


def test_adapter_refuses_a_single_label():
    parts, model, labels = _hidden_signal()
    with pytest.raises(ArtStyleError, match="two"):
        run(train_adapter(parts, None, model, ["same"] * len(labels), {"deep": 1.0}, AdapterConfig()))


# ------------------------------------------------------------------ on the synthetic collection
def test_adapter_keeps_heldout_retrieval_on_synthetic_styles(adapted):
    col, adapter, rep, events, _ = adapted
    assert rep.classes == 4 and rep.n_labelled == 32 and rep.n_heldout >= 4
    assert rep.heldout_p10 >= rep.base_heldout_p10 - 0.05 and rep.heldout_p10 >= 0.9, rep.summary()
    stages = [e.stage for e in events]
    assert "adapt" in stages and "verify" in stages
    assert all(e.total is None or e.done <= e.total for e in events)


def test_adapter_is_saved_without_pickle_and_with_provenance(adapted):
    col, adapter, rep, _, _ = adapted
    d = col.files.dir
    for name in (ADAPTER_NPZ, "verifier.npz", "adapted.npz", "adapted_topics.npz"):
        with zipfile.ZipFile(d / name) as z:  # every member a plain .npy array, no object dtype
            assert all(n.endswith(".npy") for n in z.namelist())
        with np.load(d / name, allow_pickle=False) as a:
            assert all(a[k].dtype != object for k in a.files)
    meta = json.loads((d / ADAPTER_JSON).read_text())
    for key in ("label", "created", "figures", "featureset", "config", "classes", "analysis_fingerprint", "id"):
        assert key in meta
    assert meta["label"] == "style" and meta["figures"]["heldout_p10"] == pytest.approx(rep.heldout_p10)
    again = StyleAdapter.load(d)
    assert again is not None and again.id == adapter.id
    for k, v in adapter.arrays.items():
        np.testing.assert_array_equal(again.arrays[k], v)
    ver = PairVerifier.load(d)
    assert ver is not None and ver.meta["adapter_id"] == adapter.id and ver.space == "adapted"


def test_adapted_space_for_neighbours_and_topics_base_stays_available(adapted, tmp_path):
    col, adapter, _, _, base = adapted
    an = run(col.use_space("adapted"))
    assert an.space == "adapted" and col.settings.space == "adapted"
    assert an.topics is not None and an.topics.input_kind == "adapted" and an.topics.k == 4
    for p in PARTS:
        np.testing.assert_allclose(np.linalg.norm(an.parts[p], axis=1), 1.0, atol=1e-4)
    by = {p: p.split("/")[0] for p in an.relpaths}
    nb = col.similar(0, k=5)
    assert sum(by[n.relpath] == by[an.relpaths[0]] for n in nb) >= 4
    assert all(abs(sum(n.shares.values()) - 1) < 1e-5 for n in nb)
    from synth import make_painting

    q = tmp_path / "q.png"
    make_painting("stripes", seed=4242).save(q)
    assert sum(n.relpath.startswith("stripes/") for n in col.similar_to_file(q, k=5)) >= 4
    an = run(col.use_space("base"))
    assert an.space == "base" and an.topics.input_kind == Settings().topic_input
    for p in PARTS:
        np.testing.assert_array_equal(an.parts[p], base[p])


def test_settings_space_adapted_opens_in_the_adapted_space(adapted):
    col, adapter, _, _, _ = adapted
    other = Collection(col.root, settings=Settings(k=4, space="adapted"), index_dir=col.index_dir,
                       labels_csv=col.labels_csv)
    try:
        an = other.load_analysis()
        assert an is not None and an.space == "adapted" and an.adapter.id == adapter.id
    finally:
        other.close()


def test_adapted_space_without_adapter_stays_base(indexed, tmp_path_factory):
    col = _copy_index(indexed, tmp_path_factory, "noadapter", space="adapted")
    try:
        an = col.load_analysis()
        assert an is not None and an.space == "base" and "adapt" in (col.space_problem or "")
        with pytest.raises(ArtStyleError, match="artstyle adapt"):
            run(col.use_space("adapted"))
        with pytest.raises(ArtStyleError, match="artstyle adapt"):
            col.compare(0, 1)
    finally:
        col.close()


def test_cancel_between_epochs_leaves_the_base_space_and_old_adapter(indexed, tmp_path_factory):
    col = _copy_index(indexed, tmp_path_factory, "cancel")
    try:
        an = run(col.analyse())
        base = {p: v.copy() for p, v in an.parts.items()}
        before = [n.relpath for n in col.similar(2, k=6)]
        d = col.files.dir
        gen = col.adapt("style", AdapterConfig(label="style", epochs=50, patience=50))
        for ev in gen:
            if ev.stage == "adapt" and ev.done >= 2:
                break
        gen.close()  # what the app's Cancel does: the generator is not resumed
        assert not (d / ADAPTER_NPZ).exists() and not (d / ADAPTER_JSON).exists()
        assert not (d / "verifier.json").exists()
        assert col.analysis.space == "base" and col.settings.space == "base"
        for p in PARTS:
            np.testing.assert_array_equal(col.analysis.parts[p], base[p])
        assert [n.relpath for n in col.similar(2, k=6)] == before
        # with an adapter saved, a cancelled retraining keeps it as it was
        _, (first, _) = collect(col.adapt("style", AdapterConfig(label="style", epochs=5)))
        gen = col.adapt("style", AdapterConfig(label="style", epochs=50, patience=50, seed=7))
        for ev in gen:
            if ev.stage == "adapt" and ev.done >= 2:
                break
        gen.close()
        assert StyleAdapter.load(d).id == first.id
    finally:
        col.close()


# ------------------------------------------------------------------ same hand?
def test_verifier_prefers_same_style_pairs(adapted):
    from sklearn.metrics import roc_auc_score

    col, _, _, _, _ = adapted
    an = run(col.use_space("adapted"))
    style = np.array([p.split("/")[0] for p in an.relpaths])
    i, j = np.triu_indices(an.n, 1)
    same = (style[i] == style[j]).astype(int)
    ver = PairVerifier.load(col.files.dir)
    probs = ver.probability(an.parts, i, j)  # the collection shows the adapted space here
    assert roc_auc_score(same, probs) > 0.9
    assert col.compare(0, 1).probability == pytest.approx(float(ver.probability(an.parts, 0, 1)), abs=1e-9)
    c = col.compare(0, 1)
    logit = np.log(c.probability / (1 - c.probability))
    assert c.base_logit + sum(c.contributions.values()) == pytest.approx(logit, abs=1e-6)
    assert set(c.contributions) == set(PARTS) and c.space == "adapted"
    assert c.same == (c.probability >= c.threshold)


def test_verifier_on_unseen_labels_base_space(adapted):
    col, _, _, _, _ = adapted
    an = run(col.use_space("base"))
    labels = an.label_column("style")
    groups = label_groups(np.array(labels), 2)
    assert len(groups) == 2 and all(len(g) == 2 for g in groups)
    res = evaluate_unseen_labels(labels, groups, lambda tr: an.parts, n_pairs=4000)
    assert res.auc > 0.8 and 0 <= res.f1 <= 1 and len(res.folds) == 2
    ver = train_verifier(an.parts, labels, n_pairs=2000)
    assert 0 < ver.threshold < 1 and ver.meta["figures"]["heldout_pair_auc"] > 0.9


# ------------------------------------------------------------------ command line
def test_cli_adapt_compare_and_adapted_neighbours(indexed, tmp_path_factory, capsys):
    src, _, _, _ = indexed
    col = _copy_index(indexed, tmp_path_factory, "cli")
    idx = col.index_dir
    col.close()
    base = [str(src.root), "--index-dir", str(idx), "--labels", str(src.labels_csv), "--k", "4"]
    capsys.readouterr()
    assert main(["-q", "compare", *base, "blocks/blocks_0.jpg", "blocks/blocks_1.jpg"]) == 1
    assert "artstyle adapt" in capsys.readouterr().err
    assert main(["-q", "adapt", *base, "--label", "nosuchcolumn"]) == 1
    assert "nosuchcolumn" in capsys.readouterr().err

    assert main(["-q", "adapt", *base, "--label", "style", "--epochs", "8"]) == 0
    out = capsys.readouterr().out
    assert "Style adapter learned from 'style'" in out and "held-out paintings" in out and "verifier" in out

    assert main(["-q", "compare", *base, "blocks/blocks_0.jpg", "blocks/blocks_1.jpg"]) == 0
    out = capsys.readouterr().out
    assert "probability" in out and all(p in out for p in PARTS)
    assert main(["-q", "compare", *base, "blocks/blocks_0.jpg", "swirl/swirl_1.jpg", "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert main(["-q", "compare", *base, "blocks/blocks_0.jpg", "blocks/blocks_1.jpg", "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["probability"] > diff["probability"] and set(same["contributions"]) == set(PARTS)
    assert same["label"] == "style" and same["space"] == "adapted"

    assert main(["-q", "similar", *base, "swirl/swirl_2.jpg", "-k", "4", "--space", "adapted", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res) == 4 and sum(r["path"].startswith("swirl/") for r in res) >= 3
    assert main(["-q", "evaluate", *base, "--label", "style", "--space", "base", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["retrieval"][3]["precision_at_k"] > 0.5


# ------------------------------------------------------------------ shape leak (issue 14)
def test_aspect_bins_and_content_box_sizes():
    from artstyle_gui.core.analysis.evaluate import aspect_bins, box_size

    w = [85, 160, 224, 300, 400, 224, 0, float("nan")]
    h = [224, 224, 224, 224, 224, 85, 224, 224]
    assert aspect_bins(w, h).tolist() == [0, 1, 2, 3, 4, 4, -1, -1]
    assert aspect_bins([59, 60, 85, 118, 167], [100] * 5).tolist() == [0, 1, 2, 3, 4]  # an edge opens its bin
    assert box_size("70 0 153 224") == (83, 224) and box_size("0,21,224,202") == (224, 181)
    assert box_size("") is None and box_size(None) is None and box_size("5 5 5 9") is None


def _shape_data(n: int = 1200, seed: int = 0):
    rng = np.random.default_rng(seed)
    bins = rng.choice(5, size=n, p=[0.1, 0.3, 0.35, 0.2, 0.05])
    chance = sum(np.mean(bins == b) ** 2 for b in range(5))
    return rng, bins, chance


def test_shape_leak_sees_an_embedding_that_groups_by_aspect():
    from artstyle_gui.core.analysis.evaluate import shape_leak

    rng, bins, chance = _shape_data()
    leaky = np.eye(5)[bins] * 3 + rng.normal(0, 1, (len(bins), 5))  # shape dominates the cosine
    leaky = np.concatenate([leaky, rng.normal(0, 1, (len(bins), 20))], axis=1)
    res = shape_leak(leaky, bins, topics=bins * 7 + 1)
    assert res.chance == pytest.approx(chance) and res.k == 10 and res.n == len(bins)
    assert res.same_bin > 0.8 > chance + 0.4
    assert res.nmi_topic == pytest.approx(1.0)
    assert res.counts == [int((bins == b).sum()) for b in range(5)]


def test_shape_leak_of_a_shape_blind_embedding_is_about_chance():
    from artstyle_gui.core.analysis.evaluate import shape_leak

    rng, bins, chance = _shape_data(seed=1)
    bins[:50] = -1  # unknown aspect: left out
    res = shape_leak(rng.normal(0, 1, (len(bins), 16)), bins, topics=rng.integers(0, 7, len(bins)))
    assert res.n == len(bins) - 50
    assert abs(res.same_bin - res.chance) < 0.04
    assert res.nmi_topic < 0.02
    assert np.isnan(shape_leak(rng.normal(0, 1, (len(bins), 4)), bins).nmi_topic)  # no topics


def test_quality_report_shape_leak_from_the_content_box_or_the_file_size():
    from types import SimpleNamespace

    from benchmarks.quality import CONTENT_BOX_COLUMN, shape_leak_figures, shape_leak_line, shape_leak_lines

    rng = np.random.default_rng(2)
    tall, wide = "70 0 153 224", "0 60 224 164"
    recs = [SimpleNamespace(labels={CONTENT_BOX_COLUMN: tall if i % 2 else wide}, width=224, height=224)
            for i in range(60)]
    emb = np.stack([[1.0, 0.0] if i % 2 else [0.0, 1.0] for i in range(60)]) + rng.normal(0, 0.05, (60, 2))
    sl = shape_leak_figures(recs, emb, np.arange(60) % 2, "bovw topics, K = 2")
    assert "content_bbox" in sl["aspect_source"] and sl["counts"] == [30, 0, 0, 0, 30]
    assert sl["same_bin_share"] == pytest.approx(1.0) and sl["chance"] == pytest.approx(0.5)
    assert sl["nmi_topic_aspect"] == pytest.approx(1.0)
    line = shape_leak_line(sl)
    assert line == "shape leak: NMI(topic, aspect bin) 1.000; neighbours in the query's aspect bin 1.000 (chance 0.500)"
    md = "\n".join(shape_leak_lines(sl))
    assert "## Shape leak" in md and "| 1.000 | 1.000 | 0.500 |" in md
    assert shape_leak_lines(None) == []
    # no content box column: the file's own size (here every file is square, so one bin)
    plain = [SimpleNamespace(labels={"style": "x"}, width=224, height=224) for _ in range(60)]
    sl = shape_leak_figures(plain, emb, None, "none")
    assert "file width/height" in sl["aspect_source"] and sl["counts"] == [0, 0, 60, 0, 0]
    assert sl["same_bin_share"] == 1.0 and sl["chance"] == 1.0
