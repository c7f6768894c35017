"""Style map, near-duplicates, search in topic space and topic names (core + CLI), on synthetic
collections whose answers are known."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artstyle_gui.cli import main
from artstyle_gui.core.explore import duplicates as dupmod
from artstyle_gui.core.explore import stylemap
from artstyle_gui.core.analysis.parts import blend
from artstyle_gui.core.explore.duplicates import DuplicateGroup, export_duplicates_csv, hamming, phash
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.errors import ArtStyleError
from artstyle_gui.core.progress import collect, run
from artstyle_gui.core.explore.stylemap import compute_layout, neighbourhood_preservation
from artstyle_gui.core.explore.summaries import export
from artstyle_gui.core.search import steer, topic_distance
from synth import STYLES, make_painting, tree_digest

# planted near-duplicates: copy -> original (a group of three around swirl_5)
PLANTED = {
    "copies/pointillist_0_q85.jpg": "pointillist/pointillist_0.jpg",  # re-encoded at another JPEG quality
    "copies/blocks_0_q85.jpg": "blocks/blocks_0.jpg",
    "copies/stripes_1_big.png": "stripes/stripes_1.jpg",  # resized (x1.5)
    "copies/swirl_2_crop.jpg": "swirl/swirl_2.jpg",  # cropped by ~3 % per side
    "copies/stripes_3_crop6.jpg": "stripes/stripes_3.jpg",  # cropped by ~6 % per side
    "copies/swirl_5_q85.jpg": "swirl/swirl_5.jpg",
    "copies/swirl_5_x125.png": "swirl/swirl_5.jpg",
}


def _plant(root: Path) -> None:
    out = root / "copies"
    out.mkdir()
    for copy, orig in PLANTED.items():
        im = Image.open(root / orig).convert("RGB")
        name = Path(copy).name
        w, h = im.size
        if "_q85" in name:
            im.save(out / name, quality=85)
        elif "_big" in name:
            im.resize((w * 3 // 2, h * 3 // 2), Image.Resampling.LANCZOS).save(out / name)
        elif "_x125" in name:
            im.resize((w * 5 // 4, h * 5 // 4), Image.Resampling.LANCZOS).save(out / name)
        else:
            f = 0.06 if "_crop6" in name else 0.03
            im.crop((int(f * w), int(f * h), w - int(0.7 * f * w), h - int(f * h))).save(out / name, quality=92)


def _expected_groups() -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for copy, orig in PLANTED.items():
        groups.setdefault(orig, {orig}).add(copy)
    return {frozenset(g) for g in groups.values()}


def _style(relpath: str) -> str:
    return Path(relpath).name.split("_")[0]




#: the steering and topic-name tests run on visual-word topics, whose mixtures on these synthetic
#: paintings are spread over several topics (the art model's style codes give near one-hot mixtures
#: here and merge two of the four synthetic styles at K = 4)
EXPLORE = {"k": 4, "topic_input": "bovw"}


@pytest.fixture(scope="module")
def planted(synth_src, tmp_path_factory):
    """The synthetic collection plus planted near-duplicates, indexed once (K = 4)."""
    src, _ = synth_src
    base = tmp_path_factory.mktemp("explore")
    root = base / "collection"
    shutil.copytree(src, root)
    _plant(root)
    labels = src.parent / "labels.csv"
    idx = base / "idx"
    col = Collection(root, settings=Settings(**EXPLORE), index_dir=idx, labels_csv=labels)
    run(col.index())
    yield col, root, idx, labels
    col.close()


def _clone(planted, tmp_path) -> Collection:
    """A private copy of the planted collection and its index (no re-extraction)."""
    col, root, idx, labels = planted
    root2, idx2 = tmp_path / "collection", tmp_path / "idx"
    shutil.copytree(root, root2)
    shutil.copytree(idx, idx2, ignore=shutil.ignore_patterns("lock"))
    return Collection(root2, settings=Settings(**EXPLORE), index_dir=idx2, labels_csv=labels)


# --------------------------------------------------------------------------- near-duplicates
def test_phash_and_hamming():
    a = make_painting("swirl", 3, (200, 160))
    b = make_painting("swirl", 4, (200, 160))
    assert phash(a) == phash(a.copy()) and 0 <= phash(a) < 2**64
    assert hamming(phash(a), phash(a.resize((300, 240)))) <= 4
    assert hamming(phash(a), phash(b)) > 10
    assert hamming(0, 2**64 - 1) == 64 and hamming(5, 5) == 0


def test_planted_duplicates_are_found_and_nothing_else(planted):
    col, root, _, _ = planted
    (planted[2] / dupmod.CACHE_FILE).unlink(missing_ok=True)
    groups = run(col.find_duplicates())
    found = {frozenset(g.relpaths) for g in groups}
    assert found == _expected_groups()
    assert groups[0].size == 3  # the largest group first
    for g in groups:
        assert isinstance(g, DuplicateGroup) and g.similarity >= 0.80 and g.max_hamming <= 10
        assert len(g.rows) == len(g.relpaths) == len(g.similarities) == len(g.hammings) == g.size
    crops = {p for g in groups for p, c in zip(g.relpaths, g.crops) if c}
    assert "copies/swirl_2_crop.jpg" in crops
    assert not any(c for g in groups for p, c in zip(g.relpaths, g.crops) if "_q85" in p or "_big" in p)
    # that crop is found by alignment: the whole-image hashes alone do not confirm it
    plain = {frozenset(g.relpaths) for g in run(col.find_duplicates(crops=False))}
    assert plain < found and not any("copies/swirl_2_crop.jpg" in g for g in plain)
    # a lower threshold makes many more candidates (same-style paintings), still no false group
    assert {frozenset(g.relpaths) for g in run(col.find_duplicates(threshold=0.8))} == found


def test_second_run_decodes_nothing(planted, monkeypatch):
    col, root, idx, _ = planted
    (idx / dupmod.CACHE_FILE).unlink(missing_ok=True)
    first = run(col.find_duplicates())
    assert col.duplicate_decoded > 0

    def no_decoding(*a, **k):
        raise AssertionError("decoded an image although its thumbnail is cached")

    monkeypatch.setattr(dupmod, "load_rgb", no_decoding)
    second = run(col.find_duplicates())
    assert col.duplicate_decoded == 0 and not col.duplicate_skipped
    assert [g.relpaths for g in second] == [g.relpaths for g in first]


def test_collection_is_unchanged_by_map_duplicates_and_exports(planted, tmp_path):
    col, root, _, _ = planted
    before = tree_digest(root)
    groups = run(col.find_duplicates(threshold=0.85))
    export_duplicates_csv(groups, tmp_path / "dups.csv", root)
    run(col.style_map("pca"))
    col.steered_similar(0, {1: 0.3})
    assert tree_digest(root) == before
    with pytest.raises(ArtStyleError, match="never writes"):
        export_duplicates_csv(groups, root / "dups.csv", root)
    assert tree_digest(root) == before


def test_duplicates_csv(planted, tmp_path):
    col, root, _, _ = planted
    groups = run(col.find_duplicates())
    out = export_duplicates_csv(groups, tmp_path / "d.csv", root)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(g.size for g in groups)
    assert set(rows[0]) >= {"group", "size", "relpath", "path", "similarity", "hamming", "match",
                            "group_min_similarity", "group_max_hamming"}
    by_group: dict[str, set[str]] = {}
    for r in rows:
        by_group.setdefault(r["group"], set()).add(r["relpath"])
        assert Path(r["path"]) == root / r["relpath"]
    assert {frozenset(v) for v in by_group.values()} == _expected_groups()
    # formula-looking names are escaped
    g = DuplicateGroup([0, 1], ["=cmd.jpg", "b.jpg"], 0.95, 2, [0, 0], [1.0, 0.95], [0, 2], [False, False])
    export_duplicates_csv([g], tmp_path / "e.csv", root)
    assert "'=cmd.jpg" in (tmp_path / "e.csv").read_text()


def test_unreadable_candidates_are_skipped_with_a_message(planted, tmp_path):
    col = _clone(planted, tmp_path)
    try:
        (col.index_dir / dupmod.CACHE_FILE).unlink(missing_ok=True)
        (col.root / "copies" / "pointillist_0_q85.jpg").unlink()  # gone since indexing
        (col.root / "copies" / "blocks_0_q85.jpg").write_bytes(b"not an image any more")  # changed
        events, groups = collect(col.find_duplicates())
        skipped = dict(col.duplicate_skipped)
        assert "gone" in skipped["copies/pointillist_0_q85.jpg"]
        assert "changed" in skipped["copies/blocks_0_q85.jpg"]
        assert any("skipped copies/pointillist_0_q85.jpg" in e.message for e in events)
        expected = {g for g in _expected_groups() if not ({"copies/pointillist_0_q85.jpg",
                                                          "copies/blocks_0_q85.jpg"} & g)}
        assert {frozenset(g.relpaths) for g in groups} == expected
    finally:
        col.close()


def test_duplicate_arguments_are_checked(planted):
    col = planted[0]
    with pytest.raises(ArtStyleError):
        run(col.find_duplicates(threshold=1.5))
    with pytest.raises(ArtStyleError):
        run(col.find_duplicates(max_hamming=65))


# --------------------------------------------------------------------------- style map
def _clusters(n_per: int, styles: int, dim: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(styles, dim))
    lab = np.repeat(np.arange(styles), n_per)
    x = centres[lab] + 0.35 * rng.normal(size=(len(lab), dim))
    return x.astype(np.float32), lab


def _same_vs_other(xy: np.ndarray, lab) -> tuple[float, float]:
    lab = np.asarray(lab)
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    same = lab[:, None] == lab[None]
    off = ~np.eye(len(lab), dtype=bool)
    return float(d[same & off].mean()), float(d[~same].mean())


def test_layouts_keep_styles_together(indexed):
    col, _, an, rows = indexed
    vec = blend(an.parts, an.weights)
    style = [_style(p) for p in an.relpaths]
    chance = 5 / (an.n - 1)
    for method in ("pca", "tsne"):
        ev, xy = collect(compute_layout(vec, method, seed=0))
        assert xy.shape == (an.n, 2) and xy.dtype == np.float32
        assert np.abs(xy).max() <= 1.0 + 1e-6 and np.abs(xy).max() > 0.99
        assert ev[0].stage == "map" and ev[-1].done == ev[-1].total
        npres = neighbourhood_preservation(vec, xy, k=5)
        assert npres > max(0.5, 3 * chance), (method, npres)
        same, other = _same_vs_other(xy, style)
        assert same < 0.6 * other, (method, same, other)


def test_tsne_on_a_sample_places_the_rest_by_neighbours():
    x, lab = _clusters(60, 5)
    events, xy = collect(compute_layout(x, "tsne", seed=1, tsne_sample=120))
    assert xy.shape == (300, 2) and np.isfinite(xy).all()
    assert any("placed" in e.message for e in events)
    # within a cluster the neighbours are noise: 10 / 59 = 0.17 is the most a cluster-keeping map
    # is sure to reach; chance is 10 / 299 = 0.03
    assert neighbourhood_preservation(x, xy, k=10) > 0.1
    same, other = _same_vs_other(xy, lab)
    assert same < 0.5 * other
    _, again = collect(compute_layout(x, "tsne", seed=1, tsne_sample=120))
    np.testing.assert_array_equal(xy, again)  # deterministic for a seed


def test_neighbourhood_preservation_figure():
    x, _ = _clusters(30, 3, dim=20)
    rng = np.random.default_rng(0)
    assert neighbourhood_preservation(x, x[:, :2] * 0 + rng.normal(size=(90, 2)), k=5) < 0.25  # chance 0.056
    p2 = stylemap.pca_layout(x)
    assert neighbourhood_preservation(x, p2, k=5) > 0.15  # within a cluster the neighbours are noise
    assert neighbourhood_preservation(x, stylemap._unit(x), k=5) == pytest.approx(1.0)  # cosine = unit euclidean


def test_auto_method_and_small_inputs():
    assert stylemap.resolve_method("auto", 5) == "pca"
    assert stylemap.resolve_method("auto", 5000) == "tsne"
    assert stylemap.resolve_method("auto", stylemap.AUTO_TSNE_MAX + 1) == "pca"
    with pytest.raises(ArtStyleError):
        stylemap.resolve_method("umap", 10)
    xy = run(compute_layout(np.ones((3, 8), np.float32), "tsne"))  # too few for t-SNE: PCA, no crash
    assert xy.shape == (3, 2) and np.isfinite(xy).all()


def test_saved_map_is_reused_and_follows_the_embedding(planted, tmp_path, monkeypatch):
    col = _clone(planted, tmp_path)
    try:
        for f in col.files.dir.glob("stylemap-*"):  # layouts saved by other tests
            f.unlink()
        col.load_analysis()
        assert col.saved_style_map("pca") is None
        xy = run(col.style_map("pca"))
        assert (col.files.dir / "stylemap-pca.npz").is_file()

        def fail(*a, **k):
            raise AssertionError("recomputed a saved layout")

        monkeypatch.setattr(stylemap, "compute_layout", fail)
        np.testing.assert_array_equal(run(col.style_map("pca")), xy)
        col.close()
        col = Collection(col.root, settings=Settings(**EXPLORE), index_dir=col.index_dir)  # a new session: from disk
        np.testing.assert_array_equal(col.saved_style_map("pca"), xy)
        np.testing.assert_array_equal(run(col.style_map("pca")), xy)
        # another embedding (blend weights): recomputed, and saved beside
        col.set_blend({"deep": 0.0, "texture": 0.0, "colour": 1.0})
        assert col.saved_style_map("pca") is None
        with pytest.raises(AssertionError, match="recomputed"):
            run(col.style_map("pca"))
        monkeypatch.undo()
        xy2 = run(col.style_map("pca"))
        assert not np.allclose(xy, xy2)
        assert col.saved_style_map("pca") is not None
    finally:
        col.close()


# --------------------------------------------------------------------------- topic space
def test_distances_hellinger_and_js():
    rng = np.random.default_rng(0)
    mix = rng.dirichlet(np.ones(6) * 0.5, size=50).astype(np.float32)
    for metric in ("hellinger", "js"):
        d = np.stack([topic_distance(m, mix, metric) for m in mix])
        assert np.allclose(np.diag(d), 0, atol=1e-3)
        assert np.allclose(d, d.T, atol=1e-5)
        assert d.min() >= 0 and d.max() <= 1
        one_hot = np.eye(6, dtype=np.float32)
        assert topic_distance(one_hot[0], one_hot[1:], metric) == pytest.approx(np.ones(5), abs=1e-5)
    with pytest.raises(ArtStyleError):
        topic_distance(mix[0], mix, "cosine")


def test_steer():
    m = np.array([0.5, 0.3, 0.2, 0.0], np.float32)
    s = steer(m, {3: 0.3, 0: -0.7})
    assert s.sum() == pytest.approx(1.0) and s[0] == 0 and s[3] > 0 and (s >= 0).all()
    assert steer(m, {}) == pytest.approx(m)
    assert steer(np.array([1.0, 0.0]), {0: -1.0}) == pytest.approx([0.5, 0.5])  # nothing left: uniform
    with pytest.raises(ArtStyleError):
        steer(m, {7: 0.3})
    with pytest.raises(ArtStyleError):
        steer(m, {1: 1.5})


def test_alpha_zero_without_adjustment_is_similar(indexed):
    col, _, an, _ = indexed
    for row in (0, 9, 30):
        a = col.similar(row, 10)
        b = col.steered_similar(row, {}, k=10, alpha=0.0)
        assert [n.row for n in b] == [n.row for n in a]
        assert [n.score for n in b] == pytest.approx([n.score for n in a], abs=1e-4)
        assert all(abs(sum(n.shares.values()) - 1) < 1e-5 for n in b)


def test_raising_a_topic_moves_paintings_rich_in_it_up(planted):
    col = planted[0]
    an = col.require_analysis()
    mix = an.topics.mixtures
    k = 16
    moved = 0
    for row in range(0, an.n, 3):
        base = [n.row for n in col.steered_similar(row, {}, k=k, alpha=0.5)]
        assert row not in base
        for t in range(an.topics.k):
            if mix[row, t] > 0.5:
                continue  # raise topics the painting has little of
            up = [n.row for n in col.steered_similar(row, {t: 0.5}, k=k, alpha=0.5)]
            before, after = mix[base, t].mean(), mix[up, t].mean()
            assert after >= before - 1e-6
            moved += after > before + 0.05
            down = [n.row for n in col.steered_similar(row, {t: -0.5}, k=k, alpha=0.5)]
            assert mix[down, t].mean() <= before + 1e-6
    assert moved >= 10
    for metric in ("hellinger", "js"):
        res = col.steered_similar(0, {1: 0.3}, k=5, alpha=0.8, metric=metric)
        assert len(res) == 5 and all(res[i].score >= res[i + 1].score for i in range(4))


# --------------------------------------------------------------------------- topic names
def test_topic_names_persist_show_in_exports_and_follow_the_model(planted, tmp_path):
    col = _clone(planted, tmp_path)
    try:
        an = col.require_analysis()
        assert col.topic_names() == {} and col.topic_label(2) == "Topic 3"
        # a style that has a topic of its own (LDA may merge two styles on so few paintings)
        dom = an.dominant_topics()
        of = {st: {int(dom[i]) for i, p in enumerate(an.relpaths) if _style(p) == st} for st in STYLES}
        style = next(st for st in STYLES if len(of[st]) == 1 and not any(of[st] & v for x, v in of.items() if x != st))
        s = next(iter(of[style]))
        o = (s + 1) % an.topics.k
        col.set_topic_name(s, "  Warm   dots ")
        col.set_topic_name(o, "=HYPERLINK(x)")
        assert col.topic_names() == {s: "Warm dots", o: "=HYPERLINK(x)"}
        assert col.topic_label(s) == f"Topic {s + 1} · Warm dots"
        with pytest.raises(ArtStyleError):
            col.set_topic_name(4, "no such topic")
        root, idx = col.root, col.index_dir
        col.close()
        col = Collection(root, settings=Settings(**EXPLORE), index_dir=idx)  # reopened: names kept with the index
        assert col.topic_names() == {s: "Warm dots", o: "=HYPERLINK(x)"}
        an = col.require_analysis()
        export(an, tmp_path / "out", topic_names=col.topic_names())
        with open(tmp_path / "out" / "topics.csv", newline="", encoding="utf-8") as fh:
            trows = list(csv.DictReader(fh))
        assert trows[s]["name"] == "Warm dots" and trows[(s + 2) % 4]["name"] == f"Topic {(s + 2) % 4 + 1}"
        assert trows[o]["name"] == "'=HYPERLINK(x)"  # formula-escaped
        with open(tmp_path / "out" / "paintings.csv", newline="", encoding="utf-8") as fh:
            prow = list(csv.DictReader(fh))
        assert {r["dominant_topic_name"] for r in prow if r["dominant_topic"] == str(s + 1)} == {"Warm dots"}
        col.set_topic_name(o, "")
        assert col.topic_names() == {s: "Warm dots"}
        named_topic = s
        # another K: another topic model, the names are not shown; back to K = 4: shown again
        run(col.refit_topics(k=3))
        assert col.topic_names() == {} and col.topic_label(s) == f"Topic {s + 1}"
        run(col.refit_topics(k=4))
        assert col.topic_names() == {named_topic: "Warm dots"}
        # the same model refitted on a changed collection: the name follows the paintings of its topic
        dom = col.analysis.dominant_topics()
        named = [p for p, d in zip(col.analysis.relpaths, dom) if d == named_topic]
        (col.root / named[-1]).unlink()
        run(col.index())
        an = col.analysis
        assert an.row_of(named[-1]) is None
        dom = an.dominant_topics()
        still = [int(dom[an.row_of(p)]) for p in named[:-1]]
        t = max(set(still), key=still.count)
        assert still.count(t) >= 0.6 * len(still)  # the style still has a topic of its own
        assert col.topic_names() == {t: "Warm dots"}
    finally:
        col.close()


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def cli(planted):
    col, root, idx, labels = planted
    return root, ["--index-dir", str(idx), "--labels", str(labels), "--k", "4", "--topic-input", "bovw"]


def test_cli_map(cli, tmp_path, capsys):
    root, base = cli
    out = tmp_path / "map.csv"
    assert main(["-q", "map", str(root), *base, "--method", "pca", "--out", str(out), "--label", "style"]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["relpath", "x", "y", "dominant_topic", "dominant_topic_name", "style"]
    assert len(rows) == 32 + len(PLANTED)
    assert all(-1 <= float(r["x"]) <= 1 and -1 <= float(r["y"]) <= 1 for r in rows)
    assert {r["style"] for r in rows if r["relpath"].startswith("swirl/")} == {"swirl"}
    capsys.readouterr()
    assert main(["-q", "map", str(root), *base, "--method", "pca"]) == 0  # CSV on standard output
    lines = capsys.readouterr().out.splitlines()
    head = lines[0].split(",")  # the same header as the app's export: every label column by default
    assert head[:5] == ["relpath", "x", "y", "dominant_topic", "dominant_topic_name"] and "style" in head[5:]
    assert len(lines) == len(rows) + 1
    assert main(["-q", "map", str(root), *base, "--out", str(root / "map.csv")]) == 1
    assert "never writes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["-q", "map", str(root), *base, "--method", "umap"])
    assert e.value.code == 2


def test_cli_duplicates(cli, tmp_path, capsys):
    root, base = cli
    out = tmp_path / "dups.csv"
    capsys.readouterr()
    assert main(["-q", "duplicates", str(root), *base, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{len(_expected_groups())} groups of near-duplicates" in text
    assert "Group 1: 3 paintings" in text and "copies/swirl_2_crop.jpg  (crop)" in text
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(len(g) for g in _expected_groups())
    assert main(["-q", "duplicates", str(root), *base, "--json", "--no-crops"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert {frozenset(g["paths"]) for g in groups} < _expected_groups()
    for bad in (["--threshold", "1.5"], ["--threshold", "x"], ["--max-hamming", "65"]):
        with pytest.raises(SystemExit) as e:
            main(["-q", "duplicates", str(root), *base, *bad])
        assert e.value.code == 2
    assert "--threshold" in capsys.readouterr().err


def test_cli_steered_similar(cli, capsys):
    root, base = cli
    capsys.readouterr()
    q = "stripes/stripes_2.jpg"
    assert main(["-q", "similar", str(root), q, "-k", "16", "--json", *base]) == 0
    plain = [r["path"] for r in json.loads(capsys.readouterr().out)]
    assert main(["-q", "similar", str(root), q, "-k", "16", "--json", "--alpha", "0", *base]) == 0
    assert [r["path"] for r in json.loads(capsys.readouterr().out)["neighbours"]] == plain
    col = Collection(root, settings=Settings(**EXPLORE), index_dir=base[1])
    try:
        an = col.require_analysis()
        row = an.row_of(q)
        mix = an.topics.mixtures
        d = int(np.argmax(mix[row]))  # the painting's dominant topic
        sizes = np.bincount(an.dominant_topics(), minlength=an.topics.k)
        # raise a topic of other paintings (LDA may leave a topic empty) that is rare among the neighbours
        t = min((x for x in range(an.topics.k) if x != d and sizes[x] >= 8),
                key=lambda x: mix[[an.row_of(p) for p in plain], x].mean())
    finally:
        col.close()
    assert main(["-q", "similar", str(root), q, "-k", "16", "--json", "--topic-metric", "js", *base]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["adjust"] == {} and res["alpha"] == 0.5 and res["topic_metric"] == "js"
    before = np.mean([r["mixture"][t] for r in res["neighbours"]])
    assert main(["-q", "similar", str(root), q, "-k", "16", "--json", "--raise", f"{t + 1}=0.8",
                 "--lower", f"{d + 1}=0.8", "--topic-metric", "js", *base]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["adjust"] == {str(t + 1): 0.8, str(d + 1): -0.8}
    after = np.mean([r["mixture"][t] for r in res["neighbours"]])
    assert after > before + 0.1
    assert main(["-q", "similar", str(root), q, "--raise", str(t + 1), "--lower", f"{d + 1}=0.2", *base]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"More like {q}, but: ") and f"raise Topic {t + 1} (+0.30)" in out
    assert f"lower Topic {d + 1} (-0.20)" in out and len(out.splitlines()) == 3 + 10
    assert main(["-q", "similar", str(root), q, "--raise", "9", *base]) == 2
    assert "no topic 9" in capsys.readouterr().err
    for bad in (["--raise", "x"], ["--raise", "0"], ["--lower", "2=1.5"], ["--alpha", "2"]):
        with pytest.raises(SystemExit) as e:
            main(["-q", "similar", str(root), q, *bad, *base])
        assert e.value.code == 2


def test_cli_topic_names(cli, tmp_path, capsys):
    root, base = cli
    capsys.readouterr()
    try:
        assert main(["-q", "topics", str(root), *base, "--name", '2=Blue "stripes"', "--name", "4=Swirls"]) == 0
        out = capsys.readouterr().out
        assert 'Topic 2 · Blue "stripes":' in out and "Topic 4 · Swirls:" in out
        assert main(["-q", "topics", str(root), *base, "--json"]) == 0
        names = [t["name"] for t in json.loads(capsys.readouterr().out)["topics"]]
        assert names[1] == 'Blue "stripes"' and names[3] == "Swirls" and names[0] == "Topic 1"
        assert main(["-q", "export", str(root), str(tmp_path / "ex"), *base]) == 0
        with open(tmp_path / "ex" / "topics.csv", newline="", encoding="utf-8") as fh:
            assert [r["name"] for r in csv.DictReader(fh)][1] == 'Blue "stripes"'
        assert main(["-q", "topics", str(root), *base, "--name", "4="]) == 0  # cleared
        assert "Topic 4 · Swirls" not in capsys.readouterr().out  # back to its suggested name
        assert main(["-q", "topics", str(root), *base, "--name", "9=Nine"]) == 2
        assert "no topic 9" in capsys.readouterr().err
        for bad in ("Blue", "x=Blue", "0=Zero"):
            with pytest.raises(SystemExit) as e:
                main(["-q", "topics", str(root), *base, "--name", bad])
            assert e.value.code == 2
    finally:
        main(["-q", "topics", str(root), *base, "--name", "2="])
