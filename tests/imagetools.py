"""The image's Python tools (images/patroni/pc-*, files without a .py suffix) as modules, for
the unit tests of their pure parts."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

IMAGE_DIR = Path(__file__).resolve().parents[1] / "images" / "patroni"


def load_image_tool(name: str) -> ModuleType:
    module_name = name.replace("-", "_")
    loader = importlib.machinery.SourceFileLoader(module_name, str(IMAGE_DIR / name))
    spec = importlib.util.spec_from_loader(module_name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while executing it
    loader.exec_module(module)
    return module
