"""The secret store service (Carbyne Stack's Amphora): secrets as SPDZ shares.

A secret is a vector of field elements that no VCP knows: each VCP stores its
value‖MAC shares, with key/value tags, the uploader as owner, and the encoding
the client used. Clients upload through the masks of preprocessed triples
whose relation a·b = c they check themselves, and download through an
output-delivery object verified by the client and MAC-checked by the VCPs
before anything is released (DESIGN §5, mpc-notes §2).

Modules: :mod:`.model` (ids, tags, filters, encodings), :mod:`.storage`
(tables and SQL), :mod:`.acl` (who may do what), :mod:`.agreement` (VCPs
agreeing before acting), :mod:`.delivery` (the ODO of downloads), :mod:`.upload`,
:mod:`.download`, :mod:`.service` (:class:`SecretStore`).

Layer L4: this package may import vcpd.errors, config, keys, logs, math,
wire, store, protocol and :mod:`vcpd.services.ports`; never another service,
net, api, node or daemon.
"""

from __future__ import annotations

from .context import SESSION_TIMEOUT as SESSION_TIMEOUT
from .delivery import DOWNLOAD_TUPLES_PER_ELEMENT as DOWNLOAD_TUPLES_PER_ELEMENT
from .model import ACTIONS as ACTIONS
from .model import RESERVED_TAG_KEYS as RESERVED_TAG_KEYS
from .model import Sort as Sort
from .model import Tag as Tag
from .model import TagFilter as TagFilter
from .service import SecretStore as SecretStore
from .storage import MIGRATIONS as MIGRATIONS
from .upload import UPLOAD_COMMIT_TIMEOUT as UPLOAD_COMMIT_TIMEOUT
from .upload import UPLOAD_TUPLES_PER_ELEMENT as UPLOAD_TUPLES_PER_ELEMENT

__all__ = [
    "ACTIONS",
    "DOWNLOAD_TUPLES_PER_ELEMENT",
    "MIGRATIONS",
    "RESERVED_TAG_KEYS",
    "SESSION_TIMEOUT",
    "UPLOAD_COMMIT_TIMEOUT",
    "UPLOAD_TUPLES_PER_ELEMENT",
    "SecretStore",
    "Sort",
    "Tag",
    "TagFilter",
]
