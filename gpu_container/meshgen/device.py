"""Where the learned model runs: CUDA when present, else the CPU; and at which precision."""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Precisions by name. Half precision only on CUDA: CPU kernels for it are slow or missing.
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Placement:
    """A torch device and the floating-point type the model's weights are cast to."""

    device: torch.device
    dtype: torch.dtype

    @property
    def kind(self) -> str:
        """``cuda`` or ``cpu``, as provenance records it."""
        return self.device.type


def cuda_available() -> bool:
    """Whether a usable CUDA device is present (a separate function so tests can mock it)."""
    return torch.cuda.is_available()


def select_device(requested: str = "auto", precision: str = "fp32") -> Placement:
    """Resolve ``requested`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) and ``precision``.

    ``auto`` picks CUDA when present, else the CPU. Half precision (``fp16``/``bf16``) is
    honoured on CUDA only; on the CPU it falls back to ``fp32``.

    Raises
    ------
    ValueError
        Unknown device or precision, or CUDA asked for where there is none.
    """
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {'|'.join(_DTYPES)}, not {precision!r}")
    if requested == "auto":
        device = torch.device("cuda" if cuda_available() else "cpu")
    else:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise ValueError(f"unknown torch device {requested!r}") from None
        if device.type not in {"cpu", "cuda"}:
            raise ValueError(f"device must be auto, cpu or cuda, not {requested!r}")
        if device.type == "cuda" and not cuda_available():
            raise ValueError(f"device {requested!r} asked for, but no CUDA device is present")
    dtype = _DTYPES[precision] if device.type == "cuda" else torch.float32
    return Placement(device, dtype)
