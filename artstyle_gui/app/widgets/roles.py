"""The item data roles of the app's list models (the gallery's and the thumbnail strips'), in one
place so that the numbers never collide and delegates can read any model."""

from __future__ import annotations

from PySide6.QtCore import Qt

RelpathRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
TopicRole = Qt.ItemDataRole.UserRole + 3
ScoreRole = Qt.ItemDataRole.UserRole + 4
ArtistRole = Qt.ItemDataRole.UserRole + 5
SubtitleRole = Qt.ItemDataRole.UserRole + 6
SharesRole = Qt.ItemDataRole.UserRole + 10  # the "why similar" shares of a thumbnail strip card
ScoreTextRole = Qt.ItemDataRole.UserRole + 11  # what a strip card's score means ("p(topic) = 0.41")
