"""The secret store's data model and the client's value encodings (no I/O)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vcpd.client.secrets import decode_values, encode_values, parse_sort, verify_delivery, verify_masks
from vcpd.errors import FieldError, IntegrityError, RequestError
from vcpd.math import PrimeField, share_vector
from vcpd.services.ports import SecretEncoding
from vcpd.services.secrets.model import (
    MAX_TAGS,
    Sort,
    Tag,
    TagFilter,
    parse_actions,
    parse_encoding,
    parse_filter,
    parse_public_key,
    parse_secret_id,
    parse_sort as parse_sort_server,
    parse_tags,
    tags_from_mapping,
)

FIELD = PrimeField()
KEY = "XBKZQK7R/7sUJAbs4NKKNIrccpmCx2Pe/qR53PDvxUE="


def bad(match: str) -> Any:
    return pytest.raises(RequestError, match=match)


def test_secret_ids_are_canonical_uuids() -> None:
    assert parse_secret_id("F04F0E93-064E-40C2-898F-210BDBE74C54") == "f04f0e93-064e-40c2-898f-210bdbe74c54"
    for text in ("", "xyz", "f04f0e93064e40c2898f210bdbe74c54", "{f04f0e93-064e-40c2-898f-210bdbe74c5}", 7, None):
        with bad("is not a UUID") as info:
            parse_secret_id(text)
        assert info.value.code == "bad-request"


def test_tag_rules() -> None:
    assert Tag.parse({"key": "a.b-c_9", "value": "x"}) == Tag("a.b-c_9", "x", "STRING")
    assert Tag.parse({"key": "n", "value": "-12", "type": "LONG"}).number == -12
    assert Tag.parse({"key": "n", "value": 5, "type": "LONG"}).value == "5"
    with bad("longer than 128"):
        Tag.parse({"key": "k" * 129, "value": ""})
    with bad("may contain only"):
        Tag.parse({"key": "a b", "value": ""})
    with bad("may contain only"):
        Tag.parse({"key": "ü", "value": ""})  # ASCII only, as in Amphora's Java regex
    with bad("longer than 256"):
        Tag.parse({"key": "k", "value": "v" * 257})
    with bad("not a signed 64-bit integer"):
        Tag.parse({"key": "k", "value": "1.5", "type": "LONG"})
    with bad("outside the signed 64-bit range"):
        Tag.parse({"key": "k", "value": str(2**63), "type": "LONG"})
    assert Tag.parse({"key": "k", "value": str(-(2**63)), "type": "LONG"}).number == -(2**63)
    with bad("STRING or LONG"):
        Tag.parse({"key": "k", "value": "1", "type": "INT"})
    with bad("unknown field"):
        Tag.parse({"key": "k", "value": "1", "colour": "red"})
    with bad("reserved"):
        Tag.parse({"key": "owner", "value": KEY})
    with bad("reserved"):
        Tag.parse({"key": "creation-date", "value": "1", "type": "LONG"})


def test_tag_lists() -> None:
    tags = parse_tags([{"key": "b", "value": "2"}, {"key": "a", "value": "1"}])
    assert [t.key for t in tags] == ["a", "b"]
    with bad("duplicate tag key 'a'"):
        parse_tags([{"key": "a", "value": "1"}, {"key": "a", "value": "2"}])
    with bad(f"at most {MAX_TAGS} tags"):
        parse_tags([{"key": f"k{i}", "value": ""} for i in range(MAX_TAGS + 1)])
    with bad("must be a list"):
        parse_tags({"a": "1"})
    assert tags_from_mapping({"n": 3, "s": "x"}) == (Tag("n", "3", "LONG"), Tag("s", "x", "STRING"))
    with bad("value must be a string"):
        tags_from_mapping({"f": 1.5})  # type: ignore[dict-item]


def test_filters() -> None:
    assert parse_filter("owner=" + KEY) == TagFilter("owner", "=", KEY)  # '=' inside the value is fine
    assert parse_filter("n<-5") == TagFilter("n", "<", "-5")
    assert parse_filter("n>10").number == 10
    assert parse_filter("a=") == TagFilter("a", "=", "")
    assert str(parse_filter("a=b")) == "a=b"
    with bad("has no operator"):
        parse_filter("just-a-key")
    with bad("no tag key"):
        parse_filter("=x")
    with bad("may contain only"):
        parse_filter("a b=c")
    with bad("not a signed 64-bit integer"):
        parse_filter("n<ten")
    with bad("outside the signed 64-bit range"):
        parse_filter(f"n>{2**64}")
    with bad("must be a string"):
        parse_filter(5)


def test_sort_encoding_actions_keys() -> None:
    assert parse_sort_server(None) == Sort("creation-date", False)
    assert parse_sort_server({"key": "n", "order": "desc"}) == Sort("n", True)
    with bad("asc' or 'desc"):
        parse_sort_server({"key": "n", "order": "up"})
    assert parse_encoding("fixed") == SecretEncoding("fixed", 16)
    assert parse_encoding("fixed", 8) == SecretEncoding("fixed", 8)
    assert parse_encoding("int64") == SecretEncoding("int64", 0)
    with bad("fixed' encoding only"):
        parse_encoding("int64", 3)
    with bad("encoding must be one of"):
        parse_encoding("float")
    with bad("0..63"):
        parse_encoding("fixed", 64)
    assert parse_actions(["tag", "read", "read"]) == ("read", "tag")
    with bad("unknown action 'write'"):
        parse_actions(["write"])
    with bad("non-empty"):
        parse_actions([])
    assert parse_public_key(KEY) == KEY
    with bad("not a base64"):
        parse_public_key("not base64!")
    with bad("32 bytes"):
        parse_public_key("AAAA")
    assert parse_sort("n:desc") == {"key": "n", "order": "desc"}
    assert parse_sort(("n", "asc")) == {"key": "n", "order": "asc"}
    assert parse_sort("n") == {"key": "n", "order": "asc"}


def test_value_encodings_round_trip() -> None:
    ints = [0, 1, -1, 2**63 - 1, -(2**63), 12345678901234]
    assert decode_values(encode_values(FIELD, ints, "int64", 0), "int64", 0) == ints
    raw = [0, 1, FIELD.p - 1]
    assert decode_values(encode_values(FIELD, raw, "field", 0), "field", 0) == raw
    reals = [0.0, -1.5, 3.14159, 1e9, -2.0**-16, 7]
    decoded = decode_values(encode_values(FIELD, reals, "fixed", 16), "fixed", 16)
    assert all(math.isclose(a, b, abs_tol=2**-16) for a, b in zip(reals, decoded, strict=True))
    with pytest.raises(FieldError, match="value 1 is outside the signed 64-bit range"):
        encode_values(FIELD, [0, 2**63], "int64", 0)
    with pytest.raises(FieldError, match="value 0 is not an integer"):
        encode_values(FIELD, [1.5], "int64", 0)
    with pytest.raises(FieldError, match=r"value 0 is not a field element"):
        encode_values(FIELD, [FIELD.p], "field", 0)
    with pytest.raises(FieldError, match="value 0 is not a finite number"):
        encode_values(FIELD, [math.nan], "fixed", 16)
    with pytest.raises(FieldError, match="does not fit"):
        encode_values(FIELD, [2.0**48], "fixed", 16)
    with pytest.raises(FieldError, match="at least one value"):
        encode_values(FIELD, [], "int64", 0)


def _odo(y: list[int], alpha: int = 7, n_parties: int = 3, shift: int = 0) -> list[dict[str, bytes]]:
    """Honest ODO answers for y (optionally VCP 0 shifts its y share)."""
    n = len(y)
    y_arr = FIELD.from_ints(y)
    rho, v = FIELD.random(n), FIELD.random(n)
    parts = {name: share_vector(FIELD, arr, alpha, n_parties) for name, arr in
             {"y": y_arr, "rho": rho, "v": v, "w": y_arr * rho, "u": v * rho}.items()}
    answers = [{name: parts[name][i].values.to_bytes() for name in parts} for i in range(n_parties)]
    if shift:
        answers[0]["y"] = (FIELD.from_bytes(answers[0]["y"]) + shift).to_bytes()
    return answers


def test_client_delivery_check() -> None:
    assert verify_delivery(FIELD, _odo([5, 6, 7]), 3).to_ints() == [5, 6, 7]
    with pytest.raises(IntegrityError, match="failed the output-delivery check"):
        verify_delivery(FIELD, _odo([5, 6, 7], shift=1), 3)
    answers = _odo([5])
    answers[1]["w"] = answers[1]["w"][:-1]
    with pytest.raises(IntegrityError, match="VCP 1 sent a malformed 'w'"):
        verify_delivery(FIELD, answers, 1)


def _triples(a: list[int], b: list[int], n_parties: int = 3) -> list[dict[str, bytes]]:
    """Honest begin answers: value shares of triples (a, b, a·b)."""
    arrays = {"a": FIELD.from_ints(a), "b": FIELD.from_ints(b)}
    arrays["c"] = arrays["a"] * arrays["b"]
    parts = {name: share_vector(FIELD, arr, 7, n_parties) for name, arr in arrays.items()}
    return [{name: parts[name][i].values.to_bytes() for name in parts} for i in range(n_parties)]


def test_client_mask_check() -> None:
    assert verify_masks(FIELD, _triples([5, 6], [3, 4]), 2).to_ints() == [5, 6]
    for name in ("a", "b", "c"):
        answers = _triples([5, 6], [3, 4])
        answers[2][name] = (FIELD.from_bytes(answers[2][name]) + FIELD.from_ints([0, 1])).to_bytes()
        with pytest.raises(IntegrityError, match="failed the input-mask check"):
            verify_masks(FIELD, answers, 2)
    with pytest.raises(IntegrityError, match="input-mask check"):  # b = 0 would hide a shift of a
        verify_masks(FIELD, _triples([5, 6], [3, 0]), 2)
    answers = _triples([5], [3])
    del answers[1]["c"]
    with pytest.raises(IntegrityError, match="VCP 1 sent a malformed 'c'"):
        verify_masks(FIELD, answers, 1)
    with pytest.raises(IntegrityError):
        verify_masks(FIELD, [], 1)
    for garbage in ([1, 2], 7, None):  # a VCP answering with something other than a map
        answers = _triples([5], [3])
        answers[1] = garbage  # type: ignore[call-overload]
        with pytest.raises(IntegrityError, match="VCP 1 sent a malformed answer"):
            verify_masks(FIELD, answers, 1)
