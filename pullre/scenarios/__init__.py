"""Written acceptance scenarios business owners run on a PR's environment before merge.

Modules: ``acceptance`` (which scenarios a PR needs, runs and their verdicts, the
``pullre/acceptance`` state), ``authoring`` (UI scenarios' bounds, who may change or delete
them), ``markdown`` (the ``.pullre/scenarios/*.md`` format), ``sources``
(scenarios read from the repository at a PR's head commit).

May import: the shared top level and the GitHub port. Never ``web``, ``cli`` or ``sandbox``.
"""
