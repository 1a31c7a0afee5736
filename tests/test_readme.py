"""The README: its settings table and the settings model agree; its commands hold."""

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from habitus.settings import default_value, environment_variables
from tests.conftest import REPO_ROOT

GIB = 1024**3
# a default the README describes rather than spells: the field is unset (None) and the code
# puts the bundled models, or a folder under another setting's, in its place
DESCRIBED = re.compile(r"bundled `[^`]*`|`\$HABITUS_[A-Z_]+[^`]*`")
DEFAULT = re.compile(rf"{DESCRIBED.pattern}|`[^`]*`|\d+ GiB|unset")


def settings_table() -> dict[str, str]:
    """Each HABITUS_ variable of the README's settings table, with its default as written."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("### Settings", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for names, defaults in re.findall(r"^\| (.*?) \| (.*?) \|", section, flags=re.MULTILINE):
        variables = re.findall(r"`(HABITUS_[A-Z0-9_]+)`", names)
        written = DEFAULT.findall(defaults)
        if len(written) == 1:  # one default for every variable of the row
            written *= len(variables)
        assert len(written) == len(variables), f"defaults {defaults!r} for {variables}"
        table.update(zip(variables, written, strict=True))
    return table


def documented_default(field: FieldInfo, written: str) -> Any:
    """What the README's ``written`` default means for ``field``, read as the model reads
    a variable (JSON for numbers, booleans, lists and maps; else the text)."""
    if written == "unset" or DESCRIBED.fullmatch(written):
        return None
    if gib := re.fullmatch(r"(\d+) GiB", written):
        return int(gib.group(1)) * GIB
    text = written.strip("`")
    adapter: TypeAdapter[Any] = TypeAdapter(field.annotation)
    try:
        value = adapter.validate_json(text)
    except ValidationError:
        value = adapter.validate_python(text)
    return value.expanduser() if isinstance(value, Path) else value


SETTINGS = {variable.name: variable.info for variable in environment_variables()}


def test_every_setting_of_the_model_is_in_the_readme_table() -> None:
    assert set(SETTINGS) - set(settings_table()) == set()


def test_every_variable_of_the_readme_table_is_a_setting_of_the_model() -> None:
    assert set(settings_table()) - set(SETTINGS) == set()


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_readme_gives_each_setting_its_default(name: str) -> None:
    written = settings_table().get(name)
    assert written is not None, f"{name} is not documented"
    field = SETTINGS[name]
    assert documented_default(field, written) == default_value(field), f"{name}: {written}"


def test_the_table_reader_sees_wrong_defaults() -> None:
    field = SETTINGS["HABITUS_MAX_UPLOAD_BYTES"]
    assert documented_default(field, "4 GiB") == default_value(field)
    assert documented_default(field, "3 GiB") != default_value(field)
    listener_spool = SETTINGS["HABITUS_LISTENER_SPOOL_DIR"]
    assert documented_default(listener_spool, "`$HABITUS_SPOOL_DIR/dicom`") is None
    modalities = SETTINGS["HABITUS_LISTENER_STORED_MODALITIES"]
    assert documented_default(modalities, '`["CT"]`') != default_value(modalities)


def test_the_test_command_installs_torch_s_cpu_build_first() -> None:
    """On Linux x86-64, PyPI's torch is the CUDA build (gigabytes of NVIDIA packages): the
    README's test command takes torch from PyTorch's CPU wheels before the extras that pin it."""
    text = (REPO_ROOT / "README.md").read_text()
    cpu_torch = re.search(r"pip install torch==(\S+) --index-url \S+/whl/cpu", text)
    extras = text.find("pip install -e '.[api,cpu,train,dev]'")
    assert cpu_torch is not None and 0 <= cpu_torch.start() < extras
    pinned = re.search(r'"torch==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    assert pinned is not None and pinned.group(1) == cpu_torch.group(1)
