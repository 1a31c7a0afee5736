"""The listener's TCP server: pynetdicom's, with connections bounded before any work is done.

pynetdicom's server starts two threads for every TCP connection and counts associations only
once a peer has sent its request; its accepted sockets block without a timeout, and with TLS
the handshake runs on the one thread that accepts connections. So:

- connections beyond ``max_connections`` in all, or ``max_connections_per_host`` from one
  peer host, are closed as soon as they are accepted, before a thread starts;
- every accepted socket gets the network timeout, so a read or write that a peer leaves
  hanging (a half-open connection, a PDU announced and never sent) fails after it instead of
  holding its threads for good;
- the TLS handshake happens on the connection's own thread, under that timeout, so a peer
  that connects and stays silent delays nobody else.
"""

from __future__ import annotations

import logging
import socket
import weakref
from collections import Counter
from socketserver import BaseServer
from typing import Any

from pynetdicom.transport import ThreadedAssociationServer

from service.listener.limits import RateLimitedLog

log = logging.getLogger(__name__)


class GuardedServer(ThreadedAssociationServer):
    request_queue_size = 128  # the listen backlog: a burst of connections waits, not refused

    def __init__(
        self,
        *args: Any,
        max_connections: int,
        max_connections_per_host: int,
        network_timeout_s: float,
        **kwargs: Any,
    ) -> None:
        self.max_connections = max_connections
        self.max_connections_per_host = max_connections_per_host
        self.network_timeout_s = network_timeout_s
        # accepted and not yet closed -> peer host; weak, so that a connection whose
        # association is gone is not counted even if its socket was never closed
        self._open: weakref.WeakKeyDictionary[socket.socket, str] = weakref.WeakKeyDictionary()
        self._refusals = RateLimitedLog()
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        assert self.socket is not None
        client, address = self.socket.accept()
        client.settimeout(self.network_timeout_s)
        if self.ssl_context is not None:
            # the handshake happens on the connection's thread, at its first read
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Admit a connection within the limits; runs on the accepting thread only."""
        host = str(client_address[0])
        # a connection whose socket is closed has ended, whichever way it ended
        for closed in [s for s in list(self._open) if s.fileno() == -1]:
            self._open.pop(closed, None)
        per_host = Counter(self._open.values())
        if len(self._open) >= self.max_connections:
            reason = f"{len(self._open)} connections open (maximum {self.max_connections})"
        elif per_host[host] >= self.max_connections_per_host:
            reason = (
                f"{per_host[host]} connections open from {host} "
                f"(maximum {self.max_connections_per_host} per host)"
            )
        else:
            self._open[request] = host
            return True
        unsaid = self._refusals.due(host)
        if unsaid is not None:
            log.warning(
                "connection from %s closed at once: %s%s",
                host,
                reason,
                f" ({unsaid} more refused since the last such line)" if unsaid else "",
            )
        return False

    def shutdown(self) -> None:
        """Stop accepting and close the listening socket (started by the listener, not by
        ``AE.start_server``, so not in the AE's list of servers)."""
        BaseServer.shutdown(self)
        self.server_close()
