"""The art style model that ships with artstyle_gui (``effnet-lite0-art``).

``effnet-lite0-art.pt``: an EfficientNet-Lite0 state dict (float16) whose blocks 11-15 and head conv
were trained by ``tools/train_style_model.py`` on the 22,056 WikiArt paintings listed in
wikiart7-train's manifest; ``effnet-lite0-art.json``: its provenance (manifest sha256, recipe, seed,
commit, measured figures). Loaded by :mod:`artstyle_gui.core.backbones` with ``weights_only=True``.
"""
