"""What the package imports, pyproject.toml declares; torch's range admits the Makefile's pinned build.

(That the wheel carries the configs and runs from any folder: tests/e2e/test_wheel.py.)
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _requirements(extras: bool) -> list[Requirement]:
    reqs = list(PROJECT["dependencies"])
    if extras:
        reqs += [r for group in PROJECT["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in reqs]


def _imported_modules() -> set[str]:
    """Top-level names of every absolute import in semiad_cli (also those inside functions)."""
    names: set[str] = set()
    for path in (REPO / "semiad_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"semiad_cli", "__future__"}


def test_every_imported_distribution_is_declared() -> None:
    declared = {canonicalize_name(r.name) for r in _requirements(extras=True)}
    installed = metadata.packages_distributions()
    undeclared = {}
    for module in sorted(_imported_modules()):
        dists = {canonicalize_name(d) for d in installed.get(module, [])}
        if dists and not dists & declared:  # not installed here: nothing to map it to
            undeclared[module] = sorted(dists)
    assert not undeclared, f"imported but not in pyproject.toml's dependencies or extras: {undeclared}"


def test_torch_range_admits_the_makefile_pin_and_later_torch_2() -> None:
    torch_req = next(r for r in _requirements(extras=False) if r.name == "torch")
    pin = re.search(r"^TORCH_SPEC \?= torch==(\S+)", (REPO / "Makefile").read_text(), re.M)[1]
    assert torch_req.specifier.contains(pin), (pin, str(torch_req.specifier))
    assert torch_req.specifier.contains("2.14.0") and not torch_req.specifier.contains("3.0.0")
