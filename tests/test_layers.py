"""One direction of dependencies: every module's imports (read from its syntax tree, deferred imports and
type-checking imports included) go down the layers, never up or sideways.

    contract <- udfs <- streams <- flink_job <- {inference_logger, operator_glue, report} <- devtools
             <- benchmarks <- mmon <- {tests, scripts, examples}

A package may import itself and any package of a lower layer. `LAYERS` is the one statement of the order;
the README's architecture section draws it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS: tuple[tuple[str, ...], ...] = (
    ("contract",),
    ("udfs",),
    ("streams",),
    ("flink_job",),
    ("inference_logger", "operator_glue", "report"),
    ("devtools",),
    ("benchmarks",),
    ("mmon",),
    ("tests", "scripts", "examples"),
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
TOP_LEVEL_TEST_HELPERS = {path.stem for path in (ROOT / "tests").glob("*.py")}  # tests import each other by name


def imported_packages(source: str) -> set[str]:
    """The top-level names of every module a source imports (absolute imports; relative ones stay inside)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def violations(package: str, source: str) -> list[str]:
    """The imports of a module of ``package`` that go against `LAYERS`: into a higher layer, or sideways
    into another package of its own layer."""
    own = RANK[package]
    return sorted(f"{package} imports {other} (layer {RANK[other]} > {own})" if RANK[other] > own
                  else f"{package} imports {other} (same layer {own}: sideways)"
                  for other in imported_packages(source) & RANK.keys()
                  if other != package and RANK[other] >= own)


def project_modules() -> list[tuple[str, Path]]:
    return [(package, path) for package in RANK for path in sorted((ROOT / package).rglob("*.py"))
            if ".venv" not in path.parts]


def test_every_package_of_the_repo_has_a_layer():
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert packages <= RANK.keys(), f"packages without a layer: {sorted(packages - RANK.keys())}"


@pytest.mark.parametrize("package", sorted(RANK))
def test_imports_flow_down_the_layers(package):
    found = {str(path.relative_to(ROOT)): violations(package, path.read_text(encoding="utf-8"))
             for name, path in project_modules() if name == package}
    assert found, f"no modules found for {package}"
    assert {path: bad for path, bad in found.items() if bad} == {}


@pytest.mark.parametrize("package, source, expected", [
    ("contract", "from flink_job import windows", ["contract imports flink_job (layer 3 > 0)"]),
    ("udfs", "def f():\n    import streams.iris\n", ["udfs imports streams (layer 2 > 1)"]),
    ("report", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from operator_glue import crd\n",
     ["report imports operator_glue (same layer 4: sideways)"]),
    ("flink_job", "from contract import formats\nfrom udfs import drift\nimport numpy", []),
])
def test_the_check_sees_upward_sideways_deferred_and_type_checking_imports(package, source, expected):
    assert violations(package, source) == expected
