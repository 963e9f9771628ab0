"""A CPU "accelerator" for verl 0.9.1, used only by `memalpha train step-check`.

verl asks its platform singleton (`verl.plugin.platform.get_platform`) for the device name, the
torch device module, the collective backend and the current device; it knows CUDA, NPU and ROCm,
and on a machine without any of them falls back to CUDA. Registering this class through verl's
`PlatformRegistry` and selecting it with `use_cpu_platform()` before any verl module that asks
(the engine, the workers) is imported lets verl's own FSDP2 engine run one update on CPU with gloo.
Nothing else in the recipe uses it: it never takes part in auto-detection (see
`is_platform_available`), so a GPU machine picks CUDA as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry, get_platform

NAME = "cpu"


@PlatformRegistry.register(platform=NAME)
class PlatformCPU(PlatformBase):
    """The host CPU as one device: gloo for collectives, no profiler, no IPC, no Ray accelerator."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return torch.cpu

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return False  # never auto-detected: only `use_cpu_platform()` selects it

    def current_device(self) -> Any:
        return "cpu"  # verl moves tensors with `.to(current_device())`: "cpu", not the index 0 (cuda:0)

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: int | None = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"  # nothing to hide: set to keep verl's env handling uniform

    @contextmanager
    def nvtx_range(self, msg: str) -> Iterator[None]:
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        return "CPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def use_cpu_platform() -> PlatformBase:
    """Select the CPU platform for this process (verl's own `VERL_PLATFORM` override) before verl
    resolves one: several verl modules read the device name when they are imported, so call this
    before importing the engine. Idempotent; an error if verl already settled on another platform."""
    os.environ["VERL_PLATFORM"] = NAME
    platform = get_platform()
    if not isinstance(platform, PlatformCPU):
        raise RuntimeError(
            f"verl already chose the {platform.device_name!r} platform in this process; select the CPU "
            "platform before importing verl's engine or workers"
        )
    return platform
