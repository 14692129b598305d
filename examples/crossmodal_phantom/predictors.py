"""The CT predictor every row trains: a ResNet-10 regressor (``latent_transforms.tasks.ResNetRegressor``),
Adam at 1e-3, labels standardised with the CT training labels, the epoch with the lowest validation MSE
kept; and the variants the baselines need (two heads for multi-task, a domain classifier behind a
gradient-reversal layer for DANN, StandardDA online)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from latent_transforms import StandardDA
from latent_transforms.tasks import ResNetRegressor


@dataclass
class Part:
    """Training images ``[N, 1, R, R]`` in ``[-1, 1]`` with labels ``[N]``, the head that scores them (0:
    CT, 1: MRI for multi-task) and their domain (0: CT, 1: MRI, for DANN)."""

    images: torch.Tensor
    labels: torch.Tensor
    head: int = 0
    domain: int = 0


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:  # type: ignore[override]
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.weight * grad, None


@dataclass
class Protocol:
    """How every predictor is trained (one instance per split)."""

    width: int
    epochs: int
    batch: int
    mean: float
    std: float
    seed: int
    device: str = "cpu"

    def network(self, heads: int = 1) -> ResNetRegressor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return ResNetRegressor(1, heads, depth=10, width=self.width).to(self.device)

    def scaled(self, labels: torch.Tensor) -> torch.Tensor:
        return (labels.float() - self.mean) / self.std

    @torch.no_grad()
    def predict(self, net: ResNetRegressor, images: torch.Tensor, head: int = 0) -> torch.Tensor:
        net.eval()
        out = torch.cat(
            [net(images[i : i + 256].to(self.device))[:, head].cpu() for i in range(0, len(images), 256)]
        )
        return out * self.std + self.mean

    def mse(self, net: ResNetRegressor, images: torch.Tensor, labels: torch.Tensor, head: int = 0) -> float:
        return float(((self.predict(net, images, head) - labels.float()) ** 2).mean())

    def fit(
        self,
        parts: list[Part],
        val: Part | None,
        *,
        net: ResNetRegressor | None = None,
        heads: int = 1,
        dann: bool = False,
        augment: StandardDA | None = None,
    ) -> ResNetRegressor:
        """Train on ``parts`` for ``epochs``; with ``val``, return the weights of the epoch with the lowest
        validation MSE (head 0), else the last."""
        net = net or self.network(heads)
        domain = nn.Linear(net.fc.in_features, 1).to(self.device) if dann else None
        params = list(net.parameters()) + (list(domain.parameters()) if domain is not None else [])
        opt = torch.optim.Adam(params, lr=1e-3)
        images = torch.cat([p.images for p in parts])
        labels = torch.cat([self.scaled(p.labels) for p in parts])
        heads_of = torch.cat([torch.full((len(p.images),), p.head) for p in parts])
        domains = torch.cat([torch.full((len(p.images),), float(p.domain)) for p in parts])
        g = torch.Generator().manual_seed(self.seed + 1)
        best, best_state = math.inf, None
        steps = self.epochs * math.ceil(len(images) / self.batch)
        for epoch in range(self.epochs):
            net.train()
            order = torch.randperm(len(images), generator=g)
            for i in range(0, len(images), self.batch):
                idx = order[i : i + self.batch]
                x = images[idx].to(self.device)
                if augment is not None:
                    x = augment(x)
                feats = net.embed(x)
                out = net.fc(feats).gather(1, heads_of[idx].to(self.device).view(-1, 1))[:, 0]
                loss = nn.functional.mse_loss(out, labels[idx].to(self.device))
                if domain is not None:
                    progress = (epoch * len(images) + i) / max(steps * self.batch, 1)
                    weight = 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0  # Ganin & Lempitsky's schedule
                    logits = domain(_ReverseGradient.apply(feats, weight))[:, 0]
                    loss = loss + nn.functional.binary_cross_entropy_with_logits(
                        logits, domains[idx].to(self.device)
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if val is not None:
                score = self.mse(net, val.images, val.labels)
                if score < best:
                    best, best_state = score, copy.deepcopy(net.state_dict())
        if best_state is not None:
            net.load_state_dict(best_state)
        return net.eval()


def standard_da(seed: int) -> StandardDA:
    """StandardDA with Tronchin et al.'s operations at p = 0.5 (images stay in ``[-1, 1]``)."""
    return StandardDA(p=0.5, seed=seed)
