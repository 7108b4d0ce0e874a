#!/usr/bin/env python3
"""Writes the signer-certificate fixtures of tests/it/interop (see
tests/data/README.md): self-signed RSA-2048 certificates, each beside its
PKCS#8 key in one PEM file, built field by field so that each carries
exactly the quirk it stands for. Needs only python3 and the openssl CLI
(keys and signatures). Run from this directory: python3 make_signers.py
"""

import base64
import hashlib
import subprocess
import sys

SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")  # OID sha256WithRSAEncryption
CN = bytes.fromhex("0603550403")  # OID commonName
AKI = bytes.fromhex("0603551d23")  # OID authorityKeyIdentifier
SKI = bytes.fromhex("0603551d0e")  # OID subjectKeyIdentifier
KU = bytes.fromhex("0603551d0f")  # OID keyUsage


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + content


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def name(cn):
    return seq(tlv(0x31, seq(CN, tlv(0x0C, cn.encode()))))


def utc(t):
    return tlv(0x17, t.encode())


def generalized(t):
    return tlv(0x18, t.encode())


def ext(oid, critical, value):
    return seq(oid, *([tlv(0x01, b"\xff")] if critical else []), tlv(0x04, value))


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout


def make(path, cn, serial_content, not_before, not_after, v3_extensions):
    key_pem = openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    spki = openssl("pkey", "-pubout", "-outform", "DER", data=key_pem)
    tbs_fields = []
    if v3_extensions is not None:
        tbs_fields.append(tlv(0xA0, tlv(0x02, b"\x02")))  # [0] version v3
    alg = seq(SHA256_RSA, b"\x05\x00")
    tbs_fields += [
        tlv(0x02, serial_content),
        alg,
        name(cn),
        seq(not_before, not_after),
        name(cn),
        spki,
    ]
    extensions = v3_extensions(spki) if v3_extensions else []
    if extensions:
        tbs_fields.append(tlv(0xA3, seq(*extensions)))
    tbs = seq(*tbs_fields)
    with open("/tmp/make_signers_key.pem", "wb") as f:
        f.write(key_pem)
    sig = openssl("dgst", "-sha256", "-sign", "/tmp/make_signers_key.pem", data=tbs)
    cert = seq(tbs, alg, tlv(0x03, b"\x00" + sig))
    b64 = base64.encodebytes(cert).decode().replace("\n", "")
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    pem = f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"
    with open(path, "w") as f:
        f.write(pem + key_pem.decode())
    # OpenSSL must read it back (and verify its self-signature).
    openssl("verify", "-no-CApath", "-no-CAstore", "-partial_chain", "-check_ss_sig",
            "-ignore_critical", "-CAfile", path, path)
    return spki


def key_id(spki):
    # RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value.
    # The SPKI is SEQUENCE { AlgorithmIdentifier, BIT STRING }: skip to the bit string.
    body = spki[4:] if spki[1] == 0x82 else spki[2:]
    alg_len = body[1]
    bits = body[2 + alg_len :]
    hdr = 4 if bits[1] == 0x82 else 2
    return hashlib.sha1(bits[hdr + 1 :]).digest()


def windows_extensions(spki):
    kid = key_id(spki)
    return [
        ext(KU, True, tlv(0x03, b"\x05\xa0")),  # digitalSignature, keyEncipherment
        ext(SKI, False, tlv(0x04, kid)),
        ext(AKI, True, seq(tlv(0x80, kid))),  # critical, keyIdentifier only
    ]


def main():
    utc_validity = (utc("250101000000Z"), utc("491231235959Z"))
    make("windows-mdm-critical-aki.pem", "WinMDM-7F3C2A91-5B0E-4D7A-9C11-3E8A2D4B6F00",
         b"\x5a\x17\x3c\x9e\x01\x44\x8b\x20\x6d\x13\x7e\x52\x90\x0b\x2c\x61",
         *utc_validity, windows_extensions)
    make("v1-no-extensions.pem", "v1 signer", b"\x01", *utc_validity, None)
    make("generalized-time-before-2050.pem", "generalized time signer", b"\x02",
         generalized("20250101000000Z"), generalized("20491231235959Z"), lambda _spki: [])
    # 33 octets: a leading zero, then 32 bytes whose first has its top bit set.
    make("certmonger-serial-33-octets.pem", "certmonger signer",
         b"\x00" + bytes([0x80 | 0x3b]) + hashlib.sha256(b"certmonger").digest()[1:],
         *utc_validity, lambda _spki: [])
    # 32 octets: the ASCII of a 32-character transactionID (its first byte
    # is '3'..'9' or 'A'..'F', below 0x80, so no leading zero is needed).
    make("txid-serial-32-octets.pem", "txid serial signer",
         b"3F2504E04F8911D39A0C0305E82C3301", *utc_validity, lambda _spki: [])


if __name__ == "__main__":
    sys.exit(main())
