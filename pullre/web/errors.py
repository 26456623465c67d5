"""Error pages that answer in the caller's language: HTML for people, JSON for the API."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from pullre.web.auth import wants_json


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
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


def _http_error(error: HTTPException) -> tuple[Response | str, int]:
    return _render(error.code or 500, error.name, error.description or error.name)
