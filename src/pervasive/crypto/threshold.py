"""Threshold BLS over Shamir sharing with Feldman commitments (paper 003 eq. 2-7).

Each dealer ``i`` of the committee draws a polynomial ``f_i`` of degree ``t-1`` (eq. 2),
publishes the commitments ``A_{i,k} = g2 * a_{i,k}`` and sends member ``j`` the share
``f_i(j)``, which ``j`` checks against the commitments (eq. 3):
``g2 * f_i(j) == sum_k A_{i,k} * j^k``. Member ``j``'s secret share is the sum of the
shares it received from the qualified dealers (eq. 4), the group key the sum of their
``A_{i,0}`` (eq. 5). A member's partial signature is a plain BLS signature under its
share (eq. 6); any ``t`` partials combine by Lagrange interpolation at zero into the
group signature, which verifies under the group key (eq. 7). Member indices are
``1..n``: ``x = 0`` is where the secret sits.

Example::

    dealers = [Polynomial.from_seed(bytes([i]) * 32, threshold=2) for i in range(3)]
    shares = {j: combine_shares([d.evaluate(j) for d in dealers]) for j in (1, 2, 3)}
    group_key = group_public_key([d.commitments()[0] for d in dealers])
    partials = {j: bls_sign(shares[j], b"m") for j in (1, 3)}
    assert bls_verify(group_key, b"m", combine_signatures(partials))
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from py_arkworks_bls12381 import G1Point, G2Point, Scalar

from pervasive.crypto.bls import BLS_CURVE_ORDER, decode_g1, decode_g2
from pervasive.errors import InvalidInput

__all__ = [
    "Polynomial",
    "combine_shares",
    "combine_signatures",
    "evaluate_polynomial",
    "group_public_key",
    "lagrange_at_zero",
    "public_share",
    "verify_public_shares",
    "verify_share",
]

_SEED_TAG = b"pervasive.threshold.polynomial.v1"
_G2 = G2Point()


def evaluate_polynomial(coefficients: Sequence[int], x: int, modulus: int) -> int:
    """``sum_k coefficients[k] * x^k mod modulus`` by Horner's rule (eq. 2).

    Example: ``evaluate_polynomial([1, 2, 3], 2, 7) == (1 + 4 + 12) % 7``.
    """
    if modulus < 2:
        raise InvalidInput(f"the modulus must be at least 2, got {modulus}")
    result = 0
    for coefficient in reversed(coefficients):
        result = (result * x + coefficient) % modulus
    return result


@dataclass(frozen=True)
class Polynomial:
    """A dealer's secret polynomial ``f_i`` over Z_r: ``coefficients[k]`` is ``a_{i,k}``.

    Its ``repr`` hides the coefficients: they are the dealer's secret.
    """

    coefficients: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.coefficients:
            raise InvalidInput("a polynomial needs at least one coefficient (threshold >= 1)")
        if any(not 0 <= c < BLS_CURVE_ORDER for c in self.coefficients):
            raise InvalidInput("polynomial coefficients must be integers in [0, r-1]")
        if self.coefficients[0] == 0:
            raise InvalidInput("the secret a_0 of a polynomial must not be zero")

    def __repr__(self) -> str:
        return f"Polynomial(threshold={self.threshold})"

    @property
    def threshold(self) -> int:
        """``t``: the number of shares needed to recover ``f(0)`` (degree + 1)."""
        return len(self.coefficients)

    @classmethod
    def random(cls, threshold: int) -> Polynomial:
        """Fresh coefficients from the operating system's CSPRNG.

        Example: ``Polynomial.random(3).threshold == 3``.
        """
        _check_threshold(threshold)
        first = secrets.randbelow(BLS_CURVE_ORDER - 1) + 1
        rest = (secrets.randbelow(BLS_CURVE_ORDER) for _ in range(threshold - 1))
        return cls((first, *rest))

    @classmethod
    def from_seed(cls, seed: bytes, threshold: int) -> Polynomial:
        """Coefficients derived from a 32-byte (or longer) secret seed.

        A member persists the seed, not the polynomial, so a restart deals the same shares
        again and never a second, different dealing. Each coefficient is SHA-512 of the
        seed and its index reduced mod r (bias below 2^-250).

        Example: ``Polynomial.from_seed(bytes(32), 3) == Polynomial.from_seed(bytes(32), 3)``.
        """
        _check_threshold(threshold)
        if len(seed) < 32:
            raise InvalidInput(f"a dealing seed must be at least 32 bytes, got {len(seed)}")
        coefficients = []
        for k in range(threshold):
            counter = 0
            while True:
                material = _SEED_TAG + k.to_bytes(4, "big") + counter.to_bytes(4, "big") + seed
                value = int.from_bytes(hashlib.sha512(material).digest(), "big") % BLS_CURVE_ORDER
                if value != 0 or k > 0:
                    break
                counter += 1
            coefficients.append(value)
        return cls(tuple(coefficients))

    def evaluate(self, x: int) -> int:
        """``f_i(x) mod r`` (eq. 2); ``x`` is a member index, 1..n.

        Example: ``poly.evaluate(1)`` is the share dealt to member 1.
        """
        return evaluate_polynomial(self.coefficients, x, BLS_CURVE_ORDER)

    def commitments(self) -> tuple[bytes, ...]:
        """Feldman commitments ``A_{i,k} = g2 * a_{i,k}``, 96-byte compressed G2 each.

        Example: ``poly.commitments()[0]`` is the dealer's contribution to the group key.
        """
        return tuple((_G2 * Scalar(c)).to_compressed_bytes() for c in self.coefficients)


def _check_threshold(threshold: int) -> None:
    if threshold < 1:
        raise InvalidInput(f"the threshold must be at least 1, got {threshold}")


def _check_index(index: int) -> None:
    if not 0 < index < BLS_CURVE_ORDER:
        raise InvalidInput(f"member indices start at 1 (0 is the secret), got {index}")


def _commitment_at(points: Sequence[G2Point], index: int) -> G2Point:
    # sum_k A_k * index^k, evaluated "in the exponent" by Horner's rule.
    total = G2Point.identity()
    for point in reversed(points):
        total = total * Scalar(index) + point
    return total


def verify_share(commitments: Sequence[bytes], index: int, share: int) -> bool:
    """Whether ``share`` is the dealer's ``f(index)`` for these commitments (eq. 3).

    False for malformed commitments or an out-of-range share or index.

    Example: ``verify_share(poly.commitments(), 2, poly.evaluate(2))`` is True.
    """
    if not commitments or not 0 < index < BLS_CURVE_ORDER or not 0 <= share < BLS_CURVE_ORDER:
        return False
    try:
        points = [decode_g2(commitment) for commitment in commitments]
    except InvalidInput:
        return False
    return _G2 * Scalar(share) == _commitment_at(points, index)


def combine_shares(shares: Sequence[int]) -> int:
    """A member's secret share: the sum of the shares from the qualified dealers (eq. 4).

    Example: ``combine_shares([d.evaluate(j) for d in qualified])``.
    """
    if not shares:
        raise InvalidInput("combining shares needs at least one share from a qualified dealer")
    return sum(shares) % BLS_CURVE_ORDER


def group_public_key(first_commitments: Sequence[bytes]) -> bytes:
    """The group key ``PK = sum_i A_{i,0}`` over the qualified dealers (eq. 5), 96 bytes.

    Raises :class:`InvalidInput` for a malformed commitment, or if the sum is infinity
    (dealers whose secrets cancel out: such a key would be refused everywhere).

    Example: ``group_public_key([d.commitments()[0] for d in qualified])``.
    """
    if not first_commitments:
        raise InvalidInput("the group key needs the commitment of at least one dealer")
    total = G2Point.identity()
    for commitment in first_commitments:
        total = total + decode_g2(commitment)
    if total == G2Point.identity():
        raise InvalidInput("the dealers' secrets sum to zero: run the key generation again")
    return total.to_compressed_bytes()


def public_share(commitments_by_dealer: Sequence[Sequence[bytes]], index: int) -> bytes:
    """Member ``index``'s public share ``g2 * sk_index``, from the qualified dealers' commitments.

    Anyone can compute it, so a partial signature can be checked without trusting its
    sender: ``bls_verify(public_share(commitments, j), message, partial_j)``.
    Raises :class:`InvalidInput` for malformed commitments, a bad index, or infinity.

    Example: ``public_share([d.commitments() for d in qualified], 2)``.
    """
    _check_index(index)
    if not commitments_by_dealer:
        raise InvalidInput("a public share needs the commitments of at least one dealer")
    total = G2Point.identity()
    for commitments in commitments_by_dealer:
        if not commitments:
            raise InvalidInput("a dealer published no commitments")
        total = total + _commitment_at([decode_g2(c) for c in commitments], index)
    if total == G2Point.identity():
        raise InvalidInput(f"member {index}'s public share is infinity: its share is zero")
    return total.to_compressed_bytes()


def lagrange_at_zero(indices: Sequence[int], modulus: int = BLS_CURVE_ORDER) -> dict[int, int]:
    """Lagrange coefficients ``lambda_j = prod_{m != j} m / (m - j) mod modulus`` at x = 0.

    ``modulus`` must be prime (the BLS12-381 order by default; the Shamir vectors of
    RFC 9591 use secp256k1's). Raises :class:`InvalidInput` for an empty set, a repeated,
    zero or out-of-range index.

    Example: ``lagrange_at_zero([1, 2]) == {1: 2, 2: BLS_CURVE_ORDER - 1}``.
    """
    if not indices:
        raise InvalidInput("Lagrange interpolation needs at least one index")
    if len(set(indices)) != len(indices):
        raise InvalidInput(f"member indices must be distinct, got {sorted(indices)}")
    for index in indices:
        if not 0 < index < modulus:
            raise InvalidInput(f"member indices are in [1, modulus-1], got {index}")
    return _lagrange_at(indices, 0, modulus)


def _lagrange_at(indices: Sequence[int], x: int, modulus: int) -> dict[int, int]:
    coefficients = {}
    for j in indices:
        numerator, denominator = 1, 1
        for m in indices:
            if m != j:
                numerator = numerator * (m - x) % modulus
                denominator = denominator * (m - j) % modulus
        coefficients[j] = numerator * pow(denominator, -1, modulus) % modulus
    return coefficients


def verify_public_shares(
    public_shares: Mapping[int, bytes], threshold: int, group_key: bytes
) -> bool:
    """Whether the members' public shares lie on one polynomial of degree ``t-1`` through
    the group key (eq. 4-5 seen in G2), so any ``t`` partials that each verify combine to
    a signature that verifies under ``group_key``.

    Interpolates the first ``t`` public shares at 0 and at every other index. False for
    malformed points, indices other than 1..n, or a threshold outside [1, n].

    Example: ``verify_public_shares({j: public_share(c, j) for j in (1, 2, 3)}, 2, pk)``.
    """
    n = len(public_shares)
    if not 1 <= threshold <= n or set(public_shares) != set(range(1, n + 1)):
        return False
    try:
        points = {j: decode_g2(point) for j, point in public_shares.items()}
        expected = {0: decode_g2(group_key)} | points
    except InvalidInput:
        return False
    base = list(range(1, threshold + 1))
    for target in [0, *range(threshold + 1, n + 1)]:
        weights = _lagrange_at(base, target, BLS_CURVE_ORDER)
        scalars = [Scalar(weights[j]) for j in base]
        interpolated = G2Point.multiexp_unchecked([points[j] for j in base], scalars)
        if interpolated != expected[target]:
            return False
    return True


def combine_signatures(partials: Mapping[int, bytes]) -> bytes:
    """The group signature ``sum_j lambda_j * sigma_j`` from partials by member index (eq. 6).

    Check each partial against its public share first: this only interpolates, so wrong
    partials give a signature that fails eq. 7. Raises :class:`InvalidInput` for a
    malformed partial or index, or a result at infinity.

    Example: ``combine_signatures({1: partial_1, 3: partial_3})`` with t = 2.
    """
    lagrange = lagrange_at_zero(list(partials))
    points = [decode_g1(partial) for partial in partials.values()]
    scalars = [Scalar(lagrange[index]) for index in partials]
    combined = G1Point.multiexp_unchecked(points, scalars)
    if combined == G1Point.identity():
        raise InvalidInput("the partial signatures combine to infinity: they are not valid")
    return combined.to_compressed_bytes()
