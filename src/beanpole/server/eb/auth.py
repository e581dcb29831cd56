"""Who signed a request to the Elastic Beanstalk or S3 face: SigV4 against the access keys.

The dispatcher calls `authenticate` before anything else, with the request as it arrived,
answers a `SigV4Error` in its protocol's error shape (``code``, ``message``, ``status``),
then records the key's use with ``await keys.touch(scope.access_key_id)`` and routes by
``scope.service`` (``elasticbeanstalk`` or ``s3``). Any region is accepted: the server has
one. docs/eb-api-auth.md tells operators how keys work.
"""

from __future__ import annotations

from collections.abc import Mapping

from beanpole.core import sigv4
from beanpole.core.sigv4 import Scope, SigV4Error
from beanpole.services.keys import AccessKeys

INVALID_KEY = "The security token included in the request is invalid."


def authenticate(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    payload_hash: str,
    keys: AccessKeys,
    now: float,
) -> Scope:
    """The scope of a request signed with an active access key; `SigV4Error` otherwise.

    ``raw_path`` and ``raw_query`` as the client sent them (Starlette: ``scope["raw_path"]``
    and ``scope["query_string"]`` decoded as Latin-1), ``headers`` in any case
    (``request.headers``), ``payload_hash`` the sha256 hex digest of the body, ``now``
    seconds since the epoch. An unknown or revoked key is ``InvalidClientTokenId``.
    """
    auth = sigv4.parse(headers, raw_query)
    secret = keys.secret_for(auth.scope.access_key_id)
    if secret is None:
        raise SigV4Error("InvalidClientTokenId", INVALID_KEY)
    sigv4.verify(method, raw_path, raw_query, headers, payload_hash, auth, secret, now)
    return auth.scope
