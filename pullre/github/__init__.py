"""GitHub: every call pullre makes to it goes through one injected ``GitHub`` (``port``).

Modules: ``port`` (the protocol and pullre's value types and errors), ``payloads`` (PR payloads
read into those types, shared by the adapter and the webhook), ``adapter`` (the PyGithub
implementation: auth, pacing, ETags; ``make_github``), ``rest`` (its one request choke point
and paging over PyGithub's ``Requester``), ``transport`` (retries and request counts under
PyGithub), ``standin`` (a stateful fake GitHub served over HTTP for tests and the sandbox).

May import: ``config`` and PyGithub (in ``adapter``, ``rest`` and ``transport`` only). Never
``web``, ``cli`` or ``sandbox``.
"""
