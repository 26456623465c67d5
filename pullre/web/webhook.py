"""``POST /webhook/github``: GitHub's news of a pull request, recorded at once, acted on soon.

The endpoint is public (GitHub has no session) and exempt from CSRF; what authenticates it is
the HMAC-SHA256 signature of the raw body with ``[github] webhook_secret``. Both of GitHub's
content types are taken: ``application/json`` and its default, a form whose ``payload`` field
holds the JSON (signed as sent, so the form is read from the raw body, after the check).
Without a secret every delivery is refused, so a forgotten setting cannot open the endpoint to
anyone.

A pull request event is recorded from its payload with ``sync.apply_pull`` (the same path the
poll uses) and a reconcile pass is nudged in the background; the answer does not wait for it.
GitHub's listing stays the source of truth: the next pass corrects anything a webhook got wrong.

Deliveries can arrive out of order (GitHub retries, parallel senders). A payload whose PR
``updated_at`` is older than the one stored is not applied: it would roll the PR back (an old
head sha, a closed PR reopened). Equal times are applied, as GitHub's times have one-second
resolution and the payload of the same moment is as good as what is stored; if two changes
share a second and arrive swapped, the nudged pass puts the PR right from GitHub's listing.

``X-GitHub-Delivery`` ids of applied deliveries are stored under a unique constraint, written in
the same transaction as the PR, so a redelivery is applied once even when two copies race.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import system_clock
from pullre.config import Settings
from pullre.github.payloads import parse_pull
from pullre.github.port import PullRequestInfo
from pullre.models import PullRequest, Repository, WebhookDelivery
from pullre.reconcile.nudge import Nudger
from pullre.reconcile.sync import apply_pull
from pullre.web.auth import csrf
from pullre.web.db_session import get_session

log = logging.getLogger(__name__)

blueprint = Blueprint("webhook", __name__)

NUDGER_KEY = "pullre.nudger"
#: GitHub caps webhook payloads at 25 MB; anything larger did not come from GitHub.
MAX_BODY_BYTES = 25 * 1024 * 1024
DELIVERY_ID_LENGTH = 64
SIGNATURE = "X-Hub-Signature-256"
#: GitHub's default webhook content type: the JSON is the urlencoded ``payload`` field.
FORM = "application/x-www-form-urlencoded"
#: Actions that can change what pullre records of a PR; the others (assigned, review_requested,
#: ...) change nothing pullre looks at.
PULL_REQUEST_ACTIONS = frozenset(
    {
        "opened",
        "reopened",
        "synchronize",
        "closed",
        "edited",
        "labeled",
        "unlabeled",
        "ready_for_review",
        "converted_to_draft",
    }
)

Answer = tuple[Response, int]


class Reply(Exception):
    """Ends the request with ``status`` and a JSON body, from whichever check decided it."""

    def __init__(self, status: int, **body: Any) -> None:
        super().__init__(status, body)
        self.status, self.body = status, body


@dataclass(frozen=True)
class PullEvent:
    """What a pull request delivery says, checked before anything is written."""

    delivery_id: str
    action: str
    owner: str
    name: str
    info: PullRequestInfo


def init_app(app: Flask, nudger: Nudger | None) -> None:
    """Register the view; ``nudger`` None means passes come from cron only."""
    app.extensions[NUDGER_KEY] = nudger
    app.register_blueprint(blueprint)


@blueprint.post("/webhook/github")
def receive() -> Answer:
    try:
        body = _authenticated_body()
        event = request.headers.get("X-GitHub-Event", "")
        if event == "ping":
            return jsonify(ok=True), 200
        if event != "pull_request":
            raise Reply(202, ignored=f"event {event or '(none)'!r} is not handled")
        pull_event = _pull_event(body)
        _record(get_session(), pull_event)
    except Reply as reply:
        return jsonify(reply.body), reply.status
    nudger: Nudger | None = current_app.extensions.get(NUDGER_KEY)
    if nudger is not None:
        nudger.nudge(f"{pull_event.owner}/{pull_event.name}#{pull_event.info.number}")
    return jsonify(accepted=True, pull_request=pull_event.info.number), 202


# GitHub cannot send a CSRF token; the signature is what authenticates this view.
csrf.exempt(receive)


def _authenticated_body() -> bytes:
    settings: Settings = current_app.extensions["pullre.settings"]
    secret = settings.github.webhook_secret
    if not secret:
        raise Reply(403, error="the GitHub webhook is not configured on this pullre")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise Reply(413, error="payload too large")
    request.max_content_length = MAX_BODY_BYTES  # above the app's 1 MB, for this route only
    body = request.get_data(cache=True)
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), request.headers.get(SIGNATURE, "").encode()):
        log.warning("webhook refused: bad or missing signature from %s", request.remote_addr)
        raise Reply(401, error=f"bad or missing {SIGNATURE}")
    return body


def _pull_event(body: bytes) -> PullEvent:
    """Parse and check the whole delivery first, so a malformed one records nothing."""
    payload = _payload(body)
    if not isinstance(payload, dict):
        raise Reply(400, error="the body is not a JSON object")
    action = _text(payload, "action")
    if action not in PULL_REQUEST_ACTIONS:
        raise Reply(202, ignored=f"action {action!r} is not handled")
    delivery_id = request.headers.get("X-GitHub-Delivery", "")
    if not delivery_id or len(delivery_id) > DELIVERY_ID_LENGTH:
        raise Reply(400, error="missing or overlong X-GitHub-Delivery")
    repo, data = payload.get("repository"), payload.get("pull_request")
    if not isinstance(repo, dict) or not isinstance(repo.get("owner"), dict):
        raise Reply(400, error="missing 'repository'")
    if not isinstance(data, dict):
        raise Reply(400, error="missing 'pull_request'")
    try:
        info = parse_pull(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Reply(400, error=f"malformed pull_request ({exc.__class__.__name__})") from exc
    return PullEvent(delivery_id, action, _text(repo["owner"], "login"), _text(repo, "name"), info)


def _payload(body: bytes) -> Any:
    """The delivery's JSON, sent as it is or, under GitHub's default content type (form), as
    the ``payload`` field of a urlencoded body. Either way the signature covered the raw body."""
    if request.mimetype == FORM:
        try:
            fields = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=8)
        except (UnicodeDecodeError, ValueError) as exc:
            raise Reply(400, error="the body is not a urlencoded form") from exc
        if len(fields.get("payload", [])) != 1:
            raise Reply(400, error="the form has no single 'payload' field")
        text: str | bytes = fields["payload"][0]
    elif request.mimetype == "application/json":
        text = body
    else:
        raise Reply(415, error=f"set the webhook's content type to application/json or {FORM}")
    try:
        return json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Reply(400, error="the payload is not JSON") from exc


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise Reply(400, error=f"missing {key!r}")
    return value


def _record(session: Session, event: PullEvent) -> None:
    """Record the PR and its delivery id in one transaction, or reply why not."""
    repository = _registered(session, event.owner, event.name)
    if repository is None:
        raise Reply(202, ignored=f"{event.owner}/{event.name} is not registered in pullre")
    if not repository.enabled:
        raise Reply(202, ignored=f"{repository.full_name} is disabled in pullre")
    repository_id = repository.id
    # A clash on the delivery id means another copy of this delivery was recorded first. A
    # clash on the PR row (two different deliveries creating the same new PR at once) is tried
    # once more, and then finds the row the other one created.
    for attempt in (1, 2):
        # End the read transaction first, so the delivery row is the transaction's first
        # statement: SQLite then waits for a racing writer instead of failing to upgrade a
        # stale read snapshot ("database is locked").
        session.commit()
        try:
            applied = _apply(session, repository, event)
            session.commit()
            break
        except IntegrityError:
            session.rollback()
            if _seen(session, event.delivery_id):
                raise Reply(200, duplicate=True) from None
            if attempt == 2:
                log.warning("webhook %s not recorded: it clashed twice", event.delivery_id)
                raise Reply(503, error="conflict while recording; the next pass syncs it") from None
            repository = session.get(Repository, repository_id) or repository
    if not applied:
        raise Reply(202, ignored=f"#{event.info.number}: older than what pullre holds")


def _registered(session: Session, owner: str, name: str) -> Repository | None:
    """GitHub names are case-insensitive; the registered spelling may differ from the payload's."""
    return session.scalars(
        select(Repository)
        .where(func.lower(Repository.owner) == owner.lower())
        .where(func.lower(Repository.name) == name.lower())
        .order_by(Repository.id)
    ).first()


def _apply(session: Session, repository: Repository, event: PullEvent) -> bool:
    """Store the delivery id first (its unique row is the lock), then the PR unless stale."""
    info = event.info
    session.add(WebhookDelivery(delivery_id=event.delivery_id, event="pull_request"))
    session.flush()
    stored = session.scalar(
        select(PullRequest).where(
            PullRequest.repository_id == repository.id, PullRequest.number == info.number
        )
    )
    if stored is not None and stored.updated_at is not None and info.updated_at < stored.updated_at:
        events.record(
            session,
            "webhook.stale",
            f"#{info.number} {event.action}: payload older than what is recorded, not applied",
            pull_request=stored,
            delivery=event.delivery_id,
        )
        return False
    pull = apply_pull(session, repository, info, system_clock, stored)
    events.record(
        session,
        "webhook",
        f"#{info.number} {event.action} (from GitHub's webhook)",
        pull_request=pull,
        delivery=event.delivery_id,
        action=event.action,
        head_sha=info.head_sha,
    )
    return True


def _seen(session: Session, delivery_id: str) -> bool:
    return (
        session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.delivery_id == delivery_id))
        is not None
    )
