"""Each service module exports an explicit `__all__`: the public names that pages, the CLI, other
services, tests and benchmarks use. A name used from outside a module is in its `__all__` (or
private, as a test may reach for); every name listed is defined there."""

from __future__ import annotations

import ast
import importlib

from tests.conftest import ROOT

SERVICES = sorted(
    p.stem for p in (ROOT / "review_app" / "services").glob("*.py") if p.stem != "__init__"
)


def used_names() -> dict[str, set[tuple[str, str]]]:
    """service module -> (name, file) for every name another file takes from it."""
    used: dict[str, set[tuple[str, str]]] = {name: set() for name in SERVICES}
    for folder in ("review_app", "tests", "bench", "judge"):
        for path in (ROOT / folder).rglob("*.py"):
            where = str(path.relative_to(ROOT))
            own = path.stem if path.parent.name == "services" else None
            tree = ast.parse(path.read_text(encoding="utf-8"))
            aliases: dict[str, str] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == "review_app.services":
                    aliases |= {a.asname or a.name: a.name for a in node.names}
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "review_app.services."
                ):
                    module = node.module.rsplit(".", 1)[1]
                    if module != own:
                        used[module] |= {(a.name, where) for a in node.names}
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and aliases.get(node.value.id) in used
                    and aliases[node.value.id] != own
                ):
                    used[aliases[node.value.id]].add((node.attr, where))
    return used


def test_every_service_module_lists_its_public_names():
    used = used_names()
    for name in SERVICES:
        module = importlib.import_module(f"review_app.services.{name}")
        exported = module.__all__
        assert exported == sorted(exported), name
        assert all(hasattr(module, n) and not n.startswith("_") for n in exported), name
        missing = sorted((n, where) for n, where in used[name] if n[0] != "_" and n not in exported)
        assert not missing, f"{name}: used from outside but not in __all__: {sorted(missing)}"
