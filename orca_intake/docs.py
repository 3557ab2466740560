"""The intake's API documentation: `/docs` (Swagger UI), `/redoc` (ReDoc) and the OpenAPI tag descriptions.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so offline (or behind a strict proxy) they stay
blank. Here their JavaScript and CSS come from the intake itself, from the files the `fastapi-offline`
package ships (Swagger UI 5 and ReDoc 2, kept up to date by that package's releases). The pages and their
files are served like `/health/live`: no token, and without tokens only to this machine (BrowserGuard).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
ASSETS_DIR = files("fastapi_offline") / "static"
SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON = "swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"

# One entry per router tag, in the order the pages show them.
OPENAPI_TAGS = [
    {
        "name": "documents",
        "description": "Add, replace and delete a collection's documents. They are written into the collection's "
        "inbox and a request is queued; follow it with `GET /v1/jobs/{request_id}`.",
    },
    {
        "name": "jobs",
        "description": "Queue ad hoc jobs (`embed`, `reindex`, `purge`, `prepare_model`), list requests, follow "
        "any request into its Dagster run, and cancel a request (or terminate its run).",
    },
    {
        "name": "collections",
        "description": "What each collection holds: documents in its inbox, chunks in its index, the model "
        "that built it, and its last finished request.",
    },
    {
        "name": "search",
        "description": "Nearest chunks of a collection's served index to a query, with optional metadata, "
        "document and page filters.",
    },
    {
        "name": "embeddings",
        "description": "OpenAI-compatible embeddings from the configured embedder, embedded as the pipeline "
        "embeds documents.",
    },
    {
        "name": "models",
        "description": "OpenAI-compatible model list: the embedding model this intake serves, as Ollama's "
        "OpenAI-compatible API lists its models.",
    },
    {
        "name": "operations",
        "description": "Health probes (a one-line `/health`, liveness, readiness, every dependency's status) "
        "and Prometheus metrics. Open without a token; with tokens the detailed ones may need one.",
    },
]


def install_docs(app: FastAPI) -> None:
    """Serve `/docs`, `/redoc` and their assets from this process (create the app with `docs_url=None` and
    `redoc_url=None`, so FastAPI does not add its CDN-loading pages)."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR)), name="docs-assets")
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect}" if oauth2_redirect else None,
            swagger_js_url=asset(request, SWAGGER_JS),
            swagger_css_url=asset(request, SWAGGER_CSS),
            swagger_favicon_url=asset(request, FAVICON),
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if oauth2_redirect:

        @app.get(oauth2_redirect, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=f"{request.scope.get('root_path', '')}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, REDOC_JS),
            redoc_favicon_url=asset(request, FAVICON),
            with_google_fonts=False,  # fonts from Google would be a request to the internet
        )
