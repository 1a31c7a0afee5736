"""The REST API: one router per resource, versioned under /v1."""

from service.api.app import create_app

__all__ = ["create_app"]
