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


class _Coalescing:
    """One thread running ``job`` whenever asked; asks while it runs make one more run."""

    def __init__(self, owner: Nudger, name: str, job: Callable[[], None]) -> None:
        self._owner, self._job = owner, job
        self.pending = False
        self.running = False
        #: Runs finished (done, skipped or failed), for the log and the tests.
        self.done = 0
        self.thread = threading.Thread(target=self._work, name=name, daemon=True)

    def ask(self) -> None:
        with self._owner.changed:
            if not self._owner.closed:
                self.pending = True
                self._owner.changed.notify_all()

    @property
    def idle(self) -> bool:
        return not (self.pending or self.running)

    def _work(self) -> None:
        changed = self._owner.changed
        while True:
            with changed:
                changed.wait_for(lambda: self.pending or self._owner.closed)
                if self._owner.closed:
                    return
                self.pending = False  # asks from now on are for the run after this one
                self.running = True
            try:
                self._job()
            finally:
                with changed:
                    self.running = False
                    self.done += 1
                    changed.notify_all()


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
        self.changed = threading.Condition()
        self.closed = False
        #: Nudges received, for the log and the tests.
        self.nudges = 0
        self.last_report: PassReport | None = None
        #: The errors of the last report run.
        self.last_report_errors: list[str] | None = None
        self._passes = _Coalescing(self, "pullre-nudger", self._run_once)
        self._reports = _Coalescing(self, "pullre-reporter", self._report_once)
        self._passes.thread.start()
        self._reports.thread.start()

    @property
    def passes(self) -> int:
        """Passes finished (run or skipped)."""
        return self._passes.done

    @property
    def reports(self) -> int:
        """Report runs finished (done or skipped)."""
        return self._reports.done

    def nudge(self, reason: str = "") -> None:
        """Ask for a pass soon; never blocks on the pass, so a request can call it."""
        with self.changed:
            if self.closed:
                return
            self.nudges += 1
        self._passes.ask()
        log.debug("pass nudged: %s", reason or "no reason given")

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no pass or report runs or is pending; False if ``timeout`` passed first."""
        with self.changed:
            return self.changed.wait_for(
                lambda: self._passes.idle and self._reports.idle, timeout=timeout
            )

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking nudges and let a running pass finish (up to ``timeout``)."""
        with self.changed:
            self.closed = True
            self._passes.pending = self._reports.pending = False
            self.changed.notify_all()
        self._passes.thread.join(timeout)
        self._reports.thread.join(timeout)

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
                self._reports.ask()
                log.info(
                    "nudged pass done in %.1fs: %d assigned, %d released, %d errors",
                    time.monotonic() - started,
                    len(report.assigned),
                    len(report.released),
                    len(report.errors),
                )
                if report.settling and self._sleep(self._follow_up_delay):
                    self._passes.ask()
                return
            if attempt < self._skipped_retries and not self._sleep(self._skipped_retry_delay):
                return

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
        with self.changed:
            return not self.changed.wait_for(lambda: self.closed, timeout=seconds)
