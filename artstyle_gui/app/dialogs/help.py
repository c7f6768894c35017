"""Help > How to Use (a short page in plain words) and Help > Keyboard Shortcuts (read from the window's
actions, so the list stays true when a shortcut changes)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

HOW_TO_USE = """
<h2>How to use artstyle</h2>
<p><b>Open a folder of paintings</b> (File &gt; Open Folder). The app looks at every picture once and
remembers what it saw in its own index; <b>your folder is never changed</b>: no file in it is moved,
renamed, edited or deleted, and nothing is written into it. A labels CSV (title, artist, style, year...)
is only read.</p>

<h3>Click a painting</h3>
<p>The panel on the right shows it, its details, and the paintings that look most like it. Back and
Forward (Alt+Left, Alt+Right) step through the paintings you looked at.</p>

<h3>How similar paintings are found</h3>
<p>Each painting is described by three things: its <b>content</b> (what a neural network recognises in it),
its <b>texture</b> (brushwork and patterns) and its <b>colours</b>. Two paintings are neighbours when these
descriptions are close. Under each neighbour, a small bar shows how much each of the three contributed
("why similar"). Settings &gt; Search changes how much each counts.</p>

<h3>What topics are</h3>
<p>The app groups recurring visual styles into <b>topics</b>, found by itself without any labels. A painting
is usually a mix of a few topics: "60% this topic" means that topic accounts for most of its style. Topics
get a suggested name (from the most common style or artist among their paintings, else from their colours);
type your own name in the Topics tab and it is used everywhere, in exports too.</p>

<h3>What the scores mean</h3>
<ul>
<li><b>Similarity</b> of a neighbour: higher is closer; the words ("very close", "close", "related", "distant") give the scale.</li>
<li><b>Topic share</b>: how much of a painting's style one topic accounts for (0% to 100%).</li>
<li><b>More like this, but...</b>: raise or lower topics of the painting shown, and see which paintings match
that changed mix.</li>
</ul>

<h3>Explore</h3>
<p>The <b>Map</b> places similar paintings near each other; the <b>Heatmap</b> shows which topics each style or
artist uses; the <b>Topics</b> tab shows the paintings most typical of each topic. Tools &gt; Find Near-Duplicates
lists pictures that are probably the same painting twice.</p>
"""


class HelpDialog(QDialog):
    """The How to Use page."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("How to Use artstyle")
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        self.text.setHtml(HOW_TO_USE)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(buttons)
        self.resize(560, 520)


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """(action, shortcut) for every action of ``window`` that has a shortcut, in the order the window
    added them; the text without its '&' mnemonic and trailing '…', the shortcut as this platform shows it."""
    rows: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for a in window.findChildren(QAction):
        keys = [k for k in a.shortcuts() if not k.isEmpty()]
        if not keys:
            continue
        name = a.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").rstrip(".").strip()
        keytext = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
        if name and (name, keytext) not in seen:
            seen.add((name, keytext))
            rows.append((name, keytext))
    return rows


class ShortcutsDialog(QDialog):
    """The window's keyboard shortcuts, read from its actions."""

    def __init__(self, window: QWidget, parent=None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle("Keyboard Shortcuts")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        for i, (name, keys) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(name))
            k = QTableWidgetItem(keys)
            k.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(i, 1, k)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.rows = rows
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        self.resize(420, min(640, 90 + 30 * max(1, len(rows))))

    def text(self) -> str:
        """The list as plain text (for tests and copying)."""
        return "\n".join(f"{html.unescape(n)}\t{k}" for n, k in self.rows)
