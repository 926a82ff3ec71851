"""The image's Python tools as modules, for the unit tests of their pure parts. Each is a
module images/patroni/pc_x.py that the Dockerfile installs as the command pc-x."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

IMAGE_DIR = Path(__file__).resolve().parents[1] / "images" / "patroni"


def tool_module_path(command: str) -> Path:
    """The module the image installs as `command`: pc-crash-watch is pc_crash_watch.py."""
    return IMAGE_DIR / f"{command.replace('-', '_')}.py"


def load_image_tool(command: str) -> ModuleType:
    path = tool_module_path(command)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up while executing it
    spec.loader.exec_module(module)
    return module
