"""The precompiled contracts, run by the host for a frame of either VM, priced by revision.

| address | what | from | gas |
| --- | --- | --- | --- |
| 0x01 | ecrecover | Frontier | 3,000 |
| 0x02 | SHA-256 | Frontier | 60 + 12 per word |
| 0x03 | RIPEMD-160 | Frontier | 600 + 120 per word |
| 0x04 | identity | Frontier | 15 + 3 per word |
| 0x05 | modexp | Byzantium | EIP-198; EIP-2565 from Berlin |
| 0x06 | alt_bn128 add | Byzantium | 500 (EIP-196); 150 from Istanbul (EIP-1108) |
| 0x07 | alt_bn128 mul | Byzantium | 40,000 (EIP-196); 6,000 from Istanbul |
| 0x08 | alt_bn128 pairing | Byzantium | 100,000 + 80,000 a pair (EIP-197); 45,000 + 34,000 |
| 0x09 | Ewasm's keccak256 | Byzantium to Petersburg | 30 + 6 per word (the EVM's SHA3) |
| 0x09 | blake2f | Istanbul | 1 a round (EIP-152) |

**0x09, decided by revision**: Ethereum gave 0x09 to blake2f from Istanbul; before it the
address was free and the Ewasm testnet (Byzantium rules) put its keccak256 there. So
0x09 is keccak256 at Byzantium, Constantinople and Petersburg, and blake2f from Istanbul
on, as Ethereum: a revision never has both, and Ethereum's own state tests of Istanbul
and later see blake2f.

All are native: hashlib (SHA-256), pycryptodome (RIPEMD-160, which OpenSSL 3 leaves out
of hashlib, and Keccak), coincurve (ecrecover), Python integers (modexp), py_ecc's
optimised alt_bn128 (py-evm's), blake2b-py (the BLAKE2b compression in Rust: 44 ns a
round, where py-evm's pure-Python fallback, used only without it, takes 9 us, which at 1
gas a round would be a denial of service). `bench/bench_evm.py` measures the pairing
against the Wasm contract of the fixtures.

A precompile that cannot run its input (a point not on the curve, a blake2f input of the
wrong length) fails with PRECOMPILE_FAILURE and consumes all its gas, as out of gas does;
one that runs answers SUCCESS with its output (ecrecover's is empty for a signature it
cannot recover, as Ethereum's). Nothing answers success without doing the work.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable

from evmc_bridge import Result, Revision, StatusCode

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class PrecompileError(Exception):
    """The input is not one the precompile can run (consumes all the frame's gas)."""


def _words(n: int) -> int:
    return (n + 31) // 32


def _pad(data: bytes, n: int) -> bytes:
    return data[:n] if len(data) >= n else data + bytes(n - len(data))


# --- the hashes -------------------------------------------------------------------------

def _ecrecover(data: bytes) -> bytes:
    import coincurve
    from eth_hash.auto import keccak

    data = _pad(data, 128)
    v = int.from_bytes(data[32:64], "big")
    r = int.from_bytes(data[64:96], "big")
    s = int.from_bytes(data[96:128], "big")
    if v not in (27, 28) or not 0 < r < _SECP256K1_N or not 0 < s < _SECP256K1_N:
        return b""
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            data[64:128] + bytes([v - 27]), data[:32], hasher=None)
    except Exception:  # coincurve raises ValueError or its own errors: not recoverable
        return b""
    return bytes(12) + keccak(key.format(compressed=False)[1:])[12:]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _ripemd160(data: bytes) -> bytes:
    from Crypto.Hash import RIPEMD160

    return bytes(12) + RIPEMD160.new(data).digest()


def _identity(data: bytes) -> bytes:
    return data


def _keccak256(data: bytes) -> bytes:
    from eth_hash.auto import keccak

    return keccak(data)


# --- modexp (EIP-198, EIP-2565) ------------------------------------------------------------

def _modexp_lengths(data: bytes) -> tuple[int, int, int]:
    head = _pad(data, 96)
    return (int.from_bytes(head[0:32], "big"), int.from_bytes(head[32:64], "big"),
            int.from_bytes(head[64:96], "big"))


