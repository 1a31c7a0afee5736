"""The compose file and the Dockerfiles parse and agree with the code (settings names, ports,
extras) and keep their safe defaults (no default key or password, non-root, read-only).

They need neither a container engine nor a cluster, so they run with the rest of the suite
and catch what would otherwise only show at deployment: a misspelt HABITUS_ variable, a
route to a PACS node that is not configured. The Helm chart is rendered in test_helm.py.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from habitus.nodes import DicomNode
from habitus.settings import Settings, environment_variables
from tests.conftest import REPO_ROOT

yaml = pytest.importorskip("yaml", reason="the deployment files are parsed with PyYAML")

DOCKER = REPO_ROOT / "docker"
CHART = REPO_ROOT / "helm" / "habitus"


VARIABLES = {variable.name: variable for variable in environment_variables()}


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
                assert variable in VARIABLES, f"{name}: {variable} is no Habitus setting"
            if variable == "HABITUS_DICOM_NODES":
                nodes = TypeAdapter(list[DicomNode]).validate_json(value)
                assert all(n.host in services for n in nodes), "a node host is no service"
    # the GPU worker asks for a GPU; the spool is shared by everything that reads or writes it
    gpu = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    for name in ("api", "habitus-listener", "worker-cpu", "worker-gpu"):
        assert "spool:/var/lib/habitus/spool" in services[name]["volumes"], name


def test_demo_pacs_routes_ct_and_pet_to_the_listener(compose: dict[str, Any]) -> None:
    config = json.loads((DOCKER / "orthanc" / "orthanc.json").read_text())
    lua = (DOCKER / "orthanc" / "route.lua").read_text()
    routed = re.findall(r"/modalities/([\w-]+)/store", lua)
    assert routed and all(m in config["DicomModalities"] for m in routed)
    assert "OnStableSeries" in lua and "'CT'" in lua and "'PT'" in lua
    ae_title, host, port = config["DicomModalities"][routed[0]]
    listener = compose["services"][host]
    env = service_env(listener)
    assert env["HABITUS_LISTENER_AE_TITLE"] == ae_title
    assert int(env["HABITUS_LISTENER_PORT"]) == port
    # results go back to the PACS: the node Habitus delivers to is this Orthanc
    nodes = TypeAdapter(list[DicomNode]).validate_json(env["HABITUS_DICOM_NODES"])
    assert (nodes[0].ae_title, nodes[0].port) == (config["DicomAet"], config["DicomPort"])
    mounted = compose["services"]["orthanc"]["volumes"]
    assert any(v.endswith(":/etc/orthanc/route.lua:ro") for v in mounted)
    assert config["LuaScripts"] == ["/etc/orthanc/route.lua"]


@pytest.mark.parametrize(
    ("dockerfile", "base", "extra"),
    [
        ("Dockerfile.api", "debian:bookworm-slim", "api"),
        ("Dockerfile.worker-cpu", "debian:bookworm-slim", "worker-cpu"),
        ("Dockerfile.worker-gpu", "debian:bookworm-slim", "worker-gpu"),
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


HABITUS_SERVICES = ("api", "habitus-listener", "worker-cpu", "worker-gpu")


def test_compose_has_no_default_key_or_password(compose: dict[str, Any]) -> None:
    """Compose refuses to start (${VAR:?message}) until the operator sets both."""
    services = compose["services"]
    api_keys = service_env(services["api"])["HABITUS_API_KEYS"]
    assert api_keys == '{"demo": "${HABITUS_API_KEY:?set HABITUS_API_KEY}"}'
    for name in HABITUS_SERVICES:
        url = service_env(services[name])["HABITUS_REDIS_URL"]
        assert url.startswith("redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD}@redis:"), name
    redis = services["redis"]
    assert service_env(redis)["REDISCLI_AUTH"] == "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
    assert '--requirepass "$$REDISCLI_AUTH"' in " ".join(redis["command"])
    # redis-cli exits 0 on NOAUTH: a health check must look for the PONG
    assert "grep -q PONG" in " ".join(redis["healthcheck"]["test"])
    text = (DOCKER / "docker-compose.yml").read_text()
    assert "change-me" not in text


def dockerfile_user(dockerfile: str) -> str:
    users = re.findall(r"^USER (\S+)\s*$", (DOCKER / dockerfile).read_text(), re.MULTILINE)
    assert users, f"{dockerfile} runs as root"
    return users[-1]


@pytest.mark.parametrize(
    "dockerfile", ["Dockerfile.api", "Dockerfile.worker-cpu", "Dockerfile.worker-gpu"]
)
def test_dockerfiles_run_as_a_numeric_non_root_user(dockerfile: str) -> None:
    user, _, group = dockerfile_user(dockerfile).partition(":")
    # numeric: Kubernetes can check runAsNonRoot only on a numeric user
    assert user.isdigit() and int(user) > 0 and group.isdigit(), dockerfile
    text = (DOCKER / dockerfile).read_text()
    assert f"--uid {user} --gid {group}" in text and f"chown -R {user}:{group}" in text


def test_compose_containers_are_locked_down(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (*HABITUS_SERVICES, "redis"):
        service = services[name]
        user = str(service["user"])
        assert not user.startswith(("0", "root")), name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
    for name in HABITUS_SERVICES:
        service = services[name]
        image = {"habitus-api": "Dockerfile.api"}.get(service["image"], "Dockerfile." + name)
        assert service["user"] == dockerfile_user(image), name
        assert "/tmp" in service["tmpfs"], name  # the only writable path besides the spool
    for name in ("worker-cpu", "worker-gpu"):  # a running job (up to 1 h) ends before a stop
        assert services[name]["stop_grace_period"] == "61m"


# -- what a compose user sets ------------------------------------------------------------------

DEFAULTED = re.compile(r"^\$\{(HABITUS_\w+):-(.*)\}$")  # ${NAME:-default}, as compose reads it
SITE_SETTINGS = {
    "api": {"HABITUS_REDIS_PREFIX", "HABITUS_RETENTION_DAYS", "HABITUS_RETENTION_DISK_PERCENT"},
    "habitus-listener": {
        "HABITUS_REDIS_PREFIX",
        "HABITUS_LISTENER_STORED_MODALITIES",
        "HABITUS_LISTENER_MAX_ASSOCIATIONS",
        "HABITUS_LISTENER_MAX_ASSOCIATIONS_PER_HOST",
        "HABITUS_LISTENER_MAX_ASSOCIATION_BYTES",
        "HABITUS_LISTENER_MAX_ASSOCIATION_INSTANCES",
        "HABITUS_LISTENER_SPOOL_MAX_BYTES",
        "HABITUS_LISTENER_SPOOL_MIN_FREE_BYTES",
    },
    "worker-cpu": {"HABITUS_REDIS_PREFIX", "HABITUS_MAX_ATTEMPTS", "HABITUS_REDIS_OUTAGE_S"},
    "worker-gpu": {"HABITUS_REDIS_PREFIX", "HABITUS_MAX_ATTEMPTS", "HABITUS_REDIS_OUTAGE_S"},
}


def loaded_value(name: str, value: str | None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The setting ``name`` as the settings model reads it from ``value`` (None: unset)."""
    variable = VARIABLES.get(name)
    if variable is None:
        raise AssertionError(f"{name} is no Habitus setting")
    with monkeypatch.context() as patched:
        if value is None:
            patched.delenv(name, raising=False)
        else:
            patched.setenv(name, value)
        return variable.value(Settings())


