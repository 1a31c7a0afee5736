"""The Helm chart as a cluster would get it: rendered by Helm itself (helm-python-sdk, Helm's
Go library without a helm binary) and every manifest validated against the Kubernetes API
schemas (kubernetes-validate, strict: unknown fields are errors), offline.

Beside validity, the rendered manifests are checked for the chart's safe defaults: no default
API key, a Redis that requires a password from a Secret, no secret in a ConfigMap, locked-down
containers, NetworkPolicies, a worker grace period that outlasts the longest job, and no GPU
needed unless asked for.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, missing
from tests.e2e.test_deploy_files import VARIABLES, load_yaml

yaml = pytest.importorskip("yaml", reason="the manifests are parsed with PyYAML")

CHART = REPO_ROOT / "helm" / "habitus"
DOCKER = REPO_ROOT / "docker"
KUBERNETES = "1.30.0"  # a version whose schemas kubernetes-validate ships
RELEASE = "habitus"
KEY = "k" * 32

Values = dict[str, Any]
Manifest = dict[str, Any]


def merged(*layers: Values) -> Values:
    """Deep merge of values layers, later ones winning (as helm's -f files do)."""
    result: Values = {}
    for layer in layers:
        for name, value in layer.items():
            if isinstance(value, dict) and isinstance(result.get(name), dict):
                result[name] = merged(result[name], value)
            else:
                result[name] = copy.deepcopy(value)
    return result


WITH_KEY: Values = {"apiKey": {"keys": {"ris": KEY}}}
GPU: Values = merged(
    WITH_KEY, {"worker": {"gpu": {"enabled": True, "gpusPerPod": 2}, "cpu": {"enabled": False}}}
)
EXISTING_SECRETS: Values = {
    "apiKey": {"existingSecret": "site-api-keys"},
    "redis": {"auth": {"existingSecret": "site-redis"}},
}
EXTERNAL_REDIS: Values = merged(
    WITH_KEY, {"redis": {"enabled": False, "external": {"url": "redis://:s3cr3t-s3cr3t@r:6379/0"}}}
)
CA_FILE = "/etc/habitus/node-tls/pacs-ca.crt"
# what a site sets: retention, a Redis prefix of its own, listener limits, node certificates
# over client-certificate TLS, delivery over TLS with files from a Secret
SITE: Values = merged(
    WITH_KEY,
    {
        "dicomNodes": [
            {
                "name": "pacs",
                "ae_title": "PACS",
                "host": "pacs.hospital.local",
                "port": 2762,
                "tls": True,
                "tls_ca_file": CA_FILE,
            }
        ],
        "nodeTls": {"secretName": "site-node-tls"},
        "redisPrefix": "clinic-a:",
        "api": {"retention": {"days": 30, "diskPercent": 85}},
        "listener": {
            "maxAssociationsPerHost": 4,
            "maxAssociationBytes": 8 * 1024**3,
            "spoolMaxBytes": 100 * 1024**3,
            "nodeCertificates": {"pacs": "cn:pacs.hospital.local"},
            "tls": {"secretName": "site-listener-tls", "requireClientCertificates": True},
        },
        "worker": {"maxAttempts": 2, "redisOutageS": 120},
    },
)
VALUE_SETS = {
    "defaults": WITH_KEY,
    "site": SITE,
    "gpu": GPU,
    "existing-secrets": EXISTING_SECRETS,
    "external-redis": EXTERNAL_REDIS,
}


class Renderer:
    def __init__(self, helm: ModuleType) -> None:
        self.helm = helm
        self.chart = helm.Chart.load(CHART)

    def render(self, values: Values | None) -> list[Manifest]:
        out = self.chart.render(values=values, name=RELEASE, namespace="clinic")
        return [m for text in out.values() for m in yaml.safe_load_all(text) if m]

    def refusal(self, values: Values | None) -> str:
        """The message of a render that must fail."""
        with pytest.raises(self.helm.HelmRenderError) as refused:
            self.render(values)
        return str(refused.value)


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    try:
        import helm_python
    except ImportError:
        missing("helm-python-sdk is not installed (pip install -e '.[dev]'): cannot render")
    rendered = Renderer(helm_python)
    yield rendered
    rendered.chart.close()


@pytest.fixture(scope="module")
def defaults(renderer: Renderer) -> list[Manifest]:
    return renderer.render(WITH_KEY)


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[Manifest], kind: str, suffix: str) -> Manifest:
    (found,) = [m for m in of_kind(manifests, kind) if m["metadata"]["name"].endswith(suffix)]
    return found


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] in ("Deployment", "StatefulSet")]


