"""The ``secrets.*`` operations of the client API (the secret store).

Every operation is sent by the client library to **every** VCP with the same
arguments; each VCP checks the caller's rights on its own. Arguments are
checked here into the typed values of :mod:`vcpd.services.secrets.model`, so a
malformed id, tag or filter is a ``bad-request`` naming the problem before the
service is touched. The operations and their arguments are listed in
:func:`register_secret_ops`.

L5: may import L0, math, wire, protocol and services; never net or the daemon.
"""

from __future__ import annotations

from typing import Any, NoReturn

from vcpd.errors import RequestError

from vcpd.services.secrets import SecretStore
from vcpd.services.secrets.model import (
    MAX_PAGE_SIZE,
    check_length,
    check_tag_key,
    parse_actions,
    parse_encoding,
    parse_filters,
    parse_public_key,
    parse_secret_id,
    parse_sort,
    parse_tags,
    parse_uuid,
    unique,
)

from .dispatch import Args, Caller, Dispatcher

__all__ = ["register_secret_ops"]

_MAX_IDS = 10_000  # ids in one delete request


def register_secret_ops(dispatcher: Dispatcher, store: SecretStore) -> None:
    """Add the secret store's operations to ``dispatcher``.

    ======================  ====================================  ===================================
    operation               args (? = optional)                   result
    ======================  ====================================  ===================================
    secrets.upload.begin    id, count, request_id                 id, request_id, a, b, c,
                                                                  expires_in, tuples
    secrets.upload.commit   id, request_id, mu, tags?,            id, length, encoding,
                            encoding?, fraction_bits?             fraction_bits, tags
    secrets.get             id, request_id                        id, length, encoding, fraction_bits,
                                                                  tags, y, rho, v, w, u, tuples
    secrets.list            filters?, sort?, page?, size?         secrets, page, size, total, pages
    secrets.delete          ids, request_id                       deleted
    secrets.tags.get        id                                    id, tags
    secrets.tags.set        id, tags, request_id                  id
    secrets.tags.delete     id, keys, request_id                  id
    secrets.grant           id, client, actions, request_id       id
    secrets.revoke          id, client, actions, request_id       id
    secrets.grants          id                                    id, grants
    ======================  ====================================  ===================================

    a, b, c, y, rho, v, w, u and mu are byte strings of 16-byte LE Montgomery words; tags
    are lists of ``{key, value, type}``; docs/protocol.md has the details.
    """

    async def begin(caller: Caller, args: Args) -> dict[str, Any]:
        secret_id = parse_secret_id(args.str("id"))
        count = check_length(args.int("count"))
        request_id = parse_uuid(args.str("request_id"), "request id")
        args.finish()
        return await store.begin_upload(caller.public_key, secret_id, count, request_id)

    async def commit(caller: Caller, args: Args) -> dict[str, Any]:
        secret_id = parse_secret_id(args.str("id"))
        request_id = parse_uuid(args.str("request_id"), "request id")
        mu = args.bytes("mu")
        tags = parse_tags(args.list("tags", []))
        encoding = parse_encoding(args.str("encoding", "int64"), args.int("fraction_bits", None))
        args.finish()
        return await store.commit_upload(caller.public_key, secret_id, request_id, mu, tags, encoding)

    async def get(caller: Caller, args: Args) -> dict[str, Any]:
        secret_id = parse_secret_id(args.str("id"))
        request_id = parse_uuid(args.str("request_id"), "request id")
        args.finish()
        return await store.download(caller.public_key, secret_id, request_id)

    async def list_(caller: Caller, args: Args) -> dict[str, Any]:
        filters = parse_filters(args.list("filters", []))
        sort = parse_sort(args.map("sort", None))
        page = args.int("page", 0)
        size = args.int("size", MAX_PAGE_SIZE)
        args.finish()
        return await store.list(caller.public_key, filters, sort, page, size)

    async def delete(caller: Caller, args: Args) -> dict[str, Any]:
        ids = args.str_list("ids")
        if len(ids) > _MAX_IDS:
            raise_bad(f"at most {_MAX_IDS} ids per delete")
        parsed = unique([parse_secret_id(i) for i in ids], "secret id")
        request_id = parse_uuid(args.str("request_id"), "request id")
        args.finish()
        return {"deleted": await store.delete(caller.public_key, parsed, request_id)}

    async def tags_get(caller: Caller, args: Args) -> dict[str, Any]:
        secret_id = parse_secret_id(args.str("id"))
        args.finish()
        return {"id": secret_id, "tags": await store.get_tags(caller.public_key, secret_id)}

    async def tags_set(caller: Caller, args: Args) -> dict[str, Any]:
        secret_id = parse_secret_id(args.str("id"))
        tags = parse_tags(args.list("tags"))
        if not tags:
            raise_bad("give at least one tag to set")
        request_id = parse_uuid(args.str("request_id"), "request id")
        args.finish()
        await store.set_tags(caller.public_key, secret_id, tags, request_id)
        return {"id": secret_id}

    async def tags_delete(caller: Caller, args: Args) -> dict[str, Any]:
        secret_id = parse_secret_id(args.str("id"))
        keys = unique([check_tag_key(k) for k in args.str_list("keys")], "tag key")
        request_id = parse_uuid(args.str("request_id"), "request id")
        args.finish()
        await store.delete_tags(caller.public_key, secret_id, keys, request_id)
        return {"id": secret_id}

    async def grant(caller: Caller, args: Args) -> dict[str, Any]:
        secret_id = parse_secret_id(args.str("id"))
        client = parse_public_key(args.str("client"))
        actions = parse_actions(args.list("actions"))
        request_id = parse_uuid(args.str("request_id"), "request id")
        args.finish()
        await store.grant(caller.public_key, secret_id, client, actions, request_id)
        return {"id": secret_id}

    async def revoke(caller: Caller, args: Args) -> dict[str, Any]:
        secret_id = parse_secret_id(args.str("id"))
        client = parse_public_key(args.str("client"))
        actions = parse_actions(args.list("actions"))
        request_id = parse_uuid(args.str("request_id"), "request id")
        args.finish()
        await store.revoke(caller.public_key, secret_id, client, actions, request_id)
        return {"id": secret_id}

    async def grants(caller: Caller, args: Args) -> dict[str, Any]:
        secret_id = parse_secret_id(args.str("id"))
        args.finish()
        return {"id": secret_id, "grants": await store.grants(caller.public_key, secret_id)}

    dispatcher.register("secrets.upload.begin", begin)
    dispatcher.register("secrets.upload.commit", commit)
    dispatcher.register("secrets.get", get)
    dispatcher.register("secrets.list", list_)
    dispatcher.register("secrets.delete", delete)
    dispatcher.register("secrets.tags.get", tags_get)
    dispatcher.register("secrets.tags.set", tags_set)
    dispatcher.register("secrets.tags.delete", tags_delete)
    dispatcher.register("secrets.grant", grant)
    dispatcher.register("secrets.revoke", revoke)
    dispatcher.register("secrets.grants", grants)



def raise_bad(message: str) -> NoReturn:
    """Refuse the request as malformed."""
    raise RequestError("bad-request", message)
