"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from habitus import __version__
from habitus.settings import Settings, load_settings
from service.api.problems import install_problem_handlers
from service.api.routers import health, jobs, models, studies
from service.audit import AuditMiddleware, configure_audit_log

DESCRIPTION = """\
Habitus segments whole-body and torso CT into seven body-composition classes and reports
muscle and fat. Upload a study (or let PACS send it to the DICOM listener), follow the job,
then fetch its DICOM-SEG, DICOM SR, JSON report and preview.

Every route except the health routes needs an API key: `Authorization: Bearer <key>`.
Errors are RFC 9457 problem documents (`application/problem+json`).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API of a deployment with these settings; without them, the settings are read from
    the environment here, at start-up (``uvicorn service.api:create_app --factory``)."""
    settings = settings or load_settings()
    app = FastAPI(
        title="Habitus",
        version=__version__,
        description=DESCRIPTION,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
    )
    app.state.settings = settings
    configure_audit_log(settings.api.audit_log_file)
    app.add_middleware(AuditMiddleware)
    install_problem_handlers(app)
    app.include_router(studies.router)
    app.include_router(jobs.router)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(health.metrics_router(settings.api.metrics_require_key))
    return app
