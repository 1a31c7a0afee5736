"""Print the API's OpenAPI document as YAML: ``python -m service.api.openapi > openapi.yaml``."""

from __future__ import annotations

import sys
from typing import Any

import yaml

from habitus.settings import default_settings
from service.api.app import create_app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of an app with default settings (independent of the environment)."""
    return create_app(default_settings()).openapi()


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks, so descriptions read as written."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def openapi_yaml() -> str:
    return yaml.dump(
        openapi_document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )


if __name__ == "__main__":
    sys.stdout.write(openapi_yaml())
