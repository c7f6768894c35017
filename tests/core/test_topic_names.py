"""Automatic topic names: from the top labels, else from colours; the user's name wins; the CLI shows them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from artstyle_gui.core.analysis.parts import ColourPart, PartModel, Projection
from artstyle_gui.core.explore.summaries import auto_topic_names, display_fields, names_with_auto
from artstyle_gui.core.progress import Progress, RateEstimator

from test_explore import cli, planted  # noqa: F401 - the indexed collection with labels (fixtures)


def _fake(labels, dom, k, parts=None, part_model=None):
    n = len(dom)
    mix = np.full((n, k), 0.1 / max(1, k - 1), np.float32)
    mix[np.arange(n), dom] = 0.9
    return SimpleNamespace(topics=SimpleNamespace(mixtures=mix, k=k), n=n, labels=labels,
                           label_column=lambda c: [lab.get(c, "") for lab in labels],
                           parts=parts or {}, part_model=part_model, space="base")


def test_names_from_labels():
    dom = np.array([0] * 10 + [1] * 10 + [2] * 10)
    styles = (["Expressionism"] * 6 + ["Post-Impressionism"] * 3 + ["Baroque"]
              + ["Baroque"] * 9 + ["Expressionism"]
              + ["Rococo"] * 3 + ["Baroque"] * 3 + ["Expressionism"] * 2 + ["Post-Impressionism"] * 2)
    an = _fake([{"style": s} for s in styles], dom, 3)
    names = auto_topic_names(an)
    assert names[0] == "Expressionism / Post-Impressionism"
    assert names[1] == "Baroque"
    assert 2 not in names or "Rococo" not in names[2]  # 30%: not a clear share


def _hist(rgb_mass: dict[tuple[int, int, int], float]) -> np.ndarray:
    h = np.zeros(512)
    for (r, g, b), m in rgb_mass.items():
        h[r * 64 + g * 8 + b] = m
    return h / h.sum()


def test_visual_names_without_labels():
    dark = _hist({(1, 0, 0): 0.5, (2, 1, 0): 0.5})
    light_blue = _hist({(5, 6, 7): 0.6, (7, 7, 7): 0.4})
    hists = np.array([dark] * 8 + [light_blue] * 8)
    s = np.sqrt(hists)
    proj = Projection(mean=s.mean(0).astype(np.float32), components=np.eye(512, dtype=np.float32))
    x = proj(s)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pm = PartModel({"colour": ColourPart(proj)})
    an = _fake([{} for _ in range(16)], np.array([0] * 8 + [1] * 8), 2, parts={"colour": x}, part_model=pm)
    names = auto_topic_names(an)
    assert names[0].startswith("Dark") and names[1].startswith("Light"), names
    assert "blue" in names[1] and names[0] != names[1]


def test_user_name_wins():
    dom = np.array([0] * 5 + [1] * 5)
    an = _fake([{"style": "Baroque"}] * 5 + [{"style": "Cubism"}] * 5, dom, 2)
    assert names_with_auto(an, {1: "My cubes"}) == {0: "Baroque", 1: "My cubes"}
    assert auto_topic_names(None) == {}


def test_display_fields_known_first_rest_more():
    known, more = display_fields({"Md5": "abc", "style": "Baroque", "title": "A", "Width": "224",
                                  "Content_bbox_x0_y0_x1_y1": "0 1 2 3", "year": "1650", "artist": "",
                                  "genre": "portrait", "Source_commit": "7a1b"})
    assert known == [("Title", "A"), ("Style", "Baroque"), ("Year", "1650"), ("Genre", "portrait")]
    assert [k for k, _ in more] == ["Md5", "Width", "Content bbox x0 y0 x1 y1", "Source commit"]


def test_eta_is_smoothed_and_quiet_at_first():
    est = RateEstimator()
    t = 0.0
    assert est.update(Progress("extract", 0, 1000), now=t) == (None, None)
    etas = []
    for i, dt in enumerate([0.5, 0.5, 0.5, 4.0, 0.2, 0.5, 0.5, 0.5, 0.5, 0.5]):  # a stall, then a burst
        t += dt
        rate, eta = est.update(Progress("extract", 10 * (i + 1), 1000), now=t)
        etas.append(eta)
    assert etas[0] is None and etas[1] is None  # the first seconds: no ETA
    shown = [e for e in etas if e is not None]
    assert shown and max(shown) / min(shown) < 2.0  # no 00:54 -> 04:19 -> 01:05 jumps
    assert est.update(Progress("pca", 0, None), now=t + 1) == (None, None)  # a new step starts quiet
    assert est.update(Progress("pca", 0, None), now=t + 9)[1] is None  # no total, no progress: no ETA


def test_cli_topics_show_automatic_names(cli, capsys):
    from artstyle_gui.cli import main

    root, base = cli
    capsys.readouterr()
    assert main(["-q", "topics", str(root), *base, "--json"]) == 0
    import json

    topics = json.loads(capsys.readouterr().out)["topics"]
    suggested = {t["topic"]: t["suggested_name"] for t in topics if t["suggested_name"]}
    assert suggested  # the synthetic paintings have distinct colours or labels
    assert main(["-q", "topics", str(root), *base]) == 0
    out = capsys.readouterr().out
    t, name = next(iter(suggested.items()))
    assert f"Topic {t + 1} · {name}:" in out


def test_gram_detail_reads_the_diagonal_energy():
    from artstyle_gui.core.explore.summaries import gram_detail

    c = 4
    iu = np.triu_indices(c)
    g = np.zeros((2, len(iu[0])))
    diag = [k for k, (i, j) in enumerate(zip(*iu)) if i == j]
    g[0, diag] = 1.0  # flat: little energy
    g[1, diag] = 10.0  # busy
    g[:, [k for k in range(len(iu[0])) if k not in diag]] = 99.0  # off-diagonal entries do not count
    d = gram_detail(g)
    np.testing.assert_allclose(d, np.log([4.0, 40.0]))


def test_visual_names_say_detailed_or_smooth_when_the_texture_is_known():
    same = _hist({(3, 3, 3): 1.0})  # one colour for all: only the texture tells the topics apart
    hists = np.array([same] * 16)
    s = np.sqrt(hists)
    proj = Projection(mean=s.mean(0).astype(np.float32), components=np.eye(512, dtype=np.float32))
    x = proj(s) + 1e-6
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pm = PartModel({"colour": ColourPart(proj)})
    dom = np.array([0] * 8 + [1] * 8)
    an = _fake([{} for _ in range(16)], dom, 2, parts={"colour": x}, part_model=pm)
    detail = lambda rows: np.where(dom[np.asarray(rows)] == 0, 5.0, 1.0)  # noqa: E731 - topic 0 is busy
    names = auto_topic_names(an, detail=detail)
    assert names[0].startswith("Detailed") and names[1].startswith("Smooth"), names
    assert "detailed" not in auto_topic_names(an).get(0, "").casefold()  # no texture cue without it
