"""The deployment files parse and agree with the code: settings names, ports, extras, probes.

They need neither a container engine nor a cluster, so they run with the rest of the suite
and catch what would otherwise only show at deployment: a misspelt HABITUS_ variable, a
values key a template reads but nobody sets, a route to a PACS node that is not configured.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from pydantic_settings import BaseSettings

from habitus.config import Settings as CoreSettings
from habitus.jobs import DicomNode
from service.listener.config import ListenerSettings
from service.settings import ServiceSettings
from tests.conftest import REPO_ROOT
from worker.delivery import DeliverySettings
from worker.settings import WorkerSettings

yaml = pytest.importorskip("yaml", reason="the deployment files are parsed with PyYAML")

DOCKER = REPO_ROOT / "docker"
CHART = REPO_ROOT / "helm" / "habitus"


def env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {(prefix + name).upper() for name in settings.model_fields}


KNOWN_SETTINGS = set().union(
    *(
        env_names(s)
        for s in (CoreSettings, ServiceSettings, ListenerSettings, WorkerSettings, DeliverySettings)
    )
)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(load_yaml(DOCKER / "docker-compose.yml"))


def service_env(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def test_compose_services_and_their_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "api", "habitus-listener", "worker-cpu", "worker-gpu", "orthanc"} <= set(
        services
    )
    for name, service in services.items():
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file(), name
        for variable, value in service_env(service).items():
            if variable.startswith("HABITUS_") and variable != "HABITUS_LOG_LEVEL":
                assert variable in KNOWN_SETTINGS, f"{name}: {variable} is no Habitus setting"
            if variable == "HABITUS_DICOM_NODES":
                nodes = TypeAdapter(list[DicomNode]).validate_json(value)
                assert all(n.host in services for n in nodes), "a node host is no service"
    # the GPU worker asks for a GPU; the spool is shared by everything that reads or writes it
    gpu = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    for name in ("api", "habitus-listener", "worker-cpu", "worker-gpu"):
        assert "spool:/var/lib/habitus/spool" in services[name]["volumes"], name


def test_demo_pacs_routes_ct_to_the_listener(compose: dict[str, Any]) -> None:
    config = json.loads((DOCKER / "orthanc" / "orthanc.json").read_text())
    lua = (DOCKER / "orthanc" / "route-ct.lua").read_text()
    routed = re.findall(r"/modalities/([\w-]+)/store", lua)
    assert routed and all(m in config["DicomModalities"] for m in routed)
    assert "OnStableSeries" in lua and "'CT'" in lua
    ae_title, host, port = config["DicomModalities"][routed[0]]
    listener = compose["services"][host]
    env = service_env(listener)
    assert env["HABITUS_LISTENER_AE_TITLE"] == ae_title
    assert int(env["HABITUS_LISTENER_PORT"]) == port
    # results go back to the PACS: the node Habitus delivers to is this Orthanc
    nodes = TypeAdapter(list[DicomNode]).validate_json(env["HABITUS_DICOM_NODES"])
    assert (nodes[0].ae_title, nodes[0].port) == (config["DicomAet"], config["DicomPort"])
    mounted = compose["services"]["orthanc"]["volumes"]
    assert any(v.endswith(":/etc/orthanc/route-ct.lua:ro") for v in mounted)
    assert config["LuaScripts"] == ["/etc/orthanc/route-ct.lua"]


@pytest.mark.parametrize(
    ("dockerfile", "base", "extra"),
    [
        ("Dockerfile.api", "python:3.11-slim", "api"),
        ("Dockerfile.worker-cpu", "python:3.11-slim", "worker-cpu"),
        ("Dockerfile.worker-gpu", "nvidia/cuda:", "worker-gpu"),
    ],
)
def test_dockerfiles_install_the_right_extra(dockerfile: str, base: str, extra: str) -> None:
    text = (DOCKER / dockerfile).read_text()
    assert re.search(rf"^FROM {re.escape(base)}", text, re.MULTILINE)
    assert f'pip install ".[{extra}]"' in text
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extra in extras
    if extra == "api":  # the API image stays small: no inference runtime
        assert not any(re.match(r"(onnxruntime|torch)", d) for d in extras["api"])
    for copied in re.findall(r"^COPY (\S+)", text, re.MULTILINE):
        assert (REPO_ROOT / copied).exists(), copied


def test_helm_chart_values_cover_what_the_templates_read() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "habitus"
    values = load_yaml(CHART / "values.yaml")
    optional = {"listener.service.loadBalancerIP"}
    for template in (CHART / "templates").iterdir():
        text = template.read_text()
        assert text.count("{{") == text.count("}}"), template.name
        for path in re.findall(r"\.Values\.([\w.]+)", text):
            if path in optional:
                continue
            node: Any = values
            for part in path.split("."):
                assert isinstance(node, dict) and part in node, f"{template.name}: {path}"
                node = node[part]


def test_helm_settings_probes_and_gpu_requests() -> None:
    templates = CHART / "templates"
    for template in templates.iterdir():
        for variable in re.findall(r"HABITUS_\w+", template.read_text()):
            assert variable in KNOWN_SETTINGS, f"{template.name}: {variable}"
    api = (templates / "api.yaml").read_text()
    assert "path: /healthz" in api and "path: /readyz" in api
    worker = (templates / "worker.yaml").read_text()
    assert "nvidia.com/gpu:" in worker
    assert "persistentVolumeClaim" in (templates / "listener.yaml").read_text()
    assert "ReadWriteMany" in (CHART / "values.yaml").read_text()
