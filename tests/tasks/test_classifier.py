"""The task network, its metrics and its seeded trainer."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from latent_transforms.tasks import (
    ClassifierOptions,
    ResNetClassifier,
    binary_auc,
    classification_metrics,
    classifier_features,
    evaluate_classifier,
    train_classifier,
)
from latent_transforms.transforms.selective_filter import mc_dropout


def _toy(n=64, side=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, 1, side, side, generator=g) * 0.5 - 0.25
    x[y == 1, :, : side // 2] += 0.6  # class 1: a bright upper half
    return x.clamp(-1, 1), y


def test_the_stem_keeps_small_images_at_full_resolution():
    net = ResNetClassifier(2, 3, depth=18, width=4).eval()
    logits, maps = net.forward_features(torch.zeros(2, 2, 28, 28))
    assert logits.shape == (2, 3)
    assert [m.shape[-1] for m in maps] == [28, 14, 7, 4]
    assert [m.shape[1] for m in maps] == [4, 8, 16, 32]
    assert sum(isinstance(m, torch.nn.Dropout2d | torch.nn.Dropout) for m in net.modules()) == 2


def test_mc_dropout_makes_passes_differ_and_eval_is_deterministic():
    torch.manual_seed(0)
    net = ResNetClassifier(1, 2, depth=10, width=8, dropout=0.5)
    x = torch.randn(4, 1, 16, 16)
    net.eval()
    assert torch.equal(net(x), net(x))
    with mc_dropout(net):
        assert not torch.equal(net(x), net(x))


@pytest.mark.parametrize("seed", range(4))
def test_auc_equals_scikit_learn_with_ties(seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (300,), generator=g)
    s = torch.randint(0, 7, (300,), generator=g).float()
    assert binary_auc(y, s) == pytest.approx(roc_auc_score(y.numpy(), s.numpy()), abs=1e-12)


def test_binary_metrics_by_hand():
    labels = torch.tensor([1, 1, 1, 1, 0, 0])
    probs = torch.tensor([[0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9], [0.7, 0.3], [0.4, 0.6]])
    m = classification_metrics(labels, probs)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["sensitivity"] == pytest.approx(3 / 4) and m["specificity"] == pytest.approx(1 / 2)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert m["auc"] == pytest.approx(roc_auc_score(labels.numpy(), probs[:, 1].numpy()))


def test_multiclass_auc_is_the_one_vs_rest_macro_average():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(90) % 3
    p = torch.softmax(torch.randn(90, 3, generator=g) + torch.nn.functional.one_hot(y) * 0.8, 1)
    expected = roc_auc_score(y.numpy(), p.numpy(), multi_class="ovr", average="macro")
    assert classification_metrics(y, p)["auc"] == pytest.approx(expected)


def test_training_is_seeded_learns_and_keeps_the_best_validation_epoch():
    x, y = _toy()
    opts = ClassifierOptions(epochs=4, batch_size=16, depth=10, width=4, lr=5e-3, seed=7)
    a = train_classifier((x, y), val=(x, y), options=opts, progress=False)
    b = train_classifier((x, y), val=(x, y), options=opts, progress=False)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    aucs = [h["val_auc"] for h in a.history]
    assert a.best_epoch == max(range(1, 5), key=lambda e: (aucs[e - 1], e))
    assert evaluate_classifier(a.model, (x, y))["auc"] > 0.9
    c = train_classifier((x, y), val=(x, y), options=opts.replace(seed=8), progress=False)
    assert not all(
        torch.equal(pa, pc) for pa, pc in zip(a.model.parameters(), c.model.parameters(), strict=True)
    )


def test_online_augmentation_sees_only_real_images_and_extra_images_join_the_epoch():
    x, y = _toy(32)
    ex, ey = _toy(16, seed=1)
    seen = []

    def augment(images, labels, generator):
        seen.append(len(images))
        assert isinstance(generator, torch.Generator)
        return images.flip(3)

    opts = ClassifierOptions(epochs=1, batch_size=8, depth=10, width=4)
    result = train_classifier((x, y), extra=(ex, ey), augment=augment, options=opts, progress=False)
    assert sum(seen) == 32  # the 16 extra images are not augmented
    assert result.best_epoch == 1 and len(result.history) == 1


def test_classifier_features_embed_at_the_image_size_and_are_frozen():
    torch.manual_seed(0)
    net = ResNetClassifier(1, 2, depth=10, width=4)
    fx = classifier_features(net)
    before = fx.embed(torch.zeros(2, 1, 16, 16))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    assert torch.equal(before, fx.embed(torch.zeros(2, 1, 16, 16)))
    assert before.shape == (2, 1, 32)
