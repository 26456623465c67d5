"""pullre: a staging environment for every open GitHub pull request.

The top level holds only what every concern shares: ``config`` (settings) and ``config_values``
(what one setting's text may be), ``db`` (engine and sessions), ``models`` (the controller's
tables, a package with one module per concern), ``migrate`` (Alembic, run programmatically),
``clock`` (time as a port), ``events`` (the audit log), ``identifiers`` (strict name patterns),
``secret_key``, ``startup`` and ``log_format`` (what entry points do first), and ``ec2`` (the EC2
port and its boto3 adapter).

Each concern is a package whose ``__init__`` says what it holds and what it may import:
``github``, ``staging_db``, ``reconcile``, ``policies``, ``reporting``, ``environments``,
``trust`` (who may run a PR's code), ``scenarios``, ``cost``, ``overview``, ``accounts``,
``servers``, ``smoke`` and ``agent`` (the staging-side bundle), ``web`` (the Flask app), ``cli``
and ``sandbox``. The layering is written as import-linter contracts in ``pyproject.toml`` and
checked by ``make test``.
"""
