"""Reference implementations from installed third-party packages, for agreement tests.

pytorch-fid and lpips import torchvision at module level, which this CPU-only environment does not
have (the only torchvision wheels offered are CUDA builds that fail to import against torch+cpu).
The functions compared against are pure numpy/torch, so they are taken from the installed package's
own source file (parsed with ``ast`` and executed on their own): the code under test is the
package's, unchanged. Tests skip when the package is not installed (``pip install --no-deps
pytorch-fid lpips``, in the ``dev`` extra).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"reference package {package} is not installed (pip install --no-deps {package})")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def functions_from(package: str, relative: str, names: list[str], namespace: dict) -> SimpleNamespace:
    """The top-level functions ``names`` of ``package/relative``, executed in ``namespace``."""
    path = _package_file(package, relative)
    tree = ast.parse(path.read_text())
    wanted = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    missing = set(names) - {n.name for n in wanted}
    if missing:
        pytest.fail(f"{path} has no function(s) {sorted(missing)}")
    ns = dict(namespace)
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(path), "exec"), ns)
    return SimpleNamespace(**{n: ns[n] for n in names}, source=str(path))
