#!/usr/bin/env python3
"""Independent derivation of the known-answer values in tests/crypto.rs.

Uses Python's `cryptography` package (not this crate) so that the Rust tests pin the blob format,
the HKDF pepper derivation and the backup-code hash to values computed by a second implementation.
Run: python3 tests/data/crypto_kat.py   (tested with cryptography 48.0.0)
"""
import struct

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def lp(b: bytes) -> bytes:
    """u32 big-endian length prefix, as in twofactor::crypto::secret_aad."""
    return struct.pack(">I", len(b)) + b


key = bytes(range(32))            # 00 01 .. 1f
key_id = 7
nonce = bytes(range(0xA0, 0xAC))  # a0 a1 .. ab, fed through the injected RNG
plaintext = b"12345678901234567890"  # the RFC 6238 SHA-1 test secret, 20 bytes
user = b"alice@example.com"

header = bytes([1]) + struct.pack(">I", key_id)  # version 1, key id (u32 BE)
aad = header + lp(b"twofactor totp-secret v1") + lp(user)
blob = header + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)  # ciphertext || tag
print("BLOB  ", blob.hex())

pepper = HKDF(
    algorithm=hashes.SHA256(), length=32, salt=None, info=b"twofactor backup-code pepper v1"
).derive(bytes(range(32)))
print("PEPPER", pepper.hex())

mac = hmac.HMAC(pepper, hashes.SHA256())
mac.update(struct.pack(">Q", len(user)) + user + b"ABCDE12345")
print("HASH  ", mac.finalize().hex())
