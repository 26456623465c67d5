"""Error pages that answer in the caller's language: HTML for people, JSON for the API."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from pullre.web.auth import wants_json

#: ``MAX_CONTENT_LENGTH`` of every route but the webhook: forms, the JSON API and agent reports
#: (a 64 KiB log plus 64 KiB of smoke results) all fit many times over.
MAX_REQUEST_BYTES = 1024 * 1024


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)


def _render(status: int, title: str, message: str) -> tuple[Response | str, int]:
    if wants_json():
        return jsonify(error=message), status
    return render_template("error.html", title=title, message=message), status


def _csrf_error(error: CSRFError) -> tuple[Response | str, int]:
    return _render(
        400,
        "Form expired",
        "The form was missing its security token or it expired. Go back, reload and try again.",
    )


def _too_large(error: RequestEntityTooLarge) -> tuple[Response | str, int]:
    limit = request.max_content_length or MAX_REQUEST_BYTES
    return _render(
        413,
        "Request too large",
        f"The request body is larger than pullre accepts here ({limit // 1024} KiB).",
    )


def _http_error(error: HTTPException) -> tuple[Response | str, int]:
    return _render(error.code or 500, error.name, error.description or error.name)