def _adjusted_exponent_length(data: bytes, blen: int, elen: int) -> int:
    # The exponent's first (at most) 32 bytes, read from the zero-padded input.
    start = 96 + blen
    head = int.from_bytes(_pad(data[start:start + min(elen, 32)], min(elen, 32)), "big")
    bits = max(head.bit_length() - 1, 0)
    return bits if elen <= 32 else 8 * (elen - 32) + bits


def _modexp_gas_eip198(data: bytes) -> int:
    blen, elen, mlen = _modexp_lengths(data)
    x = max(blen, mlen)
    if x <= 64:
        mult = x * x
    elif x <= 1024:
        mult = x * x // 4 + 96 * x - 3072
    else:
        mult = x * x // 16 + 480 * x - 199680
    return mult * max(_adjusted_exponent_length(data, blen, elen), 1) // 20


def _modexp_gas_eip2565(data: bytes) -> int:
    blen, elen, mlen = _modexp_lengths(data)
    words = (max(blen, mlen) + 7) // 8
    return max(200, words * words * max(_adjusted_exponent_length(data, blen, elen), 1) // 3)


def _modexp(data: bytes) -> bytes:
    blen, elen, mlen = _modexp_lengths(data)
    # Only reached with the gas paid, which bounds these lengths (unless both the base and
    # the modulus are empty: then the result is empty and nothing is read).
    if mlen == 0:
        return b""
    body = data[96:]
    base = int.from_bytes(_pad(body[:blen], blen), "big")
    exponent = int.from_bytes(_pad(body[blen:blen + elen], elen), "big")
    modulus = int.from_bytes(_pad(body[blen + elen:blen + elen + mlen], mlen), "big")
    if modulus == 0:
        return bytes(mlen)
    return pow(base, exponent, modulus).to_bytes(mlen, "big")


# --- alt_bn128 (EIP-196, EIP-197) ------------------------------------------------------

def _bn() -> object:
    limit = sys.getrecursionlimit()
    try:
        from py_ecc import optimized_bn128  # sets the recursion limit at import
    finally:
        sys.setrecursionlimit(limit)
    return optimized_bn128


def _g1(bn: object, data: bytes) -> tuple:
    x, y = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:64], "big")
    if x >= bn.field_modulus or y >= bn.field_modulus:
        raise PrecompileError("coordinate not below the field modulus")
    if x == 0 and y == 0:
        return bn.Z1
    p = (bn.FQ(x), bn.FQ(y), bn.FQ(1))
    if not bn.is_on_curve(p, bn.b):
        raise PrecompileError("point not on the curve")
    return p


def _g1_out(bn: object, p: tuple) -> bytes:
    if bn.is_inf(p):
        return bytes(64)
    x, y = bn.normalize(p)
    return int(x).to_bytes(32, "big") + int(y).to_bytes(32, "big")


def _ecadd(data: bytes) -> bytes:
    bn = _bn()
    data = _pad(data, 128)
    return _g1_out(bn, bn.add(_g1(bn, data[:64]), _g1(bn, data[64:128])))


def _ecmul(data: bytes) -> bytes:
    bn = _bn()
    data = _pad(data, 96)
    p = _g1(bn, data[:64])
    return _g1_out(bn, bn.multiply(p, int.from_bytes(data[64:96], "big")))


def _g2(bn: object, data: bytes) -> tuple:
    # EIP-197: each coordinate of the twist is (imaginary, real).
    xi, xr, yi, yr = (int.from_bytes(data[i:i + 32], "big") for i in range(0, 128, 32))
    if max(xi, xr, yi, yr) >= bn.field_modulus:
        raise PrecompileError("coordinate not below the field modulus")
    if xi == xr == yi == yr == 0:
        return bn.Z2
    p = (bn.FQ2([xr, xi]), bn.FQ2([yr, yi]), bn.FQ2.one())
    if not bn.is_on_curve(p, bn.b2):
        raise PrecompileError("point not on the twist")
    if not bn.is_inf(bn.multiply(p, bn.curve_order)):
        raise PrecompileError("point not in the subgroup")
    return p


def _ecpairing(data: bytes) -> bytes:
    if len(data) % 192:
        raise PrecompileError(f"input of {len(data)} bytes is not a multiple of 192")
    bn = _bn()
    acc = bn.FQ12.one()
    for i in range(0, len(data), 192):
        p1 = _g1(bn, data[i:i + 64])
        p2 = _g2(bn, data[i + 64:i + 192])
        if bn.is_inf(p1) or bn.is_inf(p2):
            continue
        acc = acc * bn.pairing(p2, p1, final_exponentiate=False)
    ok = bn.final_exponentiate(acc) == bn.FQ12.one()
    return (1 if ok else 0).to_bytes(32, "big")


