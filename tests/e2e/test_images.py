"""The container images, built from docker/ with podman and run by podman-compose from
docker/docker-compose.yml: a PET-CT study sent to the demo PACS (Orthanc in its container)
with storescu comes back with its SEG and SR.

Costly: the first build on a machine takes minutes (docs/deploy.md, "Images"); podman keeps
its layers, so later runs rebuild only what changed. The GPU worker's image is left to
``docker/build.sh worker-gpu``: it adds gigabytes of CUDA libraries and no GPU runs it here.
Runs where podman is installed; under CI=true a missing podman fails.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest

from habitus.phantoms.studies import write_petct_study
from tests.conftest import REPO_ROOT, missing
from tests.e2e.conftest import storescu, wait_for
from tests.fixtures_orthanc import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE_IMAGE = "debian:bookworm-slim"
IMAGES = ("api", "worker-cpu", "redis", "orthanc")
SERVICES = ("redis", "api", "habitus-listener", "worker-cpu", "orthanc")
TOOLS = ("podman", "podman-compose", "runc", "debootstrap")
COMPOSE_FILE = REPO_ROOT / "docker" / "docker-compose.yml"
PACS_AUTH = ("demo", "demo")  # the demo PACS's user (docker/orthanc/orthanc.json)
BUILD_TIMEOUT_S = 1800
ANALYSIS_TIMEOUT_S = 300  # a shared 2-core machine runs the rule-based segmenter slowly

CONTAINERS_CONF = REPO_ROOT / "docker" / "containers.conf"  # runc, ulimits the host grants


def run(command: list[str], env: dict[str, str], timeout: float) -> str:
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def podman_env() -> dict[str, str]:
    for tool in TOOLS:
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed (.ci/run installs it)")
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


@pytest.fixture(scope="module")
def images(podman_env: dict[str, str]) -> None:
    """The base (made with debootstrap when no registry gives it) and the images."""
    has_base = subprocess.run(["podman", "image", "exists", BASE_IMAGE], env=podman_env)
    if has_base.returncode != 0:
        run([str(REPO_ROOT / "docker" / "build-base.sh")], podman_env, BUILD_TIMEOUT_S)
    run([str(REPO_ROOT / "docker" / "build.sh"), *IMAGES], podman_env, BUILD_TIMEOUT_S)


@dataclass
class ComposeStack:
    project: str
    env: dict[str, str]

    def compose(self, *args: str, timeout: float = 300) -> str:
        command = ["podman-compose", "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        return run(command, self.env, timeout)

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"  # podman-compose's container names

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['API_PORT']}"

    @property
    def pacs_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PACS_HTTP_PORT']}"

    def api_answers(self, path: str) -> bool:
        try:
            return httpx.get(f"{self.api_url}{path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def pacs(self, path: str, method: str = "GET") -> Any:
        response = httpx.request(method, f"{self.pacs_url}{path}", auth=PACS_AUTH, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def pacs_reaches_habitus(self) -> bool:
        """The demo PACS's C-ECHO to the listener, across the compose network."""
        try:
            self.pacs("/modalities/habitus/echo", method="POST")
            return True
        except httpx.HTTPError:
            return False

    def results_in_pacs(self, source_series_uid: str) -> dict[str, list[Any]]:
        """SEG and SR data sets in the PACS that reference ``source_series_uid``."""
        found: dict[str, list[Any]] = {"SEG": [], "SR": []}
        for series in self.pacs("/series?expand"):
            modality = series["MainDicomTags"].get("Modality")
            if modality not in found:
                continue
            for instance_id in series["Instances"]:
                raw = httpx.get(
                    f"{self.pacs_url}/instances/{instance_id}/file", auth=PACS_AUTH, timeout=30
                )
                ds = pydicom.dcmread(io.BytesIO(raw.content), stop_before_pixels=True)
                if source_series_uid in referenced_series(ds):
                    found[modality].append(ds)
        return found

    def remove(self) -> None:
        """Containers, volumes and network of the project, at once: podman-compose's down
        stops the containers one after another and leaves the network."""
        label = f"label=io.podman.compose.project={self.project}"
        for kind, listing in (("container", ["ps", "-a"]), ("volume", ["volume", "ls"])):
            listed = subprocess.run(
                ["podman", *listing, "-q", "--filter", label],
                env=self.env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            if ids := listed.stdout.split():
                run(["podman", kind, "rm", "-f", *ids], self.env, timeout=120)
        run(["podman", "network", "rm", "-f", f"{self.project}_default"], self.env, timeout=60)

    def logs(self) -> str:
        text = []
        for service in SERVICES:
            result = subprocess.run(
                ["podman", "logs", "--tail", "40", self.container(service)],
                env=self.env, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            text.append(f"--- {service}\n{result.stdout}{result.stderr}")
        return "\n".join(text)


def referenced_series(ds: Any) -> set[str]:
    """Series UIDs a SEG (Referenced Series) or an SR (evidence) points at."""
    uids = {str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", [])}
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        uids |= {str(item.SeriesInstanceUID) for item in study.get("ReferencedSeriesSequence", [])}
    return uids


def seg_and_sr(found: dict[str, list[Any]]) -> dict[str, list[Any]] | None:
    return found if found["SEG"] and found["SR"] else None


@pytest.fixture(scope="module")
def stack(images: None, podman_env: dict[str, str]) -> Iterator[ComposeStack]:
    # a project and host ports of its own: nothing collides with other stacks or tests
    env = {
        **podman_env,
        "HABITUS_API_KEY": secrets.token_hex(24),
        "REDIS_PASSWORD": secrets.token_hex(24),
        **{p: str(free_port()) for p in ("API_PORT", "DICOM_PORT", "PACS_DICOM_PORT")},
        "PACS_HTTP_PORT": str(free_port()),
    }
    stack = ComposeStack(f"habitus-images-{os.getpid()}", env)
    try:
        stack.compose("up", "-d", "--no-build", *SERVICES)
        wait_for(lambda: stack.api_answers("/healthz"), 120, "the API's /healthz")
        wait_for(lambda: stack.api_answers("/readyz"), 180, "a live worker (/readyz)")
        wait_for(stack.pacs_reaches_habitus, 120, "the PACS's C-ECHO to the listener")
        yield stack
    except BaseException:
        print(stack.logs())  # shown with the failure
        raise
    finally:
        stack.remove()


def test_containers_run_as_the_images_user_on_a_read_only_root(stack: ComposeStack) -> None:
    containers = [stack.container(s) for s in ("api", "habitus-listener", "worker-cpu")]
    for inspected in json.loads(run(["podman", "inspect", *containers], stack.env, 60)):
        assert inspected["Config"]["User"] == "10001:10001", inspected["Name"]
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True, inspected["Name"]
    # the processes' user, and no inference runtime in the API image
    probe = (
        "import importlib.util as u, os; print(os.getuid(), os.getgid(),"
        " [m for m in ('onnxruntime', 'torch') if u.find_spec(m)])"
    )
    api = run(["podman", "exec", containers[0], "python", "-c", probe], stack.env, 60)
    assert api.strip().split(maxsplit=2) == ["10001", "10001", "[]"]
    worker = run(["podman", "exec", containers[2], "python", "-c", probe], stack.env, 60)
    assert worker.strip().split(maxsplit=2) == ["10001", "10001", "['onnxruntime']"]


def test_a_study_sent_to_the_pacs_comes_back_with_seg_and_sr(
    stack: ComposeStack, tmp_path: Path
) -> None:
    study = write_petct_study(tmp_path / "study", slices=24, rows=64, seed=17)
    storescu(int(stack.env["PACS_DICOM_PORT"]), study.files, called="ORTHANC")

    results = wait_for(
        lambda: seg_and_sr(stack.results_in_pacs(study.expected_series_uid)),
        ANALYSIS_TIMEOUT_S,
        "the SEG and SR in the PACS",
    )
    assert results is not None and len(results["SEG"]) == 1 and len(results["SR"]) == 1
    assert {str(results[m][0].StudyInstanceUID) for m in results} == {study.study_instance_uid}
    # the job, as the API tells it to the key's owner
    jobs = httpx.get(
        f"{stack.api_url}/v1/jobs",
        headers={"Authorization": f"Bearer {stack.env['HABITUS_API_KEY']}"},
        timeout=30,
    )
    assert jobs.status_code == 200
    job = next(
        j for j in jobs.json()["jobs"] if j["series_instance_uid"] == study.expected_series_uid
    )
    assert job["state"] == "succeeded"
    assert job["deliveries"]["orthanc"]["state"] == "done"
