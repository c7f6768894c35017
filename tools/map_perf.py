"""Measure the style map's drawing cost with a synthetic 50,000-point layout (not a test).

    QT_QPA_PLATFORM=offscreen python3 tools/map_perf.py [N]

Prints the time of setting the points (colour groups -> one ScatterPlotItem each, numpy arrays
only), of recolouring by a label column, and of repaints (``grab()`` of the plot) after pan/zoom
range changes: the whole map, half of it, and zoomed in.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np  # noqa: E402


def fake_analysis(n: int, k: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    mix = rng.dirichlet(np.full(k, 0.3), n).astype(np.float32)
    relpaths = [f"f/{i:06d}.jpg" for i in range(n)]
    labels = [{"artist": f"Artist {i % 400}", "style": f"Style {i % 15}"} for i in range(n)]
    an = SimpleNamespace(n=n, relpaths=relpaths, labels=labels, topics=SimpleNamespace(k=k, mixtures=mix),
                         fingerprint="synthetic", weights={"deep": 1.0}, space="base", adapter=None)
    an.dominant_topics = lambda: mix.argmax(1)
    an.label_column = lambda col: [lab.get(col, "") for lab in labels]
    rows = {p: i for i, p in enumerate(relpaths)}
    an.row_of = rows.get
    # a clustered layout like t-SNE's: k blobs
    centres = rng.uniform(-0.8, 0.8, (k, 2))
    xy = centres[mix.argmax(1)] + rng.normal(0, 0.08, (n, 2))
    xy = np.clip(xy / np.abs(xy).max(), -1, 1).astype(np.float32)
    return an, xy


def ms(f, repeat: int = 5) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    import artstyle_gui.app  # noqa: F401
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from artstyle_gui.app.controller import Controller
    from artstyle_gui.app.views.stylemap import StyleMapView, layout_key
    from artstyle_gui.app.widgets.thumbnails import ThumbnailLoader

    app = QApplication.instance() or QApplication([])
    c = Controller()
    view = StyleMapView(c, ThumbnailLoader())
    view.resize(1100, 760)
    view.show()
    an, xy = fake_analysis(n)
    view.an = an
    view._key = layout_key(an)
    view._fill_colour_box()
    QCoreApplication.processEvents()

    t_set = ms(lambda: view._show("pca", xy, final=True), 5)
    view.set_colour_by("artist")
    t_artist = ms(view._recolour, 5)
    view.set_colour_by("topic")
    QCoreApplication.processEvents()
    vb = view.vb
    print(f"{n:,} points, plot {vb.width():.0f} x {vb.height():.0f} px, {view.point_count():,} drawn")
    print(f"set points (coloured by topic, {len(view.group_names)} groups): {t_set:.1f} ms")
    print(f"recolour by artist (20 groups): {t_artist:.1f} ms")

    def repaint(xr, yr):
        def f():
            vb.setRange(xRange=xr, yRange=yr, padding=0)
            view.plot.grab()
        return f

    view.plot.grab()  # warm-up (symbol atlas)
    cases = [("whole map", (-1.05, 1.05), (-1.05, 1.05)), ("pan, whole map", (-0.95, 1.15), (-1.0, 1.1)),
             ("zoom x2", (-0.5, 0.5), (-0.5, 0.5)), ("zoom x10", (-0.1, 0.1), (-0.1, 0.1))]
    for name, xr, yr in cases:
        t = ms(repaint(xr, yr), 7)
        (x0, x1), (y0, y1) = vb.viewRange()
        vis = int(((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).sum())
        print(f"range change + repaint, {name} ({vis:,} points in view): {t:.1f} ms")
    view.fit()
    assert view.row_at_scene(view.scene_pos_of(123)) is not None
    hover = ms(lambda: view.row_at_scene(view.scene_pos_of(123)), 20)
    print(f"hit test (hover/click) over all points: {hover:.2f} ms")
    view.close()
    app.processEvents()


if __name__ == "__main__":
    main()
