"""The CT predictor every row trains: a ResNet-10 (``latent_transforms.tasks.ResNetRegressor``, whose
outputs are values for regression and class logits for classification), Adam at 1e-3, regression labels
standardised with the CT training labels, the epoch with the lowest validation error (MSE, or 1 -
accuracy) kept; and the variants the baselines need (two heads for multi-task, a domain classifier behind a
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
    task: str = "regression"
    classes: int = 2

    @property
    def outputs(self) -> int:
        """Outputs per head: one value, or one logit per class."""
        return 1 if self.task == "regression" else self.classes

    def network(self, heads: int = 1) -> ResNetRegressor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return ResNetRegressor(1, heads * self.outputs, depth=10, width=self.width).to(self.device)

    def scaled(self, labels: torch.Tensor) -> torch.Tensor:
        if self.task == "classification":
            return labels.long()
        return (labels.float() - self.mean) / self.std

    def head_outputs(self, out: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        """Each sample's outputs of its head: ``[B]`` values or ``[B, classes]`` logits."""
        k = self.outputs
        per_head = out.view(len(out), -1, k)
        chosen = per_head[torch.arange(len(out), device=out.device), heads.to(out.device)]
        return chosen[:, 0] if k == 1 else chosen

    def loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.task == "classification":
            return nn.functional.cross_entropy(out, labels)
        return nn.functional.mse_loss(out, labels)

    @torch.no_grad()
    def predict(self, net: ResNetRegressor, images: torch.Tensor, head: int = 0) -> torch.Tensor:
        """Values in the labels' units, or class indices."""
        net.eval()
        outs = []
        for i in range(0, len(images), 256):
            out = net(images[i : i + 256].to(self.device))
            outs.append(self.head_outputs(out, torch.full((len(out),), head)).cpu())
        out = torch.cat(outs)
        return out.argmax(1) if self.task == "classification" else out * self.std + self.mean

    def score(self, net: ResNetRegressor, images: torch.Tensor, labels: torch.Tensor) -> float:
        """The test metric: MSE (regression) or accuracy (classification)."""
        return metric(self.task, self.predict(net, images), labels)

    def error(self, net: ResNetRegressor, images: torch.Tensor, labels: torch.Tensor) -> float:
        """What the best epoch minimises on the validation patients: MSE, or 1 - accuracy."""
        value = self.score(net, images, labels)
        return value if self.task == "regression" else 1.0 - value

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
        validation error (head 0), else the last."""
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
                out = self.head_outputs(net.fc(feats), heads_of[idx])
                loss = self.loss(out, labels[idx].to(self.device))
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
                score = self.error(net, val.images, val.labels)
                if score < best:
                    best, best_state = score, copy.deepcopy(net.state_dict())
        if best_state is not None:
            net.load_state_dict(best_state)
        return net.eval()


def metric(task: str, predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean squared error of values, or accuracy of class indices."""
    if task == "classification":
        return float((predicted.long() == labels.long()).float().mean())
    return float(((predicted.float() - labels.float()) ** 2).mean())


def standard_da(seed: int) -> StandardDA:
    """StandardDA with Tronchin et al.'s operations at p = 0.5 (images stay in ``[-1, 1]``)."""
    return StandardDA(p=0.5, seed=seed)
