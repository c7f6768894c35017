"""Tests for artstyle_gui.core.labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from artstyle_gui.core.errors import ArtStyleError
from artstyle_gui.core.ingest.labels import STANDARD_COLUMNS, Labels, artist_from_parent, find_default_labels_csv, read_labels_csv


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_standard_and_extra_columns(tmp_path: Path):
    csv_path = write(tmp_path / "labels.csv",
                     "path,Museum,style,Artist,title,notes\n"
                     "Monet/water_lilies.jpg,Orangerie,Impressionism,Claude Monet,Water Lilies,\n"
                     "hokusai.png,,Ukiyo-e,Hokusai,\"The Great Wave, off Kanagawa\",famous\n")
    labels = read_labels_csv(csv_path, tmp_path)
    assert labels.columns == ["artist", "title", "style", "Museum", "notes"]
    assert labels.by_path["Monet/water_lilies.jpg"] == {
        "Museum": "Orangerie", "style": "Impressionism", "artist": "Claude Monet", "title": "Water Lilies"}
    assert labels.by_path["hokusai.png"]["title"] == "The Great Wave, off Kanagawa"
    assert labels.by_path["hokusai.png"]["notes"] == "famous"
    assert "Museum" not in labels.by_path["hokusai.png"]  # empty cells are omitted
    assert labels.warnings == []
    assert set(labels.columns[:3]) <= set(STANDARD_COLUMNS)


def test_bom_semicolon_and_alternative_path_column(tmp_path: Path):
    csv_path = tmp_path / "l.csv"
    csv_path.write_bytes("\ufeffFilename;Year;Stil\n./Degas\\danseuse.jpg;1874;Réalisme\n".encode("utf-8"))
    labels = read_labels_csv(csv_path, tmp_path)
    assert labels.columns == ["year", "Stil"]
    assert labels.by_path == {"Degas/danseuse.jpg": {"year": "1874", "Stil": "Réalisme"}}


def test_file_column_and_tab_delimiter(tmp_path: Path):
    labels = read_labels_csv(write(tmp_path / "l.csv", "file\tartist\na.jpg\tX\n"), tmp_path)
    assert labels.by_path == {"a.jpg": {"artist": "X"}}


def test_absolute_paths_are_made_relative(tmp_path: Path):
    root = tmp_path / "collection"
    (root / "Monet").mkdir(parents=True)
    csv_path = write(tmp_path / "labels.csv",
                     "path,artist\n"
                     f"{root / 'Monet' / 'a.jpg'},Monet\n"
                     f"{root}/./Monet/../b.jpg,B\n"
                     f"{tmp_path / 'elsewhere' / 'c.jpg'},Nobody\n"
                     "../escape.jpg,Nobody\n")
    labels = read_labels_csv(csv_path, root)
    assert labels.by_path == {"Monet/a.jpg": {"artist": "Monet"}, "b.jpg": {"artist": "B"}}
    assert len(labels.warnings) == 2 and all("not inside" in w for w in labels.warnings)


def test_tolerates_missing_columns_short_rows_blank_lines_duplicates(tmp_path: Path):
    csv_path = write(tmp_path / "labels.csv",
                     "path,artist,title\n"
                     "a.jpg\n"
                     "\n"
                     "b.jpg,Someone\n"
                     ",Orphan,No path\n"
                     "b.jpg,Other\n")
    labels = read_labels_csv(csv_path, tmp_path)
    assert labels.by_path == {"a.jpg": {}, "b.jpg": {"artist": "Someone"}}
    assert labels.columns == ["artist", "title"]
    assert any("line 5" in w for w in labels.warnings)
    assert any("line 6" in w and "again" in w for w in labels.warnings)


def test_no_path_column_is_a_clear_error(tmp_path: Path):
    csv_path = write(tmp_path / "labels.csv", "artist,title\nMonet,Water Lilies\n")
    with pytest.raises(ArtStyleError) as info:
        read_labels_csv(csv_path, tmp_path)
    msg = str(info.value)
    assert "no path column" in msg and "path" in msg and "artist" in msg


def test_empty_and_unreadable_files(tmp_path: Path):
    with pytest.raises(ArtStyleError, match="empty"):
        read_labels_csv(write(tmp_path / "empty.csv", ""), tmp_path)
    with pytest.raises(ArtStyleError, match="Cannot read"):
        read_labels_csv(tmp_path / "missing.csv", tmp_path)


def test_non_utf8_falls_back_to_cp1252(tmp_path: Path):
    csv_path = write(tmp_path / "l.csv", "path,artist\nx.jpg,Gérôme\n", encoding="cp1252")
    labels = read_labels_csv(csv_path, tmp_path)
    assert labels.by_path["x.jpg"]["artist"] == "Gérôme"
    assert labels.warnings and "UTF-8" in labels.warnings[0]


def test_get_falls_back_to_unique_file_name():
    labels = Labels(by_path={"a.jpg": {"artist": "A"}, "dup.jpg": {"artist": "D1"},
                             "x/dup.jpg": {"artist": "D2"}, "Monet/m.jpg": {"artist": "M"}},
                    columns=["artist"])
    assert labels.get("Monet/m.jpg") == {"artist": "M"}
    assert labels.get("sub/a.jpg") == {"artist": "A"}
    assert labels.get("y/dup.jpg") is None  # ambiguous
    assert labels.get("x/dup.jpg") == {"artist": "D2"}
    assert labels.get("other/m.jpg") is None  # only bare names match by file name
    labels.by_path["b.png"] = {}
    assert labels.get("deep/b.png") == {}  # cache notices new rows


def test_artist_from_parent():
    assert artist_from_parent("Claude_Monet/water_lilies.jpg") == "Claude Monet"
    assert artist_from_parent("impressionism/Edgar__Degas_/x.png") == "Edgar Degas"
    assert artist_from_parent("Hokusai/sub/wave.jpg") == "sub"
    assert artist_from_parent("top_level.jpg") is None
    assert artist_from_parent("Frida_Kahlo\\self.jpg") == "Frida Kahlo"


def test_find_default_labels_csv(tmp_path: Path):
    assert find_default_labels_csv(tmp_path) is None
    (tmp_path / "labels.csv").mkdir()  # a folder named labels.csv does not count
    assert find_default_labels_csv(tmp_path) is None
    (tmp_path / "labels.csv").rmdir()
    write(tmp_path / "Labels.CSV", "path\n")
    found = find_default_labels_csv(tmp_path)
    assert found is not None and found.name.lower() == "labels.csv" and found.is_file()
    assert find_default_labels_csv(tmp_path / "missing") is None
