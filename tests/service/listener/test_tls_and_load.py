"""DICOM TLS with a certificate made here, and many associations storing at once."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from service.listener.statuses import StoreStatus
from tests.conftest import missing
from tests.e2e.instances import ct_series, ct_slice, write_series
from tests.polling import wait_for
from tests.service.listener.conftest import StartListener
from tests.service.listener.test_scp import STORESCU, storescu
from tests.tls_support import write_certificate


def ct_scu(ae_title: str = "TESTSCU") -> AE:
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    return ae


def test_tls_with_client_certificates(start_listener: StartListener, tmp_path: Path) -> None:
    ca = write_certificate(tmp_path, "ca")
    server_cert, server_key, *_ = write_certificate(tmp_path, "server", issuer=ca)
    client_cert, client_key, *_ = write_certificate(tmp_path, "client", issuer=ca)
    listener, submissions = start_listener(
        tls_cert_file=server_cert, tls_key_file=server_key, tls_ca_file=ca[0]
    )

    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca[0]))
    client.load_cert_chain(client_cert, client_key)
    assoc = ct_scu().associate(
        "127.0.0.1", listener.port, ae_title="HABITUS", tls_args=(client, "127.0.0.1")
    )
    assert assoc.is_established
    ds = ct_series(1)[0]
    assert assoc.send_c_store(ds).Status == StoreStatus.SUCCESS
    assoc.release()
    assert submissions.arrived.wait(10)
    assert list(submissions.instances[0]) == [ds.SOPInstanceUID]

    # without a client certificate the TLS handshake fails: no association
    anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca[0]))
    refused = ct_scu().associate(
        "127.0.0.1", listener.port, ae_title="HABITUS", tls_args=(anonymous, "127.0.0.1")
    )
    assert not refused.is_established
    # and plain TCP gets nowhere either
    assert not ct_scu().associate("127.0.0.1", listener.port, ae_title="HABITUS").is_established


@pytest.mark.slow
@pytest.mark.integration
def test_ten_associations_of_200_instances_at_once_lose_nothing(
    start_listener: StartListener, tmp_path: Path
) -> None:
    if not STORESCU.exists():
        missing("dcmtk's storescu is not installed")
    listener, submissions = start_listener(quiet_period_s=1.0)
    study = generate_uid()
    folders = []
    for worker in range(10):
        series = generate_uid()
        datasets = [ct_slice(study, series, i, size=8) for i in range(200)]
        folders.append(write_series(datasets, tmp_path / f"sender{worker}"))
    expected = {p.stem for files in folders for p in files}
    assert len(expected) == 2000

    # ten storescu processes, one association each, all at once
    senders = [
        subprocess.Popen(
            [*storescu(listener.port, "+sd"), str(files[0].parent)],
            env={**os.environ, "TCP_NODELAY": "1"},  # dcmtk: no Nagle delay per tiny instance
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for files in folders
    ]
    for sender in senders:
        _, stderr = sender.communicate(timeout=240)
        assert sender.returncode == 0, stderr

    def received() -> set[str]:
        return {uid for batch in list(submissions.instances) for uid in batch}

    wait_for(lambda: received() == expected, timeout_s=30)
    assert sum(len(batch) for batch in submissions.instances) == 2000  # each once


@pytest.mark.parametrize(
    ("files", "missing"),
    [
        ({"tls_cert_file": "server.crt", "tls_ca_file": "ca.crt"}, "TLS_KEY_FILE is unset"),
        ({"tls_key_file": "server.key"}, "TLS_CERT_FILE is unset"),
        ({"tls_ca_file": "ca.crt"}, "TLS_CERT_FILE and HABITUS_LISTENER_TLS_KEY_FILE are unset"),
    ],
)
def test_half_a_tls_configuration_is_refused_not_run_as_plain_dicom(
    files: dict[str, str], missing: str
) -> None:
    from pydantic import ValidationError

    from habitus.settings import ListenerSettings

    with pytest.raises(ValidationError, match=missing):
        ListenerSettings.model_validate(files)
