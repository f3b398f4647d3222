"""Destination headers (an Authorization token, an API key) are stored encrypted, never in clear text.

The key is derived from Django's SECRET_KEY (HKDF-SHA256); values sealed under a key listed in
SECRET_KEY_FALLBACKS still open, so rotating SECRET_KEY the way Django documents keeps them readable
(save the destination again to reseal it under the new key).
"""

import base64
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_PURPOSE = b"radassist:dicom-destination-headers"


class HeadersUnreadable(Exception):
    """The stored headers were sealed under a key this installation no longer has."""


def _fernet(secret):
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _keys():
    return MultiFernet([_fernet(settings.SECRET_KEY), *map(_fernet, getattr(settings, "SECRET_KEY_FALLBACKS", []))])


def seal(headers):
    return _keys().encrypt(json.dumps(headers or {}, sort_keys=True).encode()).decode() if headers else ""


def unseal(token):
    if not token:
        return {}
    try:
        return json.loads(_keys().decrypt(token.encode()))
    except InvalidToken as error:
        raise HeadersUnreadable(
            "The destination's extra headers cannot be read with this installation's secret key; enter them again."
        ) from error
