"""The admin listener: liveness/readiness (`/health`), Prometheus metrics (`/metrics`) and the
bulk campaigns API for hospital information systems (`/bulk/…`, bulk/api.py: bearer tokens).
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from pli import __version__

from .bulk.api import create_bulk_router
from .services import Runtime


def create_admin_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="pli admin", version=__version__, docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 when every registered check passes, 503 with the failing ones otherwise."""
        checks = await runtime.health()
        healthy = all(result == "ok" for result in checks.values())
        body = {"status": "ok" if healthy else "degraded", "version": __version__, "checks": checks}
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.include_router(create_bulk_router(runtime))
    return app
