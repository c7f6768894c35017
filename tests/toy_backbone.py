"""A toy backbone: what adding a backbone takes (this file, and one ``register(TOY)`` line).

Four tiny convolutions with fixed random weights: two Gram layers, one local map, a final map.
"""

from __future__ import annotations

from artstyle_gui.core.ingest.backbones import Backbone, BackboneInfo


class ToyBackbone(Backbone):
    def _final_features(self, x):
        return self.model(x)


def load_toy(info: BackboneInfo, weights: str | None, allow_random: bool = False) -> Backbone:
    import torch

    torch.manual_seed(0)
    conv = [torch.nn.Conv2d(3, 8, 4, stride=4), torch.nn.Conv2d(8, 8, 2, stride=2),
            torch.nn.Conv2d(8, 16, 2, stride=2), torch.nn.Conv2d(16, 32, 1)]
    model = torch.nn.Sequential(conv[0], torch.nn.ReLU(), conv[1], torch.nn.ReLU(), conv[2], torch.nn.ReLU(), conv[3])
    return ToyBackbone(info, model, [conv[0], conv[1]], conv[2], mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                       weights_path=weights)


TOY = BackboneInfo(name="toy-net", description="a four-layer toy network (tests only)", deep_dim=32,
                   gram_channels=(8, 8), local_channels=16, offline=True, family="toy", load=load_toy)
