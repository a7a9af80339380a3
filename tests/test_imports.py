"""The package rules of ARCHITECTURE.md, checked by walking every import with ast."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    # conversation/ stays pure: no I/O frameworks, no other package of ours
    "conversation": {
        "channels",
        "storage",
        "bot",
        "aiohttp",
        "sqlalchemy",
        "redis",
        "alembic",
        "wechatpy",
        "telegram",
    },
    "storage": {"channels", "bot"},
    "channels": {"storage", "bot"},
}
# What channels/ may take from conversation/: the message types only.
CHANNELS_MAY_USE = {"conversation.messages"}
STORAGE_MAY_USE = {
    "conversation.messages",
    "conversation.commands",
    "conversation.ports",
    "conversation.state",
    "conversation.codes",
    "conversation.cases",  # the case rules storage consults, with every module in it
}


def storage_may_use(name: str) -> bool:
    return any(name == allowed or name.startswith(f"{allowed}.") for allowed in STORAGE_MAY_USE)


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_packages_import_only_what_the_architecture_allows() -> None:
    broken = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imports_of(path):
                top = name.split(".")[0]
                if top in forbidden:
                    broken.append(f"{path.relative_to(ROOT)} imports {name}")
                if package == "channels" and top == "conversation" and name not in CHANNELS_MAY_USE:
                    broken.append(
                        f"{path.relative_to(ROOT)} imports {name} (channels see only conversation.messages)"
                    )
                if package == "storage" and top == "conversation" and not storage_may_use(name):
                    broken.append(
                        f"{path.relative_to(ROOT)} imports {name} (storage sees conversation types and ports)"
                    )
    assert not broken, "\n".join(broken)


def test_nothing_imports_bot() -> None:
    for package in ("conversation", "storage", "channels"):
        for path in (ROOT / package).rglob("*.py"):
            assert not any(n.split(".")[0] == "bot" for n in imports_of(path)), path


def test_case_rules_use_the_standard_library_only() -> None:
    """conversation/cases/ is what storage and bot consult: nothing but itself and the stdlib."""
    for path in (ROOT / "conversation" / "cases").rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                raise AssertionError(f"{path.name} reaches outside conversation/cases")
        for name in imports_of(path):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or name.startswith("conversation.cases"), (
                f"{path.relative_to(ROOT)} imports {name}"
            )


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every module of ours → the modules of ours it imports, wherever the import stands
    (inside functions and under TYPE_CHECKING too: a cycle hidden there is still a cycle)."""
    modules = {
        _module(path): path
        for package in ("bot", "channels", "conversation", "storage")
        for path in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_anywhere() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle_hidden_under_type_checking() -> None:
    graph = import_graph()
    graph["storage.db"].add("storage.uow")  # what `if TYPE_CHECKING: from .uow import …` adds
    assert ["storage.db", "storage.uow"] in cycles(graph)
