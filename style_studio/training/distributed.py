"""Data-parallel training across the processes of `accelerate launch` (or `torchrun`).

Every process draws the same global batch, noise, timesteps and caption dropout from the
run's seeded generator and trains on its own rows of it; the LoRA gradients are summed
across the processes. An N-process run therefore equals a one-process run with the same
global batch, every process holds the same random, optimizer and LoRA state, and a
checkpoint does not depend on how many processes wrote it.

Only the main process writes (the store, the run folder, the cache): it creates the run
as a single process would and hands the run's `TrainSpec` to the others (`share`, then
`receive` on their side). Without a launcher's variables there is one process and
nothing here touches torch.distributed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from style_studio.base.errors import InvalidInput
from style_studio.models.devices import DeviceChoice, pick_device

# What torchrun (accelerate's multi-process launcher) and the MPI launchers set.
_COUNT = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
_LOCAL = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
          "MV2_COMM_WORLD_LOCAL_RANK")


def _first_int(environ: Mapping[str, str], names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            try:
                return int(value)
            except ValueError:
                continue
    return default


@dataclass
class Processes:
    """This process's place in a launch: `count` processes, this one is `rank`."""

    count: int = 1
    rank: int = 0
    local_rank: int = 0
    cpu: bool = True  # the launch trains on the CPU (gloo), else one GPU per process
    _shared: bool = field(default=False, repr=False)  # the main process sent its run

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Processes:
        """Read from the launcher's variables; one process when there are none."""
        env = os.environ if environ is None else environ
        count = max(1, _first_int(env, _COUNT, 1))
        if count == 1:
            return cls()
        forced_cpu = env.get("ACCELERATE_USE_CPU", "").strip().lower() in ("1", "true", "yes")
        return cls(count, _first_int(env, _RANK, 0), _first_int(env, _LOCAL, 0),
                   cpu=forced_cpu or not torch.cuda.is_available())

    @property
    def distributed(self) -> bool:
        return self.count > 1

    @property
    def main(self) -> bool:
        """The process that writes; the only one in a single-process run."""
        return self.rank == 0

    def rows(self, n: int) -> slice:
        """This process's contiguous share of a global batch of `n` rows (a bucket's
        last batch may be short, so a share can be empty)."""
        return slice(n * self.rank // self.count, n * (self.rank + 1) // self.count)

    def check(self, batch_size: int, device: str | None) -> None:
        """Refuse, before a run starts, what the processes cannot share."""
        if not self.distributed:
            return
        if batch_size % self.count:
            raise InvalidInput(f"The batch size ({batch_size}) must divide by the number of "
                               f"processes ({self.count}): each process trains an equal share "
                               "of every batch, so choose a multiple of "
                               f"{self.count} or launch fewer processes.")
        wanted = (device or "auto").strip().lower()
        if wanted != "auto" and (wanted == "cpu") != self.cpu:
            where = "the CPU" if self.cpu else "the GPUs"
            raise InvalidInput(f"This run's device is '{wanted}', but the {self.count} "
                               f"processes were launched for {where}: set the device to "
                               "auto, or launch them for the other device.")

    def device(self, prefer: str | None) -> DeviceChoice:
        """The run's device; in a launch, the launcher's (one GPU per process)."""
        if not self.distributed:
            return pick_device(prefer)
        return pick_device("cpu" if self.cpu else f"cuda:{self.local_rank}")

    # -- the main process hands its run to the others ------------------------------------
    def _connect(self) -> None:
        """Join the process group (the launcher's rendezvous) through accelerate."""
        from accelerate import PartialState

        PartialState(cpu=self.cpu)

    def share(self, spec: Any) -> None:
        """Main process: send the run to train (None: there is none; the others stop)."""
        if not self.distributed or not self.main or self._shared:
            return
        from accelerate.utils import broadcast_object_list

        self._shared = True
        self._connect()
        broadcast_object_list([spec])

    def receive(self) -> Any:
        """Another process: wait for the main process's run (None: nothing to train)."""
        from accelerate.utils import broadcast_object_list

        self._connect()
        box: list[Any] = [None]
        broadcast_object_list(box)
        return box[0]

    def release(self) -> None:
        """Main process, once its command is over: the others, if still waiting for a
        run (the command failed before training), are told there is none."""
        self.share(None)

    def close(self) -> None:
        """Leave the process group (torch warns at exit otherwise)."""
        if self.distributed and torch.distributed.is_available() \
                and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def take(value: Any, rows: slice) -> Any:
    """The rows of a batch: tensors and lists along their first axis, dicts per key."""
    if isinstance(value, dict):
        return {key: take(item, rows) for key, item in value.items()}
    if isinstance(value, torch.Tensor | list | tuple):
        return value[rows]
    return value
