"""Delivery over DICOM TLS to a real storage SCP with certificates made here.

The node's certificate is checked against the node's CA and name; a failed check fails the
delivery with the reason and nothing is sent, over TLS or in the clear.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    Comprehensive3DSRStorage,
    SegmentationStorage,
)

from habitus.jobs import DeliveryState, JobStore
from habitus.nodes import DicomNode
from tests.fixtures_orthanc import free_port
from tests.tls_support import Certificate, write_certificate
from tests.worker.processes import WorkerFactory
from tests.worker.test_delivery import settings_for, succeeded_job, write_results
from worker.delivery import Deliverer, check_node_tls_files


class StorageSCP:
    """A real storage SCP, over TLS when given a server context; counts what it stores."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.received: list[str] = []
        self.lock = threading.Lock()
        ae = AE(ae_title="SECURE")
        for sop_class in (SegmentationStorage, Comprehensive3DSRStorage):
            ae.add_supported_context(sop_class, ExplicitVRLittleEndian)
        self.port = free_port()
        self.server = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(evt.EVT_C_STORE, self.handle)],
            ssl_context=context,
        )

    def handle(self, event: evt.Event) -> int:
        with self.lock:
            self.received.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    def node(self, **tls: Any) -> DicomNode:
        return DicomNode(name="secure", ae_title="SECURE", host="127.0.0.1", port=self.port, **tls)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Certificate]:
    """A CA, the PACS's certificate for 127.0.0.1 and localhost, a client certificate of
    Habitus signed by the same CA, and a second CA that signed none of them."""
    folder = tmp_path / "pki"
    folder.mkdir()
    ca = write_certificate(folder, "ca")
    return {
        "ca": ca,
        "server": write_certificate(folder, "pacs", issuer=ca, hosts=("127.0.0.1", "localhost")),
        "client": write_certificate(folder, "habitus", issuer=ca),
        "other_ca": write_certificate(folder, "other-ca"),
    }


def server_context(pki: dict[str, Certificate], require_client: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server"].cert_path, pki["server"].key_path)
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki["ca"].cert_path)
    return context


@pytest.fixture
def start_scp() -> Iterator[Callable[[ssl.SSLContext | None], StorageSCP]]:
    started: list[StorageSCP] = []

    def start(context: ssl.SSLContext | None) -> StorageSCP:
        started.append(StorageSCP(context))
        return started[-1]

    yield start
    for scp in started:
        scp.server.shutdown()


def deliver(store: JobStore, node: DicomNode, shared_data: Path, folder: Path) -> Any:
    """One delivery attempt of a fresh job's SEG and SR; returns its delivery record."""
    job = succeeded_job(store, write_results(folder, shared_data), node.name)
    Deliverer(store, settings_for(node)).deliver(job.id, node.name)
    return store.get(job.id).deliveries[node.name]


