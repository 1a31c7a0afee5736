"""The listener process: the SCP server plus the completion thread, started and stopped together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from habitus.settings import ListenerSettings
from service.listener.acceptor import GuardedServer
from service.listener.completion import CompletionTracker, CountInstances, SubmitStudy
from service.listener.scp import (
    KnownNode,
    build_ae,
    event_handlers,
    presentation_contexts,
    server_ssl_context,
)
from service.listener.spool import Spool

log = logging.getLogger(__name__)


class Listener:
    """A running C-STORE SCP; ``start`` returns at once, ``stop`` ends associations cleanly."""

    def __init__(
        self,
        settings: ListenerSettings,
        submit: SubmitStudy,
        nodes: Sequence[KnownNode] = (),
        count_instances: CountInstances | None = None,
        fsync: bool | None = None,  # None: settings.fsync
    ) -> None:
        if settings.spool_dir is None:
            raise ValueError("the listener needs a spool directory; settings.spool_dir is unset")
        self.settings = settings
        self.spool = Spool(settings.spool_dir, fsync=settings.fsync if fsync is None else fsync)
        self.tracker = CompletionTracker(
            self.spool,
            submit,
            quiet_period_s=settings.quiet_period_s,
            quiet_after_release_s=settings.quiet_after_release_s,
            poll_interval_s=settings.poll_interval_s,
            submit_retry_s=settings.submit_retry_s,
            keep_refused_s=settings.keep_refused_s,
            count_instances=count_instances,
        )
        self.nodes = list(nodes)
        self._server: GuardedServer | None = None

    @property
    def port(self) -> int:
        """The bound port (the one chosen by the system when the settings said 0)."""
        if self._server is None:
            raise RuntimeError("the listener is not running")
        return int(self._server.server_address[1])

    def start(self) -> Listener:
        self.tracker.start()
        ae = build_ae(self.settings)
        server: GuardedServer = ae.make_server(  # type: ignore[assignment]
            (self.settings.host, self.settings.port),
            ssl_context=server_ssl_context(self.settings),
            evt_handlers=event_handlers(self.tracker, self.settings, self.nodes),
            contexts=presentation_contexts(),  # as built: the AE would rebuild them
            server_class=GuardedServer,
            max_connections=2 * self.settings.max_associations,
            max_connections_per_host=2 * self.settings.max_associations_per_host,
            network_timeout_s=self.settings.network_timeout_s,
        )
        threading.Thread(
            target=server.serve_forever, name="dicom-listener-accept", daemon=True
        ).start()
        self._server = server
        log.info(
            "DICOM listener %s on %s:%d (TLS %s), spool %s (%s), quiet period %.1f s "
            "(%.1f s once the sender's association has ended)",
            self.settings.ae_title,
            self.settings.host,
            self.port,
            "on" if self.settings.tls_enabled else "off",
            self.settings.spool_dir,
            "synced before each answer" if self.spool.fsync else "NOT synced: fsync off",
            self.settings.quiet_period_s,
            self.settings.quiet_after_release_s,
        )
        return self

    def stop(self, flush: bool = False) -> None:
        """Stop accepting, let open associations end, stop the completion thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self.tracker.stop(flush=flush)

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
