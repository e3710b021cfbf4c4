"""Collection for the whole repository (tests and the packages' doctests).

``cistheory.flower``'s Flower modules and the Flower tests' helpers import Flower, the
optional extra ``cistheory[flower]`` (installed by the README's set-up command and CI): without
it they are not collected (the Flower test modules skip themselves).
"""

from __future__ import annotations

import importlib.util

collect_ignore: list[str] = []
if importlib.util.find_spec("flwr") is None:
    collect_ignore += [
        "cistheory/flower/_records.py",
        "cistheory/flower/apps.py",
        "cistheory/flower/strategy.py",
        "tests/flower_support.py",
    ]
