"""Encrypting secret values at rest: AES-GCM from ``cryptography``, with a key derived by HKDF.

The key is never stored: it is derived from ``[controller] secret_key`` whenever needed, so a
copy of the database alone reveals no value. The ciphertext is bound to its repository and name
(associated data), so moving a ciphertext to another row does not move the secret with it.
Changing the controller's secret key makes every stored value unreadable (``Unreadable``).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: HKDF's info: this key is for repository secrets and nothing else derived from the same key.
KEY_LABEL = b"pullre repository secrets v1"
#: First byte of every ciphertext, so a later scheme can tell its own rows apart.
VERSION = b"\x01"
NONCE_BYTES = 12


class Unreadable(Exception):
    """The value does not decrypt: the secret key changed, or the row was tampered with."""


def _aead(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_LABEL).derive(
        secret_key.encode()
    )
    return AESGCM(key)


def _associated(repository_id: int, name: str) -> bytes:
    return f"repository-secret\0{repository_id}\0{name}".encode()


def encrypt(secret_key: str, repository_id: int, name: str, value: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: far below GCM's 2**32 messages
    sealed = _aead(secret_key).encrypt(nonce, value.encode(), _associated(repository_id, name))
    return VERSION + nonce + sealed


def decrypt(secret_key: str, repository_id: int, name: str, ciphertext: bytes) -> str:
    if not ciphertext.startswith(VERSION) or len(ciphertext) < 1 + NONCE_BYTES + 16:
        raise Unreadable(f"{name}: not a ciphertext this controller writes")
    nonce = ciphertext[1 : 1 + NONCE_BYTES]
    try:
        plain = _aead(secret_key).decrypt(
            nonce, ciphertext[1 + NONCE_BYTES :], _associated(repository_id, name)
        )
    except InvalidTag:
        raise Unreadable(
            f"{name} cannot be decrypted: [controller] secret_key changed since it was set"
        ) from None
    return plain.decode()
