"""Tests for vcpd.math.shares: SPDZ authenticated shares and the dealer helpers."""

from __future__ import annotations

import base64

import pytest

from vcpd.errors import FieldError
from vcpd.math import SMALL_THRESHOLD, PrimeField
from vcpd.math.shares import Shares, check_macs, reconstruct, share_vector

F = PrimeField()
P = F.p
# Carbyne Stack SDK development MAC key shares (carbyne-notes §0).
ALPHA_SHARES = [-88222337191559387830816715872691188861 % P, 1113507028231509545156335486838233835]
ALPHA = sum(ALPHA_SHARES) % P


def alphas_for(n_parties: int) -> list[int]:
    """MAC key shares: the SDK's two, then 5 for any further party."""
    return (ALPHA_SHARES + [5] * n_parties)[:n_parties]


def dealt(values: list[int], n_parties: int = 3) -> list[Shares]:
    return share_vector(F, F.from_ints(values), sum(alphas_for(n_parties)), n_parties)


def test_dev_mac_key_matches_the_notes() -> None:
    assert ALPHA == 111657633366150805646207385542583740015


@pytest.mark.parametrize("n_parties", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 5, SMALL_THRESHOLD + 1])
def test_share_and_reconstruct(n_parties: int, n: int) -> None:
    xs = [(i * 2**100 + 7) % P for i in range(n)]
    shares = dealt(xs, n_parties)
    assert len(shares) == n_parties and all(len(s) == n and s.field == F for s in shares)
    assert reconstruct(shares).to_ints() == xs
    assert check_macs(shares, alphas_for(n_parties))
    if n_parties > 1 and n:
        assert not shares[0].values.equals(F.from_ints(xs))  # a share alone is not the secret


def test_shares_are_fresh() -> None:
    first, second = dealt([1, 2, 3]), dealt([1, 2, 3])
    assert not first[0].values.equals(second[0].values)
    assert not first[0].macs.equals(second[0].macs)


@pytest.mark.parametrize("n", [4, SMALL_THRESHOLD + 3])
def test_linear_operations_commute_with_reconstruction(n: int) -> None:
    xs = [(3 * i + 1) % P for i in range(n)]
    ys = [(P - 1 - 5 * i) % P for i in range(n)]
    cs = [(i * i - 17) % P for i in range(n)]
    alphas = alphas_for(3)
    sx, sy = dealt(xs), dealt(ys)
    public = F.from_ints(cs)
    cases = {
        "add": ([a + b for a, b in zip(sx, sy)], [(x + y) % P for x, y in zip(xs, ys)]),
        "sub": ([a - b for a, b in zip(sx, sy)], [(x - y) % P for x, y in zip(xs, ys)]),
        "neg": ([-a for a in sx], [-x % P for x in xs]),
        "int": ([a * -3 for a in sx], [-3 * x % P for x in xs]),
        "rint": ([7 * a for a in sx], [7 * x % P for x in xs]),
        "vector": ([a * public for a in sx], [x * c % P for x, c in zip(xs, cs)]),
        "add_public int": (
            [a.add_public(-9, party, alphas[party]) for party, a in enumerate(sx)],
            [(x - 9) % P for x in xs],
        ),
        "add_public vector": (
            [a.add_public(public, party, alphas[party]) for party, a in enumerate(sx)],
            [(x + c) % P for x, c in zip(xs, cs)],
        ),
    }
    for name, (shares, expected) in cases.items():
        assert reconstruct(shares).to_ints() == expected, name
        assert check_macs(shares, alphas), name


def test_add_public_changes_only_party_zeros_value() -> None:
    shares = dealt([10, 20])
    for party, s in enumerate(shares):
        moved = s.add_public(5, party, 11)
        assert moved.values.equals(s.values + 5 if party == 0 else s.values)
        assert moved.macs.equals(s.macs + 55)


