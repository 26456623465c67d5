"""A PR's environment: what people ask of it and what its agent reports about it.

Modules: ``active`` (a PR's current stay), ``actions`` (redeploy, reset data, release, pin,
sleep, wake, run smoke checks: intent recorded for the pass and the agent), ``deploys`` (the
assignment a server's agent fetches and what its step reports do), ``status`` (where PRs stand,
for the CLI, the API and the PR page), ``smoke_results`` (stored smoke results as people see them).

May import: the shared top level, ``policies``, ``scenarios``, ``reconcile.pool`` (queue order),
``smoke`` (its result shape) and the ports' value types. Never ``web``, ``cli`` or ``sandbox``.
"""
