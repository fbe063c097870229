"""Staged inference streams with known ground truth: the demo's input, and what the tests and benchmarks
replay. Each generator is seeded and reproducible to the byte, and says which stage each request belongs to
and what a monitor should find in it.

- `streams.iris`: the thesis's Iris experiment (normal / 10 % outliers / drift / 10 % outliers / normal);
- `streams.penguins`: mixed-type instances with gaps and the model's responses (`streams.penguin_model`);
- `streams.canary`: the penguins classifier's stable version and a canary side by side, every message naming
  its version;
- `streams.wide`: a synthetic Gaussian model of any width, with its baseline and spec.

`EXAMPLES` maps each example model to its generator; `example_for` finds the one whose model has a
spec's features (the job's default input when ``mmon run`` gets no ``--input``). ``mmon stream`` is
`streams.cli`. This layer imports `contract` and the numeric core `udfs`, never the job.
"""
from __future__ import annotations

from types import ModuleType
from typing import Optional, Sequence


def examples() -> dict[str, ModuleType]:
    """Example name -> its generator module (``FEATURES``, ``write_example``, ``main``)."""
    from streams import canary, iris, penguins

    return {"iris": iris, "penguins": penguins, "canary": canary}


def example_for(features: Sequence[str]) -> Optional[str]:
    """The example whose model has exactly these input features (in any order), or None."""
    wanted = set(features)
    return next((name for name, module in examples().items() if set(module.FEATURES) == wanted), None)
