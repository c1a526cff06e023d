#!/usr/bin/env python3
"""Verify debcover rebuild attestations with the stock in-toto tooling, the way
apt-transport-in-toto does: a layout with a "rebuild" step that k of the given rebuilder keys
must attest (threshold), and an inspection requiring every .deb in the current directory to
match the rebuild step's products.

Usage: intoto_threshold.py LINK_DIR DEB_DIR THRESHOLD OPENSSH_PUBKEY...

The layout is made and signed here with a fresh owner key (the release team's role); the links
are read from LINK_DIR as rebuild.KEYID8.link; `in-toto-verify` runs in DEB_DIR. Exits with
in-toto-verify's status."""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from in_toto.models.layout import Inspection, Layout, Step
from in_toto.models.metadata import Metablock
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner


def ed25519_hex(openssh):
    kind, b64 = openssh.split()[:2]
    assert kind == "ssh-ed25519", kind
    blob = base64.b64decode(b64)
    n = int.from_bytes(blob[:4], "big")
    rest = blob[4 + n:]
    m = int.from_bytes(rest[:4], "big")
    return rest[4:4 + m].hex()


def main():
    link_dir, deb_dir, threshold, *pubkeys = sys.argv[1:]
    keys = {}
    for openssh in pubkeys:
        key = {
            "keytype": "ed25519",
            "scheme": "ed25519",
            "keyid_hash_algorithms": ["sha256", "sha512"],
            "keyval": {"public": ed25519_hex(openssh)},
        }
        keyid = hashlib.sha256(encode_canonical(key).encode()).hexdigest()
        key["keyid"] = keyid
        keys[keyid] = key
    layout = Layout()
    layout.keys = keys
    layout.set_relative_expiration(days=1)
    step = Step(name="rebuild")
    step.pubkeys = list(keys)
    step.threshold = int(threshold)
    step.expected_products = [["ALLOW", "*"]]
    layout.steps = [step]
    inspection = Inspection(name="verify-reprobuilds")
    inspection.run = ["true"]
    inspection.expected_materials = [
        ["MATCH", "*.deb", "WITH", "PRODUCTS", "FROM", "rebuild"],
        ["DISALLOW", "*.deb"],
    ]
    layout.inspect = [inspection]
    owner = Ed25519PrivateKey.generate()
    work = tempfile.mkdtemp()
    owner_pub = os.path.join(work, "owner.pub")
    with open(owner_pub, "wb") as f:
        f.write(owner.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    block = Metablock(signed=layout)
    block.create_signature(CryptoSigner(owner))
    layout_path = os.path.join(work, "root.layout")
    block.dump(layout_path)
    print(json.dumps({"keys": list(keys), "threshold": int(threshold)}), flush=True)
    r = subprocess.run(
        ["in-toto-verify", "--layout", layout_path, "--verification-keys", owner_pub, "--link-dir", link_dir],
        cwd=deb_dir,
    )
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
