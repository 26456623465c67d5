"""A PR's environment: what people ask of it, what its agent is told, and what it reports.

Modules: ``active`` (a PR's current stay), ``actions`` (redeploy, reset data, release, pin,
sleep, wake, run smoke checks: intent recorded for the pass and the agent) and
``action_rules`` (which of them apply now, and why not), ``deploys`` (the assignment a
server's agent fetches, with the PR's database access), ``agent_reports`` (what its step
reports and heartbeats do), ``tokens`` (the per-environment agent token), ``fetch_tokens`` and
``clone_urls`` (how a box may fetch the PR's code), ``step_retention`` (how much of the step
history is kept), ``status`` (where PRs stand, for the CLI, the API and the PR page),
``visit_status`` and ``error_text`` (the words people read for an environment),
``smoke_results`` (stored smoke results as people see them).

May import: the shared top level, ``policies``, ``scenarios``, ``secrets``, ``trust``,
``reconcile.pool`` (queue order), ``smoke`` (its result shape) and the ports' value types.
Never ``web``, ``cli`` or ``sandbox``.
"""
