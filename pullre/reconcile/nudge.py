"""Reconcile passes asked for by webhooks, run in one background thread of the web app.

A webhook must be answered within seconds, while a pass can take minutes (GitHub, EC2), so the
request only records the news and nudges; the pass runs here. Nudges coalesce: any number of
them while a pass runs lead to at most one more pass, which reads everything they recorded.
One pass worker is enough because the pass takes the DB lease anyway, so a cron pass and a
nudged pass never act together; running two here would only make one of them skip. Reporting to
GitHub (paced, so slow in a busy minute) runs in a second worker under its own lease, nudged by
every finished pass, so a webhook's pass never waits behind the previous pass's GitHub writes.

The adapters come as factories from the entry point and are built in the worker on the first
pass, so the web app starts (and serves its UI) without GitHub or AWS credentials; a failure to
build them is logged and tried again on the next nudge, never raised into a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from pullre.clock import Clock, system_clock
from pullre.config import Settings
from pullre.ec2.port import Ec2
from pullre.github.port import GitHub
from pullre.reconcile.run import PassReport, run_configured_pass, run_configured_report
from pullre.staging_db.port import StagingDatabase

log = logging.getLogger(__name__)

#: A nudged pass that found the lease held (a cron pass is running) is tried again after this
#: long, because the running pass may have synced before the webhook's news was recorded.
SKIPPED_RETRY_DELAY = 1.0
SKIPPED_RETRIES = 15
#: A pass that left instances stopping (a closed PR's server) is followed by another this soon,
#: and again while some are: the server goes to the next queued PR once a pass sees it stopped,
#: which would otherwise wait for the next webhook or cron pass.
FOLLOW_UP_DELAY = 1.0


class Nudger:
    """A worker running a reconcile pass whenever nudged (coalescing nudges), and one reporting
    to GitHub after each pass."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        github: Callable[[], GitHub],
        ec2: Callable[[], Ec2],
        staging: Callable[[], StagingDatabase | None] = lambda: None,
        clock: Clock = system_clock,
        skipped_retry_delay: float = SKIPPED_RETRY_DELAY,
        skipped_retries: int = SKIPPED_RETRIES,
        follow_up_delay: float = FOLLOW_UP_DELAY,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._make_github = github
        self._make_ec2 = ec2
        self._make_staging = staging
        self._clock = clock
        self._skipped_retry_delay = skipped_retry_delay
        self._skipped_retries = skipped_retries
        self._follow_up_delay = follow_up_delay
        self._adapters: tuple[GitHub, Ec2, StagingDatabase | None] | None = None
        self._adapters_lock = threading.Lock()
        self._changed = threading.Condition()
        self._pending = False
        self._running = False
        self._report_pending = False
        self._reporting = False
        self._closed = False
        #: Nudges received and passes finished (run or skipped), for the log and the tests.
        self.nudges = 0
        self.passes = 0
        self.last_report: PassReport | None = None
        #: Report runs finished (done or skipped), and the errors of the last one.
        self.reports = 0
        self.last_report_errors: list[str] | None = None
        self._thread = threading.Thread(target=self._work, name="pullre-nudger", daemon=True)
        self._reporter = threading.Thread(
            target=self._report_work, name="pullre-reporter", daemon=True
        )
        self._thread.start()
        self._reporter.start()

    def nudge(self, reason: str = "") -> None:
        """Ask for a pass soon; never blocks on the pass, so a request can call it."""
        with self._changed:
            if self._closed:
                return
            self.nudges += 1
            self._pending = True
            self._changed.notify_all()
        log.debug("pass nudged: %s", reason or "no reason given")

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no pass or report runs or is pending; False if ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(
                lambda: (
                    not (self._pending or self._running)
                    and not (self._report_pending or self._reporting)
                ),
                timeout=timeout,
            )

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking nudges and let a running pass finish (up to ``timeout``)."""
        with self._changed:
            self._closed = True
            self._pending = False
            self._report_pending = False
            self._changed.notify_all()
        self._thread.join(timeout)
        self._reporter.join(timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                self._pending = False  # nudges from now on ask for the pass after this one
                self._running = True
            try:
                self._run_once()
            finally:
                with self._changed:
                    self._running = False
                    self.passes += 1
                    self._changed.notify_all()

    def _run_once(self) -> None:
        adapters = self._build_adapters()
        if adapters is None:
            return
        github, ec2, staging = adapters
        for attempt in range(self._skipped_retries + 1):
            started = time.monotonic()
            try:
                report = run_configured_pass(
                    self._settings, self._engine, github, ec2,
                    staging=staging, clock=self._clock, report=False,
                )  # fmt: skip
            except Exception:
                # The next nudge or cron pass starts from the database again; the worker and
                # the web app must outlive any one failed pass.
                log.exception("nudged pass failed")
                return
            self.last_report = report
            if not report.skipped:
                self._nudge_reporter()
                log.info(
                    "nudged pass done in %.1fs: %d assigned, %d released, %d errors",
                    time.monotonic() - started,
                    len(report.assigned),
                    len(report.released),
                    len(report.errors),
                )
                if report.settling and self._sleep(self._follow_up_delay):
                    self._follow_up()
                return
            if attempt < self._skipped_retries and not self._sleep(self._skipped_retry_delay):
                return

    def _follow_up(self) -> None:
        with self._changed:
            if not self._closed:
                self._pending = True
                self._changed.notify_all()

    def _nudge_reporter(self) -> None:
        with self._changed:
            if not self._closed:
                self._report_pending = True
                self._changed.notify_all()

    def _report_work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._report_pending or self._closed)
                if self._closed:
                    return
                self._report_pending = False  # a pass from now on asks for another report
                self._reporting = True
            try:
                self._report_once()
            finally:
                with self._changed:
                    self._reporting = False
                    self.reports += 1
                    self._changed.notify_all()

    def _report_once(self) -> None:
        adapters = self._build_adapters()
        if adapters is None:
            return
        github = adapters[0]
        for attempt in range(self._skipped_retries + 1):
            try:
                errors = run_configured_report(
                    self._settings, self._engine, github, clock=self._clock
                )
            except Exception:
                log.exception("reporting to GitHub failed; the next pass reports again")
                return
            if errors is not None:
                self.last_report_errors = errors
                return
            # Another reporter (cron's) may have read its PRs before this pass changed them.
            if attempt < self._skipped_retries and not self._sleep(self._skipped_retry_delay):
                return

    def _build_adapters(self) -> tuple[GitHub, Ec2, StagingDatabase | None] | None:
        with self._adapters_lock:
            return self._build_adapters_once()

    def _build_adapters_once(self) -> tuple[GitHub, Ec2, StagingDatabase | None] | None:
        if self._adapters is None:
            try:
                self._adapters = (self._make_github(), self._make_ec2(), self._make_staging())
            except Exception:
                log.exception("cannot build the GitHub/EC2 adapters; the nudged pass is skipped")
                return None
        return self._adapters

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless closed meanwhile; True if the worker should go on."""
        with self._changed:
            return not self._changed.wait_for(lambda: self._closed, timeout=seconds)
