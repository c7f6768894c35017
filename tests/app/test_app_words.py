"""Plain words: no jargon in what the topic browser, the steering panel and the detail panel show at rest;
the help dialogs; topic names suggested but never forced."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QLineEdit

JARGON = ("p(topic", "of the average painting", "perplexity", "Hellinger", "Jensen", "topics — look")


def _visible_texts(widget) -> list[str]:
    out = []
    for w in [widget, *widget.findChildren(QLabel), *widget.findChildren(QAbstractButton),
              *widget.findChildren(QComboBox), *widget.findChildren(QLineEdit)]:
        if isinstance(w, QComboBox):
            out += [w.itemText(i) for i in range(w.count())]
        elif isinstance(w, QLineEdit):
            out += [w.text(), w.placeholderText()]
        elif hasattr(w, "text"):
            out.append(w.text())
    if hasattr(widget, "top"):  # the topic browser's cards
        out += [card.score_text for card in widget.top.model().cards] if hasattr(widget.top.model(), "cards") else []
    return out


def test_no_jargon_in_visible_texts(window, indexed, qtbot):
    c = window.controller
    c.select(indexed.an.relpaths[0])
    window.open_topic(0)
    window.detail.steer.toggle.click()
    for w in (window.topics, window.detail.steer, window.detail):
        for text in _visible_texts(w):
            for term in JARGON:
                assert term.casefold() not in text.casefold(), (type(w).__name__, text)


def test_help_lists_every_shortcut(window, qtbot):
    from PySide6.QtGui import QAction

    from artstyle_gui.app.dialogs.help import HelpDialog, ShortcutsDialog

    assert window.act_help in window.actions() and window.act_shortcuts in window.actions()
    h = HelpDialog(window)
    assert "never changed" in h.text.toPlainText()
    d = ShortcutsDialog(window)
    text = d.text()
    for a in window.findChildren(QAction):
        if not a.shortcut().isEmpty():
            assert a.text().replace("&", "").rstrip("…").strip() in text
    assert "Alt+Left" in text and "F5" in text
    h.close()
    d.close()


def test_suggested_topic_names_are_placeholders(window, indexed, qtbot):
    c = window.controller
    tb = window.topics
    window.open_topic(0)
    auto = c.auto_topic_name(0)
    assert auto and c.topic_name(0) == auto and c.topic_label(0) == f"Topic 1 · {auto}"
    assert tb.name_edit.text() == "" and tb.name_edit.placeholderText() == auto
    tb.name_edit.editingFinished.emit()  # nothing typed: the suggestion is not stored as a name
    assert c.topic_names == {}
    tb.name_edit.setText("Mine")
    tb.name_edit.editingFinished.emit()
    assert c.topic_name(0) == "Mine" and tb.name_edit.text() == "Mine"