def test_compose_passes_site_settings_with_the_products_defaults(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each is taken from the shell (${NAME:-default}), its default the product's own."""
    services = compose["services"]
    for service, names in SITE_SETTINGS.items():
        env = service_env(services[service])
        for name in names:
            match = DEFAULTED.match(env.get(name, ""))
            assert match and match.group(1) == name, f"{service}: {name} is not passed through"
            default = loaded_value(name, match.group(2), monkeypatch)
            assert default == loaded_value(name, None, monkeypatch), f"{service}: {name}"
    listener = services["habitus-listener"]["environment"]
    assert listener["HABITUS_LISTENER_NODE_CERTIFICATES"] is None  # from the shell, if set
    assert loaded_value("HABITUS_LISTENER_STORED_MODALITIES", None, monkeypatch) == ["CT", "PT"]


def test_compose_mounts_node_tls_files_where_delivery_reads_them(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("habitus-listener", "worker-cpu", "worker-gpu"):
        (mount,) = [v for v in services[name]["volumes"] if ":/etc/habitus/node-tls" in v]
        # a folder of the host, or else an empty volume
        assert mount == "${NODE_TLS_DIR:-node-tls}:/etc/habitus/node-tls:ro", name
    assert "node-tls" in compose["volumes"]
    audit = service_env(services["api"])["HABITUS_AUDIT_LOG_FILE"]
    assert audit.startswith("/var/lib/habitus/spool/")  # writable: the root is read-only


def test_compose_api_and_listener_are_healthy_when_ready(compose: dict[str, Any]) -> None:
    for name in ("api", "habitus-listener"):
        check = compose["services"][name]["healthcheck"]
        assert check["test"] == ["CMD", "python", "-m", "service.healthcheck", "--ready"], name
