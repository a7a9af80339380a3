"""The files an operator installs: systemd units that systemd accepts and rates as well
confined, and a container image and compose file that name only settings Minyi knows.

No container engine can build the image on the development machine or in CI (no registry of
base images is reachable from them); docs/deploying.md says so. What can be checked without one
is checked here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.app.settings import CHANNEL_SPECS, CORE_SPECS

from .conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
# Read by what is not a Minyi setting: the image's port.
NOT_SETTINGS = {"MINYI_PORT"}
KNOWN = {spec.env for spec in (*CORE_SPECS, *CHANNEL_SPECS.values())} | NOT_SETTINGS


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        reason = "systemd-analyze is not installed (Debian: systemd)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """The units as installed, with ExecStart pointing at a program that exists here (systemd
    checks that it does)."""
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/opt/minyi/venv/bin/minyi", sys.executable)
        (tmp_path / unit.name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("unit", ["minyi-web@8081.service", "minyi-worker.service"])
def test_systemd_accepts_the_units_and_rates_them_well_confined(installed: Path, unit: str) -> None:
    analyze = systemd_analyze()
    verified = subprocess.run(
        [analyze, "verify", "--man=no", str(installed / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=installed,
    )
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(installed / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=installed,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", security.stdout)
    assert found, security.stdout + security.stderr
    # 0 is a unit that can touch nothing, 10 an unconfined one; under 2 is rated "OK".
    assert float(found.group(1)) <= 2.0, security.stdout


def test_every_unit_runs_as_minyi_and_restarts() -> None:
    for name in ("minyi-web@.service", "minyi-worker.service"):
        text = (UNITS / name).read_text()
        for line in (
            "User=minyi",
            "Restart=on-failure",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "EnvironmentFile=/etc/minyi/minyi.env",
        ):
            assert f"\n{line}\n" in text, (name, line)
    wanted = (UNITS / "minyi.target").read_text()
    assert "minyi-web@8081.service minyi-web@8082.service minyi-worker.service" in wanted
    nginx = (ROOT / "deploy" / "nginx" / "minyi.conf").read_text()
    assert "server 127.0.0.1:8081 " in nginx and "server 127.0.0.1:8082 " in nginx


def _settings_named(text: str) -> set[str]:
    return set(re.findall(r"\bMINYI_[A-Z0-9_]+", text))


def test_the_image_and_compose_name_only_known_settings() -> None:
    for name in ("Dockerfile", "compose.yaml", "deploy/compose.env.example"):
        unknown = _settings_named((ROOT / name).read_text()) - KNOWN
        assert not unknown, f"{name} sets what Minyi does not read: {sorted(unknown)}"


def test_the_image_runs_unprivileged_and_checks_readiness() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    final = dockerfile.rsplit("\nFROM ", 1)[1]  # the image that ships, not the build stage
    # Served on uvloop with hiredis, as the README's Speed figures are measured.
    assert "install --no-cache-dir '.[speed]'" in dockerfile
    assert final.startswith("python:3.11-slim")
    assert re.search(r"^USER minyi:minyi$", final, re.M)
    assert "/readyz" in final.split("HEALTHCHECK", 1)[1]
    ignored = (ROOT / ".dockerignore").read_text().split()
    for secret in ("*.key", "*.db", ".env", "*.backup"):
        assert secret in ignored


def test_compose_has_the_production_shape() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web1", "web2", "worker", "nginx"} <= set(services)
    for web in ("web1", "web2"):
        assert services[web]["network_mode"] == "service:nginx"
        assert services[web]["read_only"] is True and services[web]["cap_drop"] == ["ALL"]
        assert services[web]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    ports = {services[web]["environment"]["MINYI_PORT"] for web in ("web1", "web2")}
    assert ports == {"8081", "8082"}  # where deploy/nginx/minyi.conf sends
    assert services["worker"]["command"] == ["minyi", "worker"]
    assert services["migrate"]["command"] == ["minyi", "db", "upgrade"]
