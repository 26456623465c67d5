"""One pass's reporting: every PR's changed reports in turn, within a time budget.

The ``Reporter`` (``sender``) sends one PR's reports; this is the loop the reconcile pass runs
last: the facts are read in one transaction closed before GitHub is asked anything, a rate limit
or a spent budget leaves the rest for the next pass (which starts with the PRs reported longest
ago), and the pass's lease is renewed as the loop goes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from pullre.clock import Clock
from pullre.github.port import GitHub, GitHubRateLimited
from pullre.reporting.facts import load
from pullre.reporting.sender import Reporter

log = logging.getLogger(__name__)

#: Writes to GitHub are paced a second apart, so a backlog (a queue shift edits every waiting
#: PR's comment) could hold the reconcile lease for minutes; past this, the rest waits for the
#: next pass, which starts with the PRs reported longest ago.
REPORT_BUDGET = timedelta(seconds=30)
#: The lease is renewed after each PR that asked GitHub anything (each request may take
#: seconds), and otherwise at least this often: checking unchanged PRs is quick, and renewing
#: after each of them cost a transaction per PR. Well inside the shortest lease (5 s).
RENEW_EVERY = timedelta(seconds=1)


def report_changes(
    sessions: sessionmaker[Session],
    github: GitHub,
    *,
    public_url: str,
    clock: Clock,
    renew: Callable[[], None] = lambda: None,
    budget: timedelta | None = REPORT_BUDGET,
    ttl: timedelta | None = None,
    currency: str = "",
) -> list[str]:
    """Report what changed for every PR; the errors, which are also kept on their rows.

    ``ttl`` (the pool's expiry, None when off) dates the expiry warning; ``currency`` names
    the unit of the prices the cost line adds up.

    One PR's failure never stops the others, except a rate limit: every later request would be
    refused too, so the rest waits for the next pass (their digests are still stale). So does
    everything left once ``budget`` is spent; at least one PR is reported per call.

    ``renew`` (the pass's lease) is called after each PR that made GitHub requests, and
    every ``RENEW_EVERY`` otherwise (PRs with nothing new cost no request).
    """
    started = renewed = time.monotonic()
    with sessions() as session:
        pulls = load(session, clock, ttl=ttl)
        session.commit()  # end the read before GitHub is asked anything
    reporter = Reporter(sessions, github, public_url=public_url, clock=clock, currency=currency)
    for pull in pulls:
        requests = reporter.requests
        try:
            reporter.report(pull)
        except GitHubRateLimited:
            break
        except Exception as exc:  # a bug here must not cost the pass its other PRs' reports
            log.exception("reporting #%s of %s/%s failed", pull.number, pull.owner, pull.name)
            reporter.errors.append(f"{pull.owner}/{pull.name}#{pull.number}: {exc!r}")
        now = time.monotonic()
        if reporter.requests != requests or now - renewed >= RENEW_EVERY.total_seconds():
            renew()
            renewed = now
        if budget is not None and time.monotonic() - started > budget.total_seconds():
            log.info("reporting budget spent; the rest is reported by the next pass")
            break
    return reporter.errors
