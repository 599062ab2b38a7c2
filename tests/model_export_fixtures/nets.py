"""Small PyTorch modules for the model_export tests (importable as a --module path) and
tests/model_kinds.py (at module level, so that they pickle)."""

from __future__ import annotations

import torch


class MLP(torch.nn.Module):
    """A small classifier MLP: logits out."""

    def __init__(self, n_in: int = 4, hidden: int = 32, n_out: int = 3) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, n_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Branchy(MLP):
    """Data-dependent Python control flow: tracing freezes one branch, so the ONNX export
    answers differently from the module on rows that take the other one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        if x.abs().max() > 4:  # iris rows take this; the random trace input does not
            return logits
        return -logits


def train_iris_mlp(X: torch.Tensor, y: torch.Tensor, steps: int = 300) -> MLP:
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    return model.eval()


class TwoInput(torch.nn.Module):
    """Token ids [N, 6] (embedded, averaged) and float features [N, 4] -> 3 logits."""

    def __init__(self, vocab: int = 50, dim: int = 8, n_features: int = 4) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.head = torch.nn.Sequential(torch.nn.Linear(dim + n_features, 16), torch.nn.ReLU(),
                                        torch.nn.Linear(16, 3))

    def forward(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.embed(ids).mean(dim=1), x], dim=1))


class Ranker(torch.nn.Module):
    """A linear score of float features [N, 4] plus a learnt bias per user id ([N] int64,
    one value per row, ids 0..9) -> [N, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.user_bias = torch.nn.Embedding(10, 1)
        self.score = torch.nn.Linear(4, 1)

    def forward(self, features: torch.Tensor, user_id: torch.Tensor) -> torch.Tensor:
        return self.score(features) + self.user_bias(user_id)


class FeaturesAndId(torch.nn.Module):
    """Float features [N, 4] + an int64 id [N] through an Embedding(10, 3) -> value [N, 1]
    (tests/model_kinds.py's two-input kind)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 3)
        self.out = torch.nn.Linear(7, 1)

    def forward(self, features: torch.Tensor, user_id: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([features, self.emb(user_id)], dim=1))
