"""The documentation keeps up with the code: every setting is explained somewhere a reader looks."""

from __future__ import annotations

from pathlib import Path

from bot.app.settings import CHANNEL_SPECS, CORE_SPECS

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "".join(page.read_text("utf-8") for page in pages)
    names = {spec.env for spec in (*CORE_SPECS, *CHANNEL_SPECS.values())}
    assert sorted(name for name in names if f"`{name}`" not in text) == []


def test_every_guide_the_readme_links_exists() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, f"docs/{page.name} is not in the README's guides"
