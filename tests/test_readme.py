"""The README: its settings table lists every setting the code reads; its commands hold."""

import re

import pytest
from pydantic_settings import BaseSettings

from habitus.config import Settings
from service.listener.config import ListenerSettings
from service.settings import ServiceSettings
from tests.conftest import REPO_ROOT
from worker.delivery import DeliverySettings
from worker.settings import WorkerSettings

SETTINGS_CLASSES: list[type[BaseSettings]] = [
    Settings,
    ServiceSettings,
    ListenerSettings,
    WorkerSettings,
    DeliverySettings,
]


def documented_variables() -> set[str]:
    """Every HABITUS_ variable named in the first cell of a README table row."""
    text = (REPO_ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (.*?) \|", text, flags=re.MULTILINE)
    return {name for row in rows for name in re.findall(r"`(HABITUS_[A-Z0-9_]+)`", row)}


@pytest.mark.parametrize("settings", SETTINGS_CLASSES, ids=lambda c: c.__name__)
def test_every_setting_is_in_the_readme_table(settings: type[BaseSettings]) -> None:
    prefix = str(settings.model_config.get("env_prefix", ""))
    expected = {f"{prefix}{name}".upper() for name in settings.model_fields}
    assert expected - documented_variables() == set()


def test_the_test_command_installs_torch_s_cpu_build_first() -> None:
    """On Linux x86-64, PyPI's torch is the CUDA build (gigabytes of NVIDIA packages): the
    README's test command takes torch from PyTorch's CPU wheels before the extras that pin it."""
    text = (REPO_ROOT / "README.md").read_text()
    cpu_torch = re.search(r"pip install torch==(\S+) --index-url \S+/whl/cpu", text)
    extras = text.find("pip install -e '.[api,cpu,train,dev]'")
    assert cpu_torch is not None and 0 <= cpu_torch.start() < extras
    pinned = re.search(r'"torch==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    assert pinned is not None and pinned.group(1) == cpu_torch.group(1)
