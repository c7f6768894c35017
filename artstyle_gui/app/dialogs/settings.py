"""Preferences: backbone, descriptor blend, metric, PCA size, K, topic input, thumbnail size.

The dialog edits a copy of the engine ``Settings``; the window persists the result (QSettings) and
asks the controller to apply it, which runs only what the change needs (re-rank, re-fit, or
re-extract).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSlider,
                               QSpinBox, QVBoxLayout, QWidget)

from ...core.analysis.parts import PART_LABELS, PARTS
from ...core.analysis.topics import TOPIC_INPUT_LABELS, TOPIC_INPUTS
from ...core.ingest.backbones import REGISTRY
from ...core.learn.finetune import list_finetuned
from ...core.model import Settings
from ...core.model import default_settings_for
from ..prefs import THUMB_RANGE, THUMB_SNAP

TUNED_PREFIX = "finetuned:"


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, thumb_size: int, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._orig = settings

        self.backbone = QComboBox()
        for name, info in REGISTRY.items():
            self.backbone.addItem(f"{name} — {info.description}", name)
        # fine-tuned backbones (`artstyle finetune`): a base backbone + its weights file, one entry each
        self._tuned: dict[str, str] = {}  # weights path -> base backbone
        for meta in list_finetuned():
            f = meta.get("figures") or {}
            label = (meta.get("config") or {}).get("label", "?")
            self._tuned[meta["weights_path"]] = meta.get("backbone", "effnet-lite0")
            self.backbone.addItem(
                f"{meta['name']} — fine-tuned {meta.get('backbone')} on '{label}' (held-out P@{f.get('k', 10)} "
                f"{f.get('base_heldout_p10', float('nan')):.2f} → {f.get('heldout_p10', float('nan')):.2f})",
                TUNED_PREFIX + meta["weights_path"])
        self.backbone.activated.connect(self._on_backbone_chosen)
        self.weights = QLineEdit(settings.weights_file or "")
        self.weights.setPlaceholderText("default weights")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        wrow = QHBoxLayout()
        wrow.setContentsMargins(0, 0, 0, 0)
        wrow.addWidget(self.weights, 1)
        wrow.addWidget(browse)
        ww = QWidget()
        ww.setLayout(wrow)
        self.trim = QCheckBox("Trim uniform borders (frames, scan margins) before extracting")

        self.blend: dict[str, QDoubleSpinBox] = {}
        for part in PARTS:
            sb = QDoubleSpinBox()
            sb.setRange(0.0, 5.0)
            sb.setSingleStep(0.05)
            sb.setDecimals(2)
            self.blend[part] = sb
        reset = QPushButton("Defaults")
        reset.clicked.connect(self._on_reset_blend_clicked)
        self.device = QComboBox()  # where the network runs: this computer's choice, kept in the app's settings
        for label, value in (("Automatic (a GPU when there is one)", "auto"), ("The processor (CPU)", "cpu"),
                             ("NVIDIA GPU (CUDA)", "cuda"), ("Apple GPU (Metal)", "mps")):
            self.device.addItem(label, value)
        self.device.setToolTip("Where the network that reads the paintings runs. On the processor it runs on "
                               "ONNX Runtime when it is installed (faster), else PyTorch: the features are the same.")
        self.metric_box = QComboBox()
        self.metric_box.addItem("cosine similarity", "cosine")
        self.metric_box.addItem("euclidean distance", "euclidean")

        self.pca = QSpinBox()
        self.pca.setRange(8, 1024)
        self.pca.setSingleStep(16)
        self.auto_k = QCheckBox("Automatic (the number that explains the paintings best)")
        self.auto_k.setToolTip("The elbow of the held-out perplexity curve over K = 5..20")
        self.k = QSpinBox()
        self.k.setRange(1, 200)
        self.topic_input = QComboBox()
        for key in TOPIC_INPUTS:
            self.topic_input.addItem(TOPIC_INPUT_LABELS[key], key)

        self.thumb = QSlider(Qt.Orientation.Horizontal)
        self.thumb.setRange(*THUMB_RANGE)
        self.thumb.setSingleStep(THUMB_SNAP)
        self.thumb_label = QLabel()
        self.thumb.valueChanged.connect(lambda v: self.thumb_label.setText(f"{v} px"))

        feat = QFormLayout()
        feat.addRow("Backbone:", self.backbone)
        feat.addRow("Weights file:", ww)
        feat.addRow("", self.trim)
        feat.addRow("Run the network on:", self.device)
        g1 = QGroupBox("Features (changing these extracts the features again)")
        g1.setLayout(feat)

        sim = QFormLayout()
        for part, sb in self.blend.items():
            sim.addRow(PART_LABELS[part] + ":", sb)
        sim.addRow("Metric:", self.metric_box)
        sim.addRow("", reset)
        g2 = QGroupBox("Similarity blend (re-ranks at once, no re-extraction)")
        g2.setLayout(sim)

        top = QFormLayout()
        top.addRow("PCA components (deep):", self.pca)
        krow = QHBoxLayout()
        krow.addWidget(self.auto_k)
        krow.addWidget(QLabel("K:"))
        krow.addWidget(self.k)
        top.addRow("Number of topics:", krow)
        top.addRow("Topic input:", self.topic_input)
        g3 = QGroupBox("Analysis (re-fits PCA and topics, no re-extraction)")
        g3.setLayout(top)

        trow = QHBoxLayout()
        trow.addWidget(self.thumb, 1)
        trow.addWidget(self.thumb_label)
        view = QFormLayout()
        view.addRow("Thumbnail size:", trow)
        g4 = QGroupBox("Display")
        g4.setLayout(view)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.error = QLabel()
        self.error.setStyleSheet("color: #d9443a")
        self.error.setWordWrap(True)
        self.error.hide()
        lay = QVBoxLayout(self)
        for g in (g1, g2, g3, g4):
            lay.addWidget(g)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.auto_k.toggled.connect(lambda on: self.k.setEnabled(not on))
        self.set_values(settings, thumb_size)

    def _chosen_backbone(self, data: str | None = None) -> str:
        data = str(self.backbone.currentData() if data is None else data)
        return self._tuned.get(data[len(TUNED_PREFIX):], "effnet-lite0") if data.startswith(TUNED_PREFIX) else data

    def _on_reset_blend_clicked(self) -> None:
        """The default blend of the chosen backbone (the art model's differs from ImageNet's)."""
        default = default_settings_for(self._chosen_backbone()).blend
        for p, sb in self.blend.items():
            sb.setValue(default.get(p, 0.0))

    def _on_backbone_chosen(self, index: int) -> None:
        data = str(self.backbone.itemData(index))
        # a topic input or blend left at the previous backbone's default follows to the new one's
        prev, new = default_settings_for(self._shown_backbone), default_settings_for(self._chosen_backbone(data))
        self._shown_backbone = new.backbone
        if self.topic_input.currentData() == prev.topic_input:
            self.topic_input.setCurrentIndex(max(0, self.topic_input.findData(new.topic_input)))
        if all(abs(self.blend[p].value() - prev.blend.get(p, 0.0)) < 1e-6 for p in self.blend):
            for p, sb in self.blend.items():
                sb.setValue(new.blend.get(p, 0.0))
        if data.startswith(TUNED_PREFIX):
            self.weights.setText(data[len(TUNED_PREFIX):])
        elif self.weights.text().strip() in self._tuned:  # back to a built-in: its default weights
            self.weights.clear()

    def set_values(self, s: Settings, thumb_size: int) -> None:
        self._shown_backbone = s.backbone
        i = self.backbone.findData(TUNED_PREFIX + (s.weights_file or ""))
        self.backbone.setCurrentIndex(i if i >= 0 else max(0, self.backbone.findData(s.backbone)))
        self.weights.setText(s.weights_file or "")
        self.trim.setChecked(s.trim_borders)
        for part, sb in self.blend.items():
            sb.setValue(float(s.blend.get(part, 0.0)))
        self.metric_box.setCurrentIndex(max(0, self.metric_box.findData(s.metric)))
        self.device.setCurrentIndex(max(0, self.device.findData(s.device)))
        self.pca.setValue(s.deep_components)
        self.auto_k.setChecked(s.k is None)
        self.k.setEnabled(s.k is not None)
        self.k.setValue(s.k or 10)
        self.topic_input.setCurrentIndex(max(0, self.topic_input.findData(s.topic_input)))
        self.thumb.setValue(int(thumb_size))
        self.thumb_label.setText(f"{int(thumb_size)} px")

    def values(self) -> tuple[Settings, int]:
        """The edited settings (validated by the caller) and the thumbnail size."""
        backbone = self._chosen_backbone()
        s = replace(self._orig,
                    backbone=backbone,
                    weights_file=self.weights.text().strip() or None,
                    trim_borders=self.trim.isChecked(),
                    blend={p: float(sb.value()) for p, sb in self.blend.items()},
                    metric=self.metric_box.currentData(),
                    device=self.device.currentData(),
                    deep_components=int(self.pca.value()),
                    k=None if self.auto_k.isChecked() else int(self.k.value()),
                    topic_input=self.topic_input.currentData())
        return s, int(self.thumb.value())

    def accept(self) -> None:
        s, _ = self.values()
        try:
            s.validate()
        except Exception as e:  # noqa: BLE001 - shown inline, the dialog stays open
            self.error.setText(str(e))
            self.error.show()
            return
        super().accept()

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Backbone weights file", self.weights.text(),
                                              "PyTorch weights (*.pth *.pt *.bin);;All files (*)")
        if path:
            self.weights.setText(path)
