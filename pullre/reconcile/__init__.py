"""One reconcile pass: make the pool match what GitHub wants, safely, any number of times.

Modules: ``run`` (``run_pass``: lease, sync, plan, policies, provisioning, EC2, reporting),
``sync`` (the controller's copy of each repository's open PRs), ``pool`` (who gets a server, who
waits, who gives one back), ``provisioning`` (the PR's schema cloned and dropped),
``pool_operations`` (the EC2 side: observe, stop, start), ``lease`` (one pass at a time),
``context`` (what a pass's steps share), ``history`` (one ``PassRun`` row per pass), ``nudge``
(passes asked for by webhooks, run in the web app's background thread).

May import: the ports (``github.port``, ``ec2``, ``staging_db.port``), ``policies``, ``reporting``,
``cost``, the shared top level. Never ``web``, ``cli`` or ``sandbox``.
"""
