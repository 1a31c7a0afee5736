"""The listener's limits on their own: associations, association budgets, spool watermark,
certificates of nodes, and settings that keep every limit bounded."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from habitus.settings import ListenerSettings
from service.listener.diskguard import SpoolGuard
from service.listener.limits import AssociationBudget, AssociationCounter, RateLimitedLog
from service.listener.peercert import CertificateIdentity, CertificatePolicy, PeerCertificate


def alive() -> threading.Thread:
    return threading.current_thread()  # any thread that is running


def test_associations_are_counted_in_all_and_per_host() -> None:
    counter = AssociationCounter(maximum=3, per_host=2)
    a, b, c, d = (SimpleNamespace(is_alive=lambda: True) for _ in range(4))
    assert counter.admit(a, "10.0.0.1") is None  # type: ignore[arg-type]
    assert counter.admit(b, "10.0.0.1") is None  # type: ignore[arg-type]
    assert "2 associations already open from 10.0.0.1" in str(counter.admit(c, "10.0.0.1"))  # type: ignore[arg-type]
    assert counter.admit(c, "10.0.0.2") is None  # type: ignore[arg-type]
    assert "3 associations already open (maximum 3)" in str(counter.admit(d, "10.0.0.3"))  # type: ignore[arg-type]
    counter.ended(a)  # type: ignore[arg-type]
    assert counter.admit(d, "10.0.0.1") is None  # type: ignore[arg-type]


def test_an_association_whose_thread_stopped_is_counted_out() -> None:
    counter = AssociationCounter(maximum=1, per_host=1)
    finished = threading.Thread(target=lambda: None)
    finished.start()
    finished.join()
    assert counter.admit(alive(), "10.0.0.1") is None
    counter._admitted = {id(finished): (finished, "10.0.0.1")}  # its close was never seen
    assert counter.admit(alive(), "10.0.0.1") is None


def test_the_association_budget_counts_every_data_set() -> None:
    budget = AssociationBudget(max_bytes=0, max_instances=2)
    assert budget.charge(10) is None and budget.charge(10) is None
    assert not budget.may_receive(1)
    assert "more than the 2 one association may send" in str(budget.charge(10))
    by_bytes = AssociationBudget(max_bytes=100, max_instances=0)
    assert by_bytes.may_receive(100) and not by_bytes.may_receive(101)
    assert "101 bytes of data sets" in str(by_bytes.charge(101))


def test_a_repeated_refusal_is_logged_once_per_interval() -> None:
    log = RateLimitedLog(interval_s=60)
    assert log.due("h") == 0
    assert log.due("h") is None and log.due("h") is None
    assert log.due("other") == 0
    log._last["h"] -= 61
    assert log.due("h") == 2  # the two not logged are counted in the next line


def test_the_spool_guard_keeps_free_space_and_a_maximum(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.dcm").write_bytes(b"x" * 1000)
    guard = SpoolGuard(tmp_path, max_bytes=1500, min_free_bytes=0, rescan_s=3600)
    assert guard.refusal(500) is None
    guard.added(500)
    assert "holds 1500 bytes; 1 more would pass its maximum of 1500" in str(guard.refusal(1))
    floor = SpoolGuard(tmp_path, max_bytes=0, min_free_bytes=2**62)
    assert "to keep free" in str(floor.refusal(1))


def test_certificate_identities_are_checked_when_read() -> None:
    digest = "AB:" * 31 + "AB"
    assert CertificateIdentity.parse("sha256:" + digest, "pacs").value == "ab" * 32
    assert CertificateIdentity.parse("cn: pacs.example.org", "pacs").value == "pacs.example.org"
    for bad in ("sha256:1234", "cn:", "pacs.example.org", "md5:" + "ab" * 16):
        with pytest.raises(ValueError, match="node 'pacs'"):
            CertificateIdentity.parse(bad, "pacs")


def test_a_certificate_is_accepted_only_from_its_own_node() -> None:
    nodes = [
        SimpleNamespace(name="pacs", ae_title="PACS"),
        SimpleNamespace(name="ris", ae_title="RIS"),
        SimpleNamespace(name="modality", ae_title="CT1"),
    ]
    policy = CertificatePolicy({"pacs": "cn:pacs-node", "ris": "sha256:" + "0" * 64}, nodes)
    pacs = PeerCertificate("f" * 64, frozenset({"pacs-node"}))
    ris = PeerCertificate("0" * 64, frozenset({"ris-node"}))
    other = PeerCertificate("1" * 64, frozenset({"ct-node"}))
    assert policy.refusal("PACS", pacs) is None
    assert policy.refusal("RIS", ris) is None
    assert "the certificate of node ris)" in str(policy.refusal("PACS", ris))
    assert "belongs to node pacs, whose certificate" in str(policy.refusal("PACS", other))
    assert "no client certificate" in str(policy.refusal("PACS", None))
    assert policy.refusal("CT1", other) is None  # a node that names no certificate
    assert "which does not call as 'CT1'" in str(policy.refusal("CT1", pacs))
    with pytest.raises(ValueError, match="names archive, not among the known nodes"):
        CertificatePolicy({"archive": "cn:x"}, nodes)


@pytest.mark.parametrize(
    "values",
    [
        {"network_timeout_s": 0},
        {"network_timeout_s": 86400},
        {"acse_timeout_s": 3600},
        {"dimse_timeout_s": -1},
        {"max_associations_per_host": 0},
        {"spool_max_bytes": -1},
        {"node_certificates": {"pacs": "cn:pacs"}},  # without TLS client certificates
        {
            "tls_cert_file": "s.crt",
            "tls_key_file": "s.key",
            "tls_ca_file": "ca.crt",
            "node_certificates": {"pacs": "sha1:00"},
        },
    ],
)
def test_limits_and_timeouts_are_bounded(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ListenerSettings.model_validate(values)
