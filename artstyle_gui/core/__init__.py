"""Qt-free engine: scanning, decoding, features, index, analysis, neighbours, export."""
