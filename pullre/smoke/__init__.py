"""Smoke checks, shared by the controller and the agent: the agent bundle ships this package.

Modules: ``runner`` (run checks in parallel within a budget; the JSON shape of results and their
text), ``config`` (``[[smoke]]`` entries of ``.pullre.toml`` into checks), ``checks`` (the five
kinds of check), ``formats`` (an app's own smoke endpoint: django-smoketest and hospital JSON).

May import: the standard library and ``pullre.agent`` only (checked by import-linter): it runs on
staging boxes beside untrusted code, with no third-party packages.
"""
