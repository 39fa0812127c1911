"""How long a run took and how much energy it used: measured where it can be, else a
clearly labelled estimate.

On NVIDIA GPUs with the optional `pynvml` module (pip install nvidia-ml-py) the GPU's
own energy counter (or, on older cards, sampled power draw) is read. Everywhere else
the figure is an estimate from CPU time or wall time times an assumed power, and says so.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

CPU_WATTS_PER_CORE = 15.0  # a desktop CPU's package power per busy core, roughly
GPU_ASSUMED_WATTS = 250.0  # a typical desktop GPU board under training load
MPS_ASSUMED_WATTS = 20.0


@dataclass
class EnergyReport:
    """The runs-table `energy` dict: wall_s, device, energy_wh, estimated, method."""

    wall_s: float
    device: str
    energy_wh: float
    estimated: bool
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EnergyReport | None:
        if not data:
            return None
        return cls(float(data.get("wall_s", 0)), str(data.get("device", "")),
                   float(data.get("energy_wh", 0)), bool(data.get("estimated", True)),
                   str(data.get("method", "")))

    def plus(self, earlier: EnergyReport | None) -> EnergyReport:
        """This session added to an earlier one (a resumed run counts both)."""
        if earlier is None:
            return self
        method = self.method if earlier.method == self.method else (
            f"{earlier.method}; then {self.method}")
        return EnergyReport(self.wall_s + earlier.wall_s, self.device,
                            self.energy_wh + earlier.energy_wh,
                            self.estimated or earlier.estimated, method)

    def summary(self) -> str:
        kind = "" if self.estimated else "measured: "  # an estimate's method says so itself
        return (f"{self.wall_s / 60:.1f} min on {self.device}; {self.energy_wh:.2f} Wh "
                f"({kind}{self.method})")


class _NvmlReader:
    """The GPU's energy counter (mJ) or, failing that, power samples integrated over time."""

    def __init__(self, index: int):
        import pynvml  # optional dependency

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self._start_mj = self._counter()
        self._joules = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self._start_mj is None:
            self._thread = threading.Thread(target=self._sample, daemon=True,
                                            name="style-studio-nvml")
            self._thread.start()

    def _counter(self) -> int | None:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # not supported before Volta
            return None

    def _sample(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.5):
            now = time.monotonic()
            try:
                watts = self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
            except Exception:
                continue
            self._joules += watts * (now - last)
            last = now

    def read(self) -> tuple[float, str]:
        if self._thread:
            return self._joules / 3600.0, "NVML power readings (sampled every 0.5 s)"
        end = self._counter() or self._start_mj or 0
        return (end - (self._start_mj or 0)) / 3.6e6, "NVML GPU energy counter"

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)


class EnergyMeter:
    """Start at the beginning of a training session, `stop()` at its end."""

    def __init__(self, device: str, label: str):
        self.device = device
        self.label = label
        self._t0 = time.monotonic()
        self._proc = psutil.Process()
        self._cpu0 = self._cpu_seconds()
        self._nvml: _NvmlReader | None = None
        if device.startswith("cuda"):
            try:
                index = int(device.split(":")[1]) if ":" in device else 0
                self._nvml = _NvmlReader(index)
            except Exception:  # pynvml missing or NVML unusable: estimate instead
                self._nvml = None

    def _cpu_seconds(self) -> float:
        times = self._proc.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> EnergyReport:
        """The final figures; the power sampler (if any) stops."""
        report = self.read()
        if self._nvml is not None:
            self._nvml.stop()
        return report

    def read(self) -> EnergyReport:
        """The figures so far, without stopping."""
        wall = time.monotonic() - self._t0
        if self._nvml is not None:
            wh, method = self._nvml.read()
            return EnergyReport(wall, self.label, wh, False, method + " (GPU only)")
        if self.device.startswith("cuda"):
            return EnergyReport(wall, self.label, GPU_ASSUMED_WATTS * wall / 3600, True,
                                f"estimate: assumed {GPU_ASSUMED_WATTS:.0f} W × wall time "
                                "(install nvidia-ml-py to measure)")
        if self.device == "mps":
            return EnergyReport(wall, self.label, MPS_ASSUMED_WATTS * wall / 3600, True,
                                f"estimate: assumed {MPS_ASSUMED_WATTS:.0f} W × wall time")
        cpu = max(0.0, self._cpu_seconds() - self._cpu0)
        return EnergyReport(wall, self.label, CPU_WATTS_PER_CORE * cpu / 3600, True,
                            f"estimate: assumed {CPU_WATTS_PER_CORE:.0f} W per busy CPU core "
                            "× this process's CPU time (no power meter on CPU)")