@pytest.mark.integration
def test_results_go_over_tls_to_a_node_whose_certificate_checks_out(
    store: JobStore, start_scp: Callable, pki: dict[str, Certificate], shared_data: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    scp = start_scp(server_context(pki))
    delivery = deliver(store, scp.node(tls=True, tls_ca_file=pki["ca"].cert_path), shared_data,
                       tmp_path / "a")  # fmt: skip
    assert delivery.state == DeliveryState.DONE, delivery.last_error
    assert sorted(scp.received) == sorted(delivery.delivered_sop_instance_uids)
    assert len(scp.received) == 2

    # the name checked can differ from the address connected to
    by_name = scp.node(tls=True, tls_ca_file=pki["ca"].cert_path, tls_server_name="localhost")
    assert deliver(store, by_name, shared_data, tmp_path / "b").state == DeliveryState.DONE
    assert len(scp.received) == 4


@pytest.mark.integration
@pytest.mark.parametrize(
    ("tls", "reason"),
    [
        ({"ca": "other_ca"}, "certificate verify failed: unable to get local issuer certificate"),
        ({"ca": "ca", "tls_server_name": "pacs.example.org"}, "Hostname mismatch"),
    ],
    ids=["wrong-ca", "wrong-name"],
)
def test_a_certificate_that_does_not_check_out_fails_the_delivery_and_sends_nothing(
    store: JobStore, start_scp: Callable, pki: dict[str, Certificate], shared_data: Path,
    tmp_path: Path, tls: dict[str, str], reason: str,
) -> None:  # fmt: skip
    scp = start_scp(server_context(pki))
    ca = pki[tls.pop("ca")].cert_path
    delivery = deliver(store, scp.node(tls=True, tls_ca_file=ca, **tls), shared_data, tmp_path)
    assert delivery.state == DeliveryState.FAILED  # for good: no retry with the same certificate
    assert delivery.next_attempt_at is None
    assert "TLS with SECURE@127.0.0.1" in delivery.last_error
    assert reason in delivery.last_error
    assert scp.received == [] and delivery.delivered_sop_instance_uids == []


@pytest.mark.integration
def test_a_tls_node_that_answers_in_the_clear_gets_nothing(
    store: JobStore, start_scp: Callable, pki: dict[str, Certificate], shared_data: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    plain = start_scp(None)
    delivery = deliver(store, plain.node(tls=True, tls_ca_file=pki["ca"].cert_path), shared_data,
                       tmp_path)  # fmt: skip
    assert delivery.state == DeliveryState.PENDING  # tried again later, over TLS again
    assert "TLS with SECURE@127.0.0.1" in (delivery.last_error or "")
    assert plain.received == []


@pytest.mark.integration
def test_mutual_tls_presents_the_configured_client_certificate(
    store: JobStore, start_scp: Callable, pki: dict[str, Certificate], shared_data: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    scp = start_scp(server_context(pki, require_client=True))
    client = pki["client"]
    mutual = scp.node(
        tls=True,
        tls_ca_file=pki["ca"].cert_path,
        tls_cert_file=client.cert_path,
        tls_key_file=client.key_path,
    )
    assert deliver(store, mutual, shared_data, tmp_path / "a").state == DeliveryState.DONE
    assert len(scp.received) == 2

    anonymous = scp.node(tls=True, tls_ca_file=pki["ca"].cert_path)
    delivery = deliver(store, anonymous, shared_data, tmp_path / "b")
    assert delivery.state != DeliveryState.DONE
    assert "TLS with SECURE@127.0.0.1" in (delivery.last_error or "")
    assert "CERTIFICATE_REQUIRED" in (delivery.last_error or "").upper()
    assert len(scp.received) == 2


@pytest.mark.integration
def test_a_plain_node_still_gets_results_in_the_clear(
    store: JobStore, start_scp: Callable, shared_data: Path, tmp_path: Path
) -> None:
    scp = start_scp(None)
    assert deliver(store, scp.node(), shared_data, tmp_path).state == DeliveryState.DONE
    assert len(scp.received) == 2


def test_node_tls_settings_are_refused_when_incomplete_or_missing(
    pki: dict[str, Certificate], tmp_path: Path
) -> None:
    node = {"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104}
    ca = str(pki["ca"].cert_path)

    with pytest.raises(ValidationError, match="sets tls_ca_file but not tls"):
        DicomNode.model_validate({**node, "tls_ca_file": ca})
    with pytest.raises(ValidationError, match="needs both tls_cert_file and tls_key_file"):
        DicomNode.model_validate({**node, "tls": True, "tls_cert_file": ca})

    gone = tmp_path / "gone.crt"
    with pytest.raises(ValueError, match=rf"pacs: tls_ca_file \({gone}\)"):
        check_node_tls_files(
            [DicomNode.model_validate({**node, "tls": True, "tls_ca_file": str(gone)})]
        )
    # the same node without TLS, and one whose files are there, are accepted
    check_node_tls_files([DicomNode.model_validate(node)])
    with_files = DicomNode.model_validate({**node, "tls": True, "tls_ca_file": ca})
    check_node_tls_files([with_files])
    assert with_files.tls_hostname == "127.0.0.1"


@pytest.mark.integration
def test_a_worker_whose_node_lacks_its_tls_files_does_not_start(
    start_worker: WorkerFactory, store: JobStore, tmp_path: Path
) -> None:
    gone = tmp_path / "gone" / "ca.crt"
    nodes = [{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104,
              "tls": True, "tls_ca_file": str(gone)}]  # fmt: skip
    worker = start_worker(dicom_nodes=json.dumps(nodes))
    assert worker.wait(timeout=120) != 0
    log = (tmp_path / "worker-0.log").read_text()
    assert f"TLS files of DICOM nodes not readable: pacs: tls_ca_file ({gone})" in log
