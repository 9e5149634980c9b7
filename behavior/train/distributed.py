"""Where training runs: one process or torchrun's, the device's autocast and gradient scaler, and seeds."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext

import numpy as np
import torch
import torch.distributed as dist

from behavior.runtime import hardware


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a generator for the data sampler."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class Distributed:
    """The torchrun environment, or a single process."""

    def __init__(self, device: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = hardware.resolve_device(device)
        if self.world > 1:
            if self.device.startswith("cuda"):
                self.device = f"cuda:{self.local_rank}"
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.startswith("cuda") else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def make_scaler(device: str) -> torch.amp.GradScaler:
    """A gradient scaler, active only for float16 autocast on CUDA."""
    return torch.amp.GradScaler(enabled=device.startswith("cuda") and not torch.cuda.is_bf16_supported())


def autocast(device: str):
    """bfloat16 (or float16) autocast on CUDA; nothing on the CPU."""
    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return nullcontext()