def containers(workload: Manifest) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def secret_values(secret: Manifest) -> dict[str, str]:
    values = dict(secret.get("stringData", {}))
    values.update({k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()})
    return values


def secret_ref(entry: dict[str, Any]) -> tuple[str, str]:
    ref = entry["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) applied to labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
        if operator == "NotIn" and labels.get(key) in expression["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def pod_labels(workload: Manifest) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def policies_for(manifests: list[Manifest], workload: Manifest) -> list[Manifest]:
    labels = pod_labels(workload)
    return [
        p for p in of_kind(manifests, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)
    ]


# -- valid for the Kubernetes API -------------------------------------------------------------


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_manifest_validates(renderer: Renderer, values: Values) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        missing("kubernetes-validate is not installed (pip install -e '.[dev]')")
    manifests = renderer.render(values)
    assert {"Deployment", "Service", "ConfigMap", "NetworkPolicy"} <= {m["kind"] for m in manifests}
    for manifest in manifests:
        # raises ValidationError naming the field; strict: unknown fields are errors too
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_helm_lint_finds_nothing(renderer: Renderer) -> None:
    report = renderer.helm.lint(CHART, WITH_KEY, strict=True, kube_version=f"v{KUBERNETES}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_settings_and_probes_as_rendered(defaults: list[Manifest]) -> None:
    config = named(defaults, "ConfigMap", "-config")["data"]
    assert set(config) <= set(VARIABLES)
    for workload in workloads(defaults):
        for container in containers(workload):
            for name in env_of(container):
                if name.startswith("HABITUS_"):
                    assert name in VARIABLES, f"{workload['metadata']['name']}: {name}"
    api = containers(named(defaults, "Deployment", "-api"))[0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (spool,) = of_kind(defaults, "PersistentVolumeClaim")
    assert spool["spec"]["accessModes"] == ["ReadWriteMany"]


# -- no GPU needed unless asked for -----------------------------------------------------------


def gpu_requests(workload: Manifest) -> list[Any]:
    limits = [c.get("resources", {}).get("limits", {}) for c in containers(workload)]
    return [limit["nvidia.com/gpu"] for limit in limits if "nvidia.com/gpu" in limit]


def test_defaults_run_on_a_cluster_without_gpus(defaults: list[Manifest]) -> None:
    names = {w["metadata"]["name"] for w in workloads(defaults)}
    assert f"{RELEASE}-habitus-worker-cpu" in names
    assert f"{RELEASE}-habitus-worker-gpu" not in names
    assert all(not gpu_requests(w) for w in workloads(defaults))
    worker = containers(named(defaults, "Deployment", "-worker-cpu"))[0]
    assert env_of(worker)["HABITUS_DEVICE"]["value"] == "cpu"


def test_gpu_workers_are_an_opt_in(renderer: Renderer) -> None:
    manifests = renderer.render(GPU)
    names = {w["metadata"]["name"] for w in workloads(manifests)}
    assert f"{RELEASE}-habitus-worker-cpu" not in names
    worker = named(manifests, "Deployment", "-worker-gpu")
    assert gpu_requests(worker) == [2]
    env = env_of(containers(worker)[0])
    assert env["HABITUS_DEVICE"]["value"] == "cuda"
    assert env["HABITUS_WORKER_CONCURRENCY"]["value"] == "2"
    assert env["HABITUS_WORKER_GPUS"]["value"] == '["0","1"]'  # one GPU per process
    tolerations = worker["spec"]["template"]["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations


# -- no default API key -----------------------------------------------------------------------


def test_refuses_to_render_without_an_api_key(renderer: Renderer) -> None:
    assert "no default key" in renderer.refusal(None)
    assert "no default key" in renderer.refusal({"apiKey": {"keys": {}}})
    assert "shorter than apiKey.minLength" in renderer.refusal(
        {"apiKey": {"keys": {"ris": "change-me"}}}
    )
    # --set turns an all-digit key into a number, which would reach the API as one
    number = renderer.helm.parse_set_string("apiKey.keys.ris=1234567890123456789")
    assert "is a number: give keys with --set-string" in renderer.refusal(number)


def test_api_keys_come_from_a_secret_the_api_alone_reads(renderer: Renderer) -> None:
    for values, secret_name in (
        (WITH_KEY, f"{RELEASE}-habitus-api-keys"),
        (EXISTING_SECRETS, "site-api-keys"),
    ):
        manifests = renderer.render(values)
        api = containers(named(manifests, "Deployment", "-api"))[0]
        assert secret_ref(env_of(api)["HABITUS_API_KEYS"]) == (secret_name, "HABITUS_API_KEYS")
        made = {s["metadata"]["name"] for s in of_kind(manifests, "Secret")}
        assert (secret_name in made) == (values is WITH_KEY)  # an existing one is not made
        for workload in workloads(manifests):
            if not workload["metadata"]["name"].endswith("-api"):
                for container in containers(workload):
                    assert "HABITUS_API_KEYS" not in env_of(container)
    secret = named(renderer.render(WITH_KEY), "Secret", "-api-keys")
    assert secret_values(secret)["HABITUS_API_KEYS"] == f'{{"ris":"{KEY}"}}'


# -- Redis: a password, from a Secret ---------------------------------------------------------


def test_redis_requires_a_password_from_a_secret(defaults: list[Manifest]) -> None:
    (redis,) = containers(named(defaults, "StatefulSet", "-redis"))
    argv = [*redis.get("command", []), *redis.get("args", [])]
    password = argv[argv.index("--requirepass") + 1]
    match = re.fullmatch(r"\$\((\w+)\)", password)  # filled in by Kubernetes from env
    assert match, f"--requirepass {password!r} is not taken from a variable"
    secret_name, key = secret_ref(env_of(redis)[match.group(1)])
    secret = secret_values(named(defaults, "Secret", "-redis-auth"))
    assert secret_name == f"{RELEASE}-habitus-redis-auth" and len(secret[key]) >= 16
    # the probes authenticate (REDISCLI_AUTH) and tell PONG from NOAUTH (both exit 0)
    assert match.group(1) == "REDISCLI_AUTH"
    assert "grep -q PONG" in " ".join(redis["readinessProbe"]["exec"]["command"])
    # every client gets the URL, password included, from that Secret
    for workload in workloads(defaults):
        if workload["metadata"]["name"].endswith("-redis"):
            continue
        for container in containers(workload):
            ref = secret_ref(env_of(container)["HABITUS_REDIS_URL"])
            assert ref == (secret_name, "redis-url")
    assert secret["redis-url"] == f"redis://:{secret[key]}@{RELEASE}-habitus-redis:6379/0"


def test_redis_password_is_generated_given_or_taken_from_a_secret(renderer: Renderer) -> None:
    first, second = (
        secret_values(named(renderer.render(WITH_KEY), "Secret", "-redis-auth"))["redis-password"]
        for _ in range(2)
    )
    assert first != second and re.fullmatch(r"[A-Za-z0-9]{32}", first)  # no lookup offline
    given = merged(WITH_KEY, {"redis": {"auth": {"password": "p" * 20}}})
    secret = secret_values(named(renderer.render(given), "Secret", "-redis-auth"))
    assert secret["redis-password"] == "p" * 20
    for weak in ("short", "with space and @ too long"):
        message = renderer.refusal(merged(WITH_KEY, {"redis": {"auth": {"password": weak}}}))
        assert "redis.auth.password" in message
    manifests = renderer.render(EXISTING_SECRETS)
    assert not [s for s in of_kind(manifests, "Secret") if "redis" in s["metadata"]["name"]]
    (redis,) = containers(named(manifests, "StatefulSet", "-redis"))
    assert secret_ref(env_of(redis)["REDISCLI_AUTH"]) == ("site-redis", "redis-password")
    api = containers(named(manifests, "Deployment", "-api"))[0]
    assert secret_ref(env_of(api)["HABITUS_REDIS_URL"]) == ("site-redis", "redis-url")


def test_external_redis_url_is_kept_in_a_secret(renderer: Renderer) -> None:
    manifests = renderer.render(EXTERNAL_REDIS)
    assert not of_kind(manifests, "StatefulSet")
    url = EXTERNAL_REDIS["redis"]["external"]["url"]
    assert secret_values(named(manifests, "Secret", "-redis-auth")) == {"redis-url": url}
    refused = renderer.refusal(merged(WITH_KEY, {"redis": {"enabled": False}}))
    assert "redis.external.url" in refused


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_no_secret_value_in_a_configmap(renderer: Renderer, values: Values) -> None:
    manifests = renderer.render(values)
    secrets = [v for s in of_kind(manifests, "Secret") for v in secret_values(s).values()]
    secrets += [KEY, "s3cr3t-s3cr3t"]  # also those the chart was given but should not copy
    for config in of_kind(manifests, "ConfigMap"):
        for name, value in config["data"].items():
            assert name not in ("HABITUS_API_KEYS", "HABITUS_REDIS_URL")
            for secret in secrets:
                assert secret not in value, f"{config['metadata']['name']}: {name}"
    for variable in ("HABITUS_API_KEYS", "HABITUS_REDIS_URL"):
        refused = renderer.refusal(merged(WITH_KEY, {"extraEnv": {variable: "x"}}))
        assert "would put a secret in the ConfigMap" in refused


# -- locked-down containers -------------------------------------------------------------------


def image_user(dockerfile: str) -> int:
    """The numeric user an image runs as (its last USER line)."""
    users = re.findall(r"^USER (\d+)(?::\d+)?\s*$", (DOCKER / dockerfile).read_text(), re.M)
    assert users, f"{dockerfile}: no numeric USER (Kubernetes cannot check runAsNonRoot by name)"
    return int(users[-1])


@pytest.mark.parametrize("values", [WITH_KEY, GPU], ids=["defaults", "gpu"])
def test_every_container_is_locked_down(renderer: Renderer, values: Values) -> None:
    manifests = renderer.render(values)
    images = {
        "habitus-api": "Dockerfile.api",
        "habitus-worker-cpu": "Dockerfile.worker-cpu",
        "habitus-worker-gpu": "Dockerfile.worker-gpu",
    }
    for workload in workloads(manifests):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for container in containers(workload):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, name
            assert context["runAsUser"] > 0, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            for path, volume in mounts.items():  # what it writes lies on a volume
                assert volume in claims or volume in volumes, f"{name}: {path}"
            image = str(container["image"]).split(":")[0]
            if image in images:  # Habitus: the image's own user, a scratch /tmp
                assert context["runAsUser"] == image_user(images[image]), name
                assert "emptyDir" in volumes[mounts["/tmp"]], name
                assert "persistentVolumeClaim" in volumes[mounts["/var/lib/habitus/spool"]]


def test_listener_port_needs_no_capability(renderer: Renderer) -> None:
    message = renderer.refusal(merged(WITH_KEY, {"listener": {"port": 104}}))
    assert "listener.port must be 1024 or above" in message
    manifests = renderer.render(merged(WITH_KEY, {"listener": {"service": {"port": 104}}}))
    (port,) = named(manifests, "Service", "-listener")["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (104, "dicom")


# -- network policies -------------------------------------------------------------------------


def container_ports(workload: Manifest) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for c in containers(workload) for p in c.get("ports", [])}


def test_network_policy_lets_only_habitus_pods_reach_redis(defaults: list[Manifest]) -> None:
    redis = named(defaults, "StatefulSet", "-redis")
    (policy,) = policies_for(defaults, redis)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert [container_ports(redis)[p["port"]] for p in rule["ports"]] == [6379]
    peers = rule["from"]
    assert all(set(peer) == {"podSelector"} for peer in peers)  # no namespace, no address block

    def admitted(labels: dict[str, str]) -> bool:
        return any(selects(peer["podSelector"], labels) for peer in peers)

    clients = [w for w in workloads(defaults) if w is not redis]
    assert {pod_labels(w)["app.kubernetes.io/component"] for w in clients} == {
        "api",
        "listener",
        "worker-cpu",
    }
    assert all(admitted(pod_labels(w)) for w in clients)
    stranger = dict(pod_labels(clients[0]), **{"app.kubernetes.io/component": "debug"})
    other_release = dict(pod_labels(clients[0]), **{"app.kubernetes.io/instance": "other"})
    assert not admitted(stranger) and not admitted(other_release) and not admitted({})


def test_api_and_listener_are_reached_on_their_ports_only(renderer: Renderer) -> None:
    manifests = renderer.render(GPU)  # the GPU worker too
    for workload in workloads(manifests):
        (policy,) = policies_for(manifests, workload)
        component = pod_labels(workload)["app.kubernetes.io/component"]
        rules = policy["spec"].get("ingress", [])
        if component.startswith("worker-"):
            assert rules == [], "workers take no connections"
        elif component in ("api", "listener"):
            (rule,) = rules
            ports = {container_ports(workload)[p["port"]] for p in rule["ports"]}
            assert ports == ({8000} if component == "api" else {11112})
    narrowed = {"networkPolicy": {"apiFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}}
    api = named(renderer.render(merged(WITH_KEY, narrowed)), "NetworkPolicy", "-api")
    assert api["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]


# -- workers finish their jobs on shutdown ----------------------------------------------------


def test_worker_grace_period_outlasts_the_longest_job(renderer: Renderer) -> None:
    manifests = renderer.render(GPU)
    config = named(manifests, "ConfigMap", "-config")["data"]
    longest = int(config["HABITUS_TASK_TIME_LIMIT_S"])
    assert int(config["HABITUS_VISIBILITY_TIMEOUT_S"]) > longest
    for workload in workloads(manifests):
        if "worker" in workload["metadata"]["name"]:
            assert workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > longest
    short = merged(WITH_KEY, {"worker": {"terminationGracePeriodSeconds": longest}})
    assert "must exceed worker.taskTimeLimitS" in renderer.refusal(short)
    early = merged(WITH_KEY, {"worker": {"visibilityTimeoutS": longest}})
    assert "handed out twice" in renderer.refusal(early)


# -- the chart's sources ----------------------------------------------------------------------


def test_values_cover_what_the_templates_read() -> None:
    """A values key a template reads but values.yaml lacks renders as empty, silently."""
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


# -- what a site sets --------------------------------------------------------------------------


def test_site_settings_reach_the_config_and_load(
    renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap holds what the values give, and the settings classes accept all of it."""
    from habitus.settings import Settings

    manifests = renderer.render(SITE)
    config = named(manifests, "ConfigMap", "-config")["data"]
    listener_env = env_of(containers(named(manifests, "Deployment", "-listener"))[0])
    plain = {name: e["value"] for name, e in listener_env.items() if "value" in e}
    for name, value in {**config, **plain}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # read from the environment the chart gives
    listener = settings.listener
    assert listener.stored_modalities == ["CT", "PT"]
    assert listener.max_associations_per_host == 4
    assert listener.max_association_bytes == 8 * 1024**3  # beyond 32 bits, kept whole
    assert listener.spool_max_bytes == 100 * 1024**3
    assert listener.node_certificates == {"pacs": "cn:pacs.hospital.local"}
    assert (settings.api.retention_days, settings.api.retention_disk_percent) == (30, 85)
    assert settings.redis.prefix == "clinic-a:"
    assert (settings.worker.max_attempts, settings.redis.outage_s) == (2, 120)


def test_node_tls_files_reach_the_listener_and_the_workers(renderer: Renderer) -> None:
    for values in (SITE, merged(GPU, {"nodeTls": {"secretName": "site-node-tls"}})):
        manifests = renderer.render(values)
        for workload in workloads(manifests):
            name = workload["metadata"]["name"]
            volumes = {
                v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])
            }
            mounts = {m["mountPath"]: m for m in containers(workload)[0].get("volumeMounts", [])}
            wanted = "-listener" in name or "-worker-" in name
            assert ("/etc/habitus/node-tls" in mounts) == wanted, name
            if wanted:
                mount = mounts["/etc/habitus/node-tls"]
                assert mount["readOnly"] is True
                assert volumes[mount["name"]]["secret"]["secretName"] == "site-node-tls"
                assert CA_FILE.startswith(mount["mountPath"] + "/")  # where the nodes look
    for workload in workloads(renderer.render(WITH_KEY)):  # nothing mounted unless asked
        paths = [m["mountPath"] for c in containers(workload) for m in c.get("volumeMounts", [])]
        assert "/etc/habitus/node-tls" not in paths


def test_node_certificates_need_client_certificates(renderer: Renderer) -> None:
    certificates = {"listener": {"nodeCertificates": {"pacs": "cn:pacs"}}}
    assert "listener.nodeCertificates needs client certificates" in renderer.refusal(
        merged(WITH_KEY, certificates)
    )
    without_ca = merged(SITE, {"listener": {"tls": {"requireClientCertificates": False}}})
    assert "listener.nodeCertificates needs client certificates" in renderer.refusal(without_ca)


def test_audit_log_goes_to_a_file_per_api_pod_on_the_spool(renderer: Renderer) -> None:
    api = containers(named(renderer.render(WITH_KEY), "Deployment", "-api"))[0]
    env = list(env_of(api))
    audit = env_of(api)["HABITUS_AUDIT_LOG_FILE"]["value"]
    assert audit == "/var/lib/habitus/spool/audit/$(POD_NAME).jsonl"
    # Kubernetes expands $(POD_NAME) only from a variable defined before it
    assert env.index("POD_NAME") < env.index("HABITUS_AUDIT_LOG_FILE")
    assert env_of(api)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    spool = {m["mountPath"]: m for m in api["volumeMounts"]}["/var/lib/habitus/spool"]
    assert not spool.get("readOnly")
    off = merged(WITH_KEY, {"api": {"auditLog": {"enabled": False}}})
    api = containers(named(renderer.render(off), "Deployment", "-api"))[0]
    assert "HABITUS_AUDIT_LOG_FILE" not in env_of(api)


def test_listener_is_ready_only_with_a_live_worker(defaults: list[Manifest]) -> None:
    listener = containers(named(defaults, "Deployment", "-listener"))[0]
    probe = listener["readinessProbe"]["exec"]["command"]
    assert probe == ["python", "-m", "service.healthcheck", "--ready"]
    assert listener["readinessProbe"]["timeoutSeconds"] > 4  # the check's own timeout


def test_redis_is_the_image_the_project_builds(defaults: list[Manifest]) -> None:
    compose = load_yaml(DOCKER / "docker-compose.yml")["services"]["redis"]
    assert compose["build"]["dockerfile"] == "docker/Dockerfile.redis"
    (redis,) = containers(named(defaults, "StatefulSet", "-redis"))
    assert str(redis["image"]).split(":")[0] == compose["image"]
    context = redis["securityContext"]
    assert f"{context['runAsUser']}:{context['runAsGroup']}" == compose["user"]
    assert re.search(r"^USER 999:1000$", (DOCKER / "Dockerfile.redis").read_text(), re.M)