def _pairs(data: bytes) -> int:
    return len(data) // 192


# --- blake2f (EIP-152) ---------------------------------------------------------------

def _compress() -> Callable:
    try:
        from blake2b import compress  # blake2b-py: native
    except ImportError:
        limit = sys.getrecursionlimit()
        try:
            from eth._utils.blake2.compression import blake2b_compress as compress
        finally:
            sys.setrecursionlimit(limit)
    return compress


def _blake2f_rounds(data: bytes) -> int:
    if len(data) != 213:
        raise PrecompileError(f"blake2f input of {len(data)} bytes (must be 213)")
    if data[212] not in (0, 1):
        raise PrecompileError(f"blake2f final-block flag {data[212]} (must be 0 or 1)")
    return int.from_bytes(data[:4], "big")


def _blake2f(data: bytes) -> bytes:
    rounds = _blake2f_rounds(data)
    h = tuple(int.from_bytes(data[4 + 8 * i:12 + 8 * i], "little") for i in range(8))
    m = tuple(int.from_bytes(data[68 + 8 * i:76 + 8 * i], "little") for i in range(16))
    t = (int.from_bytes(data[196:204], "little"), int.from_bytes(data[204:212], "little"))
    return bytes(_compress()(rounds, h, m, t, bool(data[212])))


# --- the tables -----------------------------------------------------------------------

Gas = Callable[[bytes], int]
Run = Callable[[bytes], bytes]


def _linear(base: int, word: int) -> Gas:
    return lambda data: base + word * _words(len(data))


def _const(gas: int) -> Gas:
    return lambda data: gas


def _address(n: int) -> bytes:
    return n.to_bytes(20, "big")


def table(revision: Revision) -> dict[bytes, tuple[Gas, Run]]:
    """The precompiles of `revision`: address -> (gas of an input, run an input)."""
    r = Revision(revision)
    out = {
        _address(1): (_const(3000), _ecrecover),
        _address(2): (_linear(60, 12), _sha256),
        _address(3): (_linear(600, 120), _ripemd160),
        _address(4): (_linear(15, 3), _identity),
    }
    if r >= Revision.BYZANTIUM:
        istanbul = r >= Revision.ISTANBUL
        out[_address(5)] = (_modexp_gas_eip2565 if r >= Revision.BERLIN
                            else _modexp_gas_eip198, _modexp)
        out[_address(6)] = (_const(150 if istanbul else 500), _ecadd)
        out[_address(7)] = (_const(6000 if istanbul else 40000), _ecmul)
        base, pair = (45000, 34000) if istanbul else (100000, 80000)
        out[_address(8)] = ((lambda data, b=base, p=pair: b + p * _pairs(data)), _ecpairing)
        if istanbul:
            out[_address(9)] = (_blake2f_rounds, _blake2f)
        else:
            out[_address(9)] = (_linear(30, 6), _keccak256)
    return out


_TABLES: dict[Revision, dict[bytes, tuple[Gas, Run]]] = {}


def precompiles(revision: Revision) -> dict[bytes, tuple[Gas, Run]]:
    """table(revision), built once per revision."""
    t = _TABLES.get(revision)
    if t is None:
        t = _TABLES[revision] = table(revision)
    return t


def run(entry: tuple[Gas, Run], data: bytes, gas: int) -> Result:
    """Run a precompile on `data` with `gas`: SUCCESS with the gas left and the output,
    OUT_OF_GAS, or PRECOMPILE_FAILURE for an input it cannot run."""
    price, fn = entry
    try:
        cost = price(data)
    except PrecompileError as exc:
        return Result.make(StatusCode.PRECOMPILE_FAILURE, message=str(exc))
    if cost > gas:
        return Result.make(StatusCode.OUT_OF_GAS, message=f"precompile needs {cost} gas, "
                                                          f"{gas} given")
    try:
        output = fn(data)
    except PrecompileError as exc:
        return Result.make(StatusCode.PRECOMPILE_FAILURE, message=str(exc))
    return Result.make(StatusCode.SUCCESS, gas - cost, output)
