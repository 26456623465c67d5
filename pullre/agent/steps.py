"""Deploying one sha, step by step, each step reported (running, then ok/failed/skipped).

fetch → checkout (+ reading ``.pullre.toml``) → build → migrate → start → health → smoke.
Everything before ``start`` happens beside the running app, in a fresh worktree, so a deploy
that fails there leaves the previous app serving; only ``start`` replaces it. Steps after a
failed one are not reported. ``smoke`` runs the repository's fast-tier checks against the fresh
app and reports them with their structured results; a failing check fails the deploy but leaves
the app running, since a broken deploy is easier to diagnose while it still answers.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pullre.agent import commands, health, listeners, migrator, repo_config, supervisor
from pullre.agent.app_user import AppUser
from pullre.agent.assignment import Assignment
from pullre.agent.controller import Controller, ControllerRefused, ControllerUnavailable
from pullre.agent.environment import command_environ
from pullre.agent.git import GitError, Repo
from pullre.agent.repo_config import RepoConfig, RepoConfigError, describe
from pullre.agent.settings import AgentSettings
from pullre.agent.state import App, Failure, State, save
from pullre.smoke.results import Report
from pullre.smoke.runner import Target, select
from pullre.smoke.runner import run as run_smoke

log = logging.getLogger(__name__)
COMMAND_TIMEOUT_S = 1800.0
SMOKE_BUDGET_S = 120.0
T = TypeVar("T")


class StepFailed(Exception):
    """A step failed and was reported; the deploy stops here."""


@dataclass
class Deploy:
    settings: AgentSettings
    controller: Controller
    assignment: Assignment
    state: State
    environ: Mapping[str, str]
    #: Who runs the PR's commands, with its checkouts, HOME and TMPDIR.
    app: AppUser

    @property
    def workdir(self) -> Path:
        return self.settings.workdir

    @property
    def repo(self) -> Repo:
        return Repo(self.workdir / "repo.git", self.environ)

    def report(
        self, step: str, status: str, text: str = "", results: dict[str, Any] | None = None
    ) -> None:
        """Send one step; a controller that cannot take it does not stop the deploy."""
        a = self.assignment
        try:
            self.controller.report_step(
                a.environment_id, a.head_sha, step, status, text, results=results
            )
        except (ControllerUnavailable, ControllerRefused) as exc:
            log.warning("could not report %s %s: %s", step, status, exc)

    def step(self, name: str, action: Callable[[], str]) -> str:
        self.report(name, "running")
        output = self.attempt(name, action)
        self.report(name, "ok", output)
        return output

    def attempt(self, name: str, action: Callable[[], T]) -> T:
        """``action()``, its expected failures turned into a failed ``name`` step."""
        try:
            return action()
        except (GitError, RepoConfigError, migrator.MigrationError, OSError, ValueError) as exc:
            self.fail(name, str(exc))

    def fail(self, name: str, text: str, results: dict[str, Any] | None = None) -> NoReturn:
        masked = self.controller.mask(text)  # the agent's own log shows no secret either
        log.warning("step %s failed for %s:\n%s", name, self.assignment.head_sha, masked[-2000:])
        self.report(name, "failed", text, results)
        sha = self.assignment.head_sha
        previous = self.state.failure
        attempts = previous.attempts + 1 if previous and previous.sha == sha else 1
        self.state.failure = Failure(sha=sha, attempts=attempts, at=time.time())
        raise StepFailed(name)

    # -- the steps -------------------------------------------------------------------------

    def full(self) -> None:
        """Fetch, check out, build, migrate, then replace the app. Raises StepFailed."""
        a = self.assignment
        log.info("deploying PR #%d at %s", a.pr_number, a.head_sha)
        self.step("fetch", lambda: self.repo.fetch_pr(a.clone_url, a.pr_number, *a.fetch_access))
        checkout = self.app.checkouts / str(self.state.next_checkout)
        self.state.next_checkout += 1
        self.state.checkouts.append(str(checkout))
        self.state.clean = False
        save(self.workdir, self.state)
        self.report("checkout", "running")
        output = self.attempt("checkout", lambda: self.export(checkout))
        config = self.attempt("checkout", self.config)  # a bad .pullre.toml fails checkout
        if a.unreadable_secrets:
            self.fail("checkout", a.why_secrets_unreadable())
        self.report("checkout", "ok", output + describe(config))
        env = self.command_environ(config)
        self.command_step("build", config.build, checkout, env)
        if config.migrate is not None:
            self.command_step("migrate", config.migrate, checkout, env)
        elif config.sql_dir is not None:
            self.step("migrate", lambda: self.builtin_migrate(checkout, config.sql_dir or "", env))
        else:
            self.report("migrate", "skipped", "no migrate command and no [migrations] sql_dir")
        self.replace_app(checkout, config, env)
        try:
            self.smoke(config, checkout, env)
            if config.deep_smoke_after_deploy and select(config.smoke, "deep"):
                self.deep_tiers(config, checkout, env)
        finally:
            # Earlier deploys' trees (a venv is thousands of files) go once the new app is
            # serving and checked, not before: nobody waits for them.
            self.remove_checkouts(keep=checkout)

    def restart(self) -> None:
        """Start the current sha's app again from its checkout (it died). Raises StepFailed."""
        app = self.state.app
        assert app is not None
        log.info("the app of %s is not running; restarting it", app.sha)
        config = self.attempt("start", self.config)
        env = self.command_environ(config)
        self.state.clean = False
        self.replace_app(Path(app.checkout), config, env)

    def smoke(self, config: RepoConfig, checkout: Path, env: Mapping[str, str]) -> None:
        """The fast tier of the repository's smoke checks; deep ones wait to be asked for."""
        checks = select(config.smoke, "fast")
        if not checks:
            self.report("smoke", "skipped", "no fast [[smoke]] checks in .pullre.toml")
            return
        self.report("smoke", "running", f"{len(checks)} fast check(s)")
        target = self.smoke_target(config, checkout, env)
        try:
            report = run_smoke(checks, "fast", target, budget=SMOKE_BUDGET_S)
        finally:
            self.state.app_probed_at = time.time()
        if report.status != "pass":
            self.fail("smoke", report.text(), report.to_json())
        self.report("smoke", "ok", report.text(), report.to_json())

    def deep_smoke(self) -> None:
        """Both tiers against the app that runs now, as asked from the UI or API; no redeploy.

        Its results are reported with tier ``deep``, which the controller shows without failing
        the environment, and a failure here is not a failed deploy: nothing is retried later.
        """
        app = self.state.app
        assert app is not None
        try:
            config = self.config()
        except (GitError, RepoConfigError, OSError, ValueError) as exc:
            self.report("smoke", "failed", f"cannot read .pullre.toml: {exc}")
            return
        env = self.command_environ(config)
        self.deep_tiers(config, Path(app.checkout), env)

    def deep_tiers(self, config: RepoConfig, checkout: Path, env: Mapping[str, str]) -> None:
        """One ``smoke`` report of both tiers labelled deep: shown, never failing the deploy."""
        checks = [*select(config.smoke, "fast"), *select(config.smoke, "deep")]
        if not select(config.smoke, "deep"):
            self.report("smoke", "skipped", "no deep [[smoke]] checks in .pullre.toml")
            return
        self.report("smoke", "running", f"{len(checks)} check(s), deep tier")
        target = self.smoke_target(config, checkout, env)
        # One report of both tiers, labelled deep: each check keeps its own tier in the rows.
        try:
            fast = run_smoke(config.smoke, "fast", target, budget=SMOKE_BUDGET_S)
            deep = run_smoke(config.smoke, "deep", target, budget=SMOKE_BUDGET_S)
        finally:
            self.state.app_probed_at = time.time()
        report = Report("deep", fast.results + deep.results, fast.time_ms + deep.time_ms)
        status = "ok" if report.status == "pass" else "failed"
        self.report("smoke", status, report.text(), report.to_json())

    def smoke_target(self, config: RepoConfig, checkout: Path, env: Mapping[str, str]) -> Target:
        """What the checks run against: the app's port, its checkout, environment and database."""
        return Target(
            port=config.port,
            cwd=checkout,
            env=env,
            database=self.assignment.database,
            app=self.app,
        )

    def export(self, checkout: Path) -> str:
        """The commit as a plain tree of the app user's (no ``.git`` into the agent's repo)."""
        self.app.prepare()  # HOME and TMPDIR too, should anything have removed them
        shutil.rmtree(checkout, ignore_errors=True)
        self.app.own_dir(checkout)
        return self.repo.export(
            self.assignment.head_sha, checkout, popen_kwargs=self.app.popen_kwargs()
        )

    def command_environ(self, config: RepoConfig) -> dict[str, str]:
        """Nothing of the agent's own environment but PATH and locale (see ``app_user``)."""
        return command_environ(self.app.environ(self.environ), config, self.assignment)

    def config(self) -> RepoConfig:
        a = self.assignment
        return repo_config.load(self.repo.read_file(a.head_sha), a.defaults, self.settings)

    def command_step(
        self, name: str, argv: tuple[str, ...] | None, cwd: Path, env: Mapping[str, str]
    ) -> None:
        if argv is None:
            self.report(name, "skipped", f"no {name} command")
            return
        self.report(name, "running", f"$ {shlex.join(argv)}")
        result = commands.run(
            argv,
            cwd=cwd,
            env=env,
            log_path=self.log_path(name),
            timeout=COMMAND_TIMEOUT_S,
            popen_kwargs=self.app.popen_kwargs(),
        )
        if not result.ok:
            self.fail(name, result.log)
        self.report(name, "ok", result.log)

    def builtin_migrate(self, checkout: Path, sql_dir: str, env: Mapping[str, str]) -> str:
        if self.assignment.database is None:
            raise migrator.MigrationError(
                "[migrations] sql_dir is set but this environment has no database"
            )
        return migrator.migrate(checkout, sql_dir, self.assignment.database, self.app, env)

    def replace_app(self, checkout: Path, config: RepoConfig, env: Mapping[str, str]) -> None:
        """Stop whatever runs, start the new app, wait until it answers."""
        a = self.assignment
        self.report("start", "running")
        if config.start is None:
            self.fail("start", "no start command: set [deploy] start in .pullre.toml")
        assert config.start is not None
        stop_app(self.state)
        save(self.workdir, self.state)
        taken = listeners.on_port(config.port)
        if taken:
            self.fail(
                "start",
                f"port {config.port} is already in use by {listeners.describe(taken)}; stop "
                "that, or set another [deploy] port in .pullre.toml",
            )
        log_path = self.log_path("app")
        try:
            pid = supervisor.start(config.start, checkout, env, log_path, self.app.popen_kwargs())
        except OSError as exc:
            self.fail("start", f"cannot run {config.start[0]!r}: {exc.strerror or exc}")
        self.state.app = App(
            pid=pid,
            start_time=supervisor.start_time(pid),
            sha=a.head_sha,
            checkout=str(checkout),
            port=config.port,
        )
        save(self.workdir, self.state)
        self.report("start", "ok", f"started pid {pid}: {shlex.join(config.start)}")

        self.report("health", "running")
        app = self.state.app
        try:
            outcome = health.wait_healthy(
                app.pid, app.start_time, config.port, config.health_path, config.health_timeout
            )
        finally:
            self.state.app_probed_at = time.time()
        if not outcome.ok:
            stop_app(self.state)  # a half-started app only holds the port for the next try
            self.fail(
                "health", f"{outcome.message}\n--- app log ---\n{commands.read_tail(log_path)}"
            )
        self.state.deployed_sha = a.head_sha
        self.state.failure = None
        save(self.workdir, self.state)
        self.report("health", "ok", outcome.message)

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def remove_checkouts(self, keep: Path | None) -> None:
        """Worktrees of earlier deploys, except the one the app runs from (and ``keep``)."""
        running = self.state.app.checkout if self.state.app else None
        for path in list(self.state.checkouts):
            if path in {running, str(keep) if keep else None}:
                continue
            try:
                if Path(path).exists():
                    shutil.rmtree(path)
            except OSError as exc:
                log.warning("could not remove old checkout %s: %s", path, exc)
                continue
            self.state.checkouts.remove(path)


def stop_app(state: State) -> None:
    if state.app is not None:
        if supervisor.stop(state.app.pid, state.app.start_time):
            log.info("stopped the app (pid %d, %s)", state.app.pid, state.app.sha)
        state.app = None
        state.deployed_sha = None
