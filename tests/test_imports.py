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