@pytest.mark.parametrize("n", [3, SMALL_THRESHOLD + 3])
def test_tampering_breaks_the_mac_check(n: int) -> None:
    xs = list(range(n))
    alphas = alphas_for(3)
    shares = dealt(xs)
    bump = F.from_ints([1 if i == n - 1 else 0 for i in range(n)])
    for tampered in (
        Shares(shares[1].values + bump, shares[1].macs),  # a shifted value share
        Shares(shares[1].values, shares[1].macs - bump),  # a shifted MAC share
        Shares(shares[1].values + bump, shares[1].macs + bump),  # both, without knowing α
    ):
        assert not check_macs([shares[0], tampered, shares[2]], alphas)
    assert not check_macs(shares, [alphas[0], alphas[1], alphas[2] + 1])
    with pytest.raises(ValueError, match="MAC key shares"):
        check_macs(shares, alphas[:2])


@pytest.mark.parametrize("n", [0, 2, SMALL_THRESHOLD + 1])
def test_bytes_layout_and_round_trip(n: int) -> None:
    share = dealt(list(range(n)), 2)[1]
    data = share.to_bytes()
    assert len(data) == 32 * n
    values, macs = share.values.to_bytes(), share.macs.to_bytes()
    for i in range(min(n, 3)):
        assert data[32 * i : 32 * i + 16] == values[16 * i : 16 * i + 16]
        assert data[32 * i + 16 : 32 * i + 32] == macs[16 * i : 16 * i + 16]
    assert Shares.from_bytes(F, data).equals(share)


def test_from_bytes_errors() -> None:
    with pytest.raises(FieldError, match="multiple of 32"):
        Shares.from_bytes(F, bytes(48))
    with pytest.raises(FieldError, match="not below p"):
        Shares.from_bytes(F, bytes(16) + P.to_bytes(16, "little"))


def test_carbyne_shares_reveal_222() -> None:
    """Ephemeral's integration test: both players hold shares of 0 and 111; v0 + v1 opens to 222."""
    raw = base64.b64decode("AAAAAAAAAAAAAAAAAAAAAHV5WQAAAAAAAAAAAAAAAAA=") + base64.b64decode(
        "Qv9nIfmyLlZ3iFnFX5pMBKI8JwAAAAAAAAAAAAAAAAA="
    )
    player = Shares.from_bytes(F, raw)
    assert player.values.to_ints() == [0, 111]
    assert player.to_bytes() == raw
    assert reconstruct([player[0] + player[1]] * 2).to_ints() == [222]


def test_slicing_and_concat() -> None:
    shares = dealt(list(range(SMALL_THRESHOLD + 10)))
    head = [s[:5] for s in shares]
    tail = [s[5:] for s in shares]
    joined = [Shares.concat([h, t]) for h, t in zip(head, tail)]
    assert all(j.equals(s) for j, s in zip(joined, shares))
    assert reconstruct([s[[3, 1]] for s in shares]).to_ints() == [3, 1]
    assert check_macs(head, alphas_for(3))
    with pytest.raises(ValueError):
        Shares.concat([])


def test_constructor_and_operand_checks() -> None:
    other = PrimeField(2**127 + 55 * 2**15 + 1)
    with pytest.raises(FieldError, match="MAC shares"):
        Shares(F.zeros(2), F.zeros(3))
    with pytest.raises(FieldError, match="different fields"):
        Shares(F.zeros(2), other.zeros(2))
    share = dealt([1, 2])[0]
    with pytest.raises(TypeError):
        share + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        share * 1.5  # type: ignore[operator]
    with pytest.raises(ValueError):
        share_vector(F, F.zeros(1), ALPHA, 0)
    assert "Shares n=2" in repr(share)


@pytest.mark.parametrize("n", [1, SMALL_THRESHOLD - 1, SMALL_THRESHOLD, 40_000])
def test_share_bytes_layout_on_both_paths(n: int) -> None:
    shares = Shares(F.random(n), F.random(n))
    data = shares.to_bytes()
    assert data == b"".join(
        v + m for v, m in zip(_words(shares.values.to_bytes()), _words(shares.macs.to_bytes()), strict=True)
    )
    assert Shares.from_bytes(F, data).equals(shares)
    assert Shares.concat_differences([(shares, shares)]).values.all_zero()


def _words(data: bytes) -> list[bytes]:
    return [data[i : i + 16] for i in range(0, len(data), 16)]
