"""API keys: whose a bearer key is (its name, which owns the jobs it submits) and its scopes.

``HABITUS_API_KEYS`` maps a name to either a key (all scopes, as before scopes existed) or
``{"sha256": "<hex digest of the key>", "scopes": [...]}`` (``"key"`` in place of
``"sha256"`` also works, but then the key itself sits in the configuration). A presented key
is hashed once and compared with every configured digest in constant time, so neither the
time taken nor an early exit tells a caller how close a guess came.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from habitus.settings import ApiKeySetting, Scope

ALL_SCOPES = frozenset(Scope)
_GRANTING: dict[Scope, frozenset[Scope]] = {  # the scopes that grant each scope
    scope: frozenset({scope, Scope.ADMIN}) for scope in Scope
} | {Scope.READ_OWN: frozenset({Scope.READ_OWN, Scope.READ_ALL, Scope.ADMIN})}


def key_digest(key: str) -> str:
    """What to configure as ``sha256`` for ``key``: ``printf %s KEY | sha256sum``."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """An authenticated client: the key's name and what it may do."""

    name: str
    scopes: frozenset[Scope]

    def may(self, scope: Scope) -> bool:
        return not self.scopes.isdisjoint(_GRANTING[scope])

    @property
    def reads_all(self) -> bool:
        return self.may(Scope.READ_ALL)

    def may_read(self, owner: str) -> bool:
        return self.reads_all or (self.may(Scope.READ_OWN) and owner == self.name)


def identify(keys: Mapping[str, ApiKeySetting], presented: str) -> Caller | None:
    """The caller whose configured key is ``presented``, or None."""
    digest = hashlib.sha256(presented.encode()).digest()
    found: Caller | None = None
    for name, setting in keys.items():  # no early exit: every key costs the same time
        scopes, expected = _scopes_and_digest(setting)
        if hmac.compare_digest(expected, digest) and found is None:
            found = Caller(name, scopes)
    return found


def _scopes_and_digest(setting: ApiKeySetting) -> tuple[frozenset[Scope], bytes]:
    if isinstance(setting, SecretStr):
        return ALL_SCOPES, hashlib.sha256(setting.get_secret_value().encode()).digest()
    if setting.sha256 is not None:
        return setting.scopes, bytes.fromhex(setting.sha256)
    assert setting.key is not None  # ApiKeySpec holds one or the other
    return setting.scopes, hashlib.sha256(setting.key.get_secret_value().encode()).digest()
