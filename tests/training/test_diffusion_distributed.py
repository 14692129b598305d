"""torchrun-style data-parallel diffusion training (gloo on CPU): ranks stay in lock-step, rank 0 writes."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from latent_transforms.training.checkpoint import load_training_state
from latent_transforms.training.diffusion_trainer import DiffusionTrainer
from tests.training.test_diffusion_trainer import options, tiny
from tests.training.test_trainer import blobs


def _worker(rank: int, world_size: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world_size)
    try:
        torch.set_num_threads(1)
        trainer = DiffusionTrainer(
            tiny(), blobs(), f"{folder}/run", options(total_kimg=0.016), progress=False
        )
        trainer.run()
        torch.save(
            {"unet": trainer.unet.state_dict(), "ema": trainer.ema.state_dict()}, f"{folder}/rank{rank}.pt"
        )
    finally:
        dist.destroy_process_group()


def test_two_ranks_end_with_identical_weights_and_one_checkpoint(tmp_path):
    mp.start_processes(_worker, args=(2, str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for net in ("unet", "ema"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs between ranks"
    state = load_training_state(tmp_path / "run")
    assert state["cur_nimg"] == 16  # the global batch counts once, not once per rank
    assert len(state["rng"]) == 2  # both ranks' random streams are kept for an exact resume
    assert (tmp_path / "run" / "bundle" / "unet.safetensors").is_file()
    assert not torch.equal(state["rng"][0], state["rng"][1])  # each rank draws its own noise
