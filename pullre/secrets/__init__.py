"""Repository secrets: values an app needs (a payment sandbox key, an S3 secret) that must not
be committed to ``.pullre.toml`` ``[env]``.

Admins set them per repository (CLI and the repository's secrets page); the controller keeps them
encrypted with a key derived from its own secret key and hands them, decrypted, only to the
agent of a server that serves one of the repository's PRs, in its assignment. No page, API
answer, event or log shows a value again: only names, when and by whom they were set.

Modules: ``names`` (what a secret may be called), ``cipher`` (AES-GCM, key by HKDF from
``[controller] secret_key``), ``store`` (set, remove, list, and the values an assignment carries).

May import: the shared top level and ``cryptography``. Never ``web``, ``cli`` or ``sandbox``.
"""
