#!/usr/bin/env python3
"""A rebuilder node written in Python, from nothing but the .proto files: the proto is the contract.

Generates gRPC stubs from proto/ at run time (python3 -m grpc_tools.protoc, into a temporary
directory), then, with the node token it is given:

1. checks that a made-up token is refused with UNAUTHENTICATED;
2. Registers;
3. Claims a job (long-poll: the job may be queued while it waits);
4. sends a Heartbeat, then one with a stale fencing token (refused: FAILED_PRECONDITION);
5. ReportResults a streamed report: a header, the artifacts of the job's own buildinfo
   (name, size, SHA-256 from its Checksums-Sha256, so the verdict is "reproducible") and a
   small log in several chunks, and an in-toto link of the rebuild signed with the ed25519 key
   it registered (only attested results count towards verification);
6. sends a Heartbeat on the lease the report ended (refused: FAILED_PRECONDITION).

Prints every response as one JSON object on stdout; progress goes to stderr ("claiming" is
printed just before the long-poll starts). Exit code 0 when every call went as the contract
says, 1 when one did not (the JSON names which), 2 on a usage or set-up error.

Usage: node_client.py --server HOST:PORT --token-file FILE [--proto-dir DIR] [--wait SECONDS]
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time

import grpc_stubs


def progress(msg):
    print(f"node_client: {msg}", file=sys.stderr, flush=True)


def node_key_registration(token, key):
    """The RegisterRequest fields proving the ed25519 node key `key` is held: the key in
    OpenSSH form, and its signature over the debcover-register-v1 statement (SHA-256 of the
    bearer token, the public key, the time), as the coordinator requires."""
    import base64
    from cryptography.hazmat.primitives import serialization

    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = b"".join(len(p).to_bytes(4, "big") + p for p in (b"ssh-ed25519", public))
    now = int(time.time())
    statement = (
        "debcover-register-v1\n"
        f"credential-sha256 {hashlib.sha256(token.encode()).hexdigest()}\n"
        f"public-key {public.hex()}\n"
        f"time {now}\n"
    ).encode()
    return {
        "public_key": "ssh-ed25519 " + base64.b64encode(blob).decode() + " node_client.py",
        "registration_time": now,
        "registration_signature": key.sign(statement),
    }


def checksums_sha256(buildinfo):
    """(name, size, sha256) of every Checksums-Sha256 line of a buildinfo (clearsigned or not)."""
    out = []
    inside = False
    for line in buildinfo.decode("utf-8", "replace").splitlines():
        if line.startswith("- "):
            line = line[2:]
        if line.startswith("Checksums-Sha256:"):
            inside = True
            continue
        if inside:
            if not line.startswith(" "):
                break
            fields = line.split()
            if len(fields) != 3:
                raise ValueError(f"Checksums-Sha256 line {line!r} is not 'SHA256 SIZE NAME'")
            out.append((fields[2], int(fields[1]), fields[0]))
    return out


def ed25519_identity():
    """A fresh ed25519 key: (private key, OpenSSH public key text, securesystemslib key id)."""
    import base64
    import struct

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from securesystemslib.formats import encode_canonical

    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    blob = b"".join(struct.pack(">I", len(p)) + p for p in (b"ssh-ed25519", raw))
    openssh = "ssh-ed25519 " + base64.b64encode(blob).decode() + " node_client.py"
    public = {
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyid_hash_algorithms": ["sha256", "sha512"],
        "keyval": {"public": raw.hex()},
    }
    keyid = hashlib.sha256(encode_canonical(public).encode()).hexdigest()
    return key, openssh, keyid


def signed_link(key, keyid, job, artifacts):
    """The in-toto link of this rebuild (step `rebuild`), signed over its canonical JSON."""
    from securesystemslib.formats import encode_canonical

    signed = {
        "_type": "link",
        "name": "rebuild",
        "materials": {},
        "products": {name: {"sha256": sha256} for name, _, sha256 in artifacts},
        "byproducts": {},
        "command": [],
        "environment": {"debcover_job": str(job.job_id), "debcover_fence": str(job.fence)},
    }
    sig = key.sign(encode_canonical(signed).encode())
    return json.dumps({"signatures": [{"keyid": keyid, "sig": sig.hex()}], "signed": signed}).encode()


def refusal(call):
    """Run call, which must fail; return its gRPC status as a dict (None if it succeeded)."""
    import grpc

    try:
        call()
    except grpc.RpcError as e:
        return {"code": e.code().name, "details": e.details()}
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="coordinator as HOST:PORT (http:// is stripped)")
    ap.add_argument("--token-file", required=True, help="file holding the node's bearer token")
    ap.add_argument("--proto-dir", default=os.path.join(here, "..", "..", "proto", "proto"))
    ap.add_argument("--wait", type=int, default=20, help="long-poll seconds of the claim")
    args = ap.parse_args()

    try:
        import grpc
    except ImportError as e:
        raise SystemExit(f"node_client: {e}: install grpcio and grpcio-tools (pip install grpcio grpcio-tools)")
    try:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as e:
        raise SystemExit(f"node_client: cannot read the node token file {args.token_file}: {e}")
    target = args.server.removeprefix("http://")

    with tempfile.TemporaryDirectory(prefix="debcover-pystubs-") as stubs:
        pb, rpc = grpc_stubs.generate(args.proto_dir, stubs, "rebuild", "node_client")
        channel = grpc.insecure_channel(target)
        try:
            grpc.channel_ready_future(channel).result(timeout=10)
        except grpc.FutureTimeoutError:
            raise SystemExit(f"node_client: cannot reach the coordinator at {target} within 10 s")
        node = rpc.RebuildNodesStub(channel)
        auth = [("authorization", f"Bearer {token}")]
        result = {"ok": True, "problems": []}

        def expect(what, got, want):
            if got != want:
                result["ok"] = False
                result["problems"].append(f"{what}: got {got!r}, want {want!r}")

        # 1. A made-up token.
        bad = refusal(lambda: node.Claim(pb.ClaimRequest(wait_seconds=0), metadata=[("authorization", "Bearer dcn_forged")]))
        result["bad_token"] = bad
        expect("claim with a forged token", bad and bad["code"], "UNAUTHENTICATED")

        # 2. Register, with the ed25519 key its results are signed with.
        key, _, keyid = ed25519_identity()
        r = node.Register(
            pb.RegisterRequest(
                **node_key_registration(token, key),
                architectures=["x86_64"],
                backends=["local"],
                slots=1,
                software="debcover node_client.py",
            ),
            metadata=auth,
        )
        result["register"] = {
            "operator": r.operator,
            "node": r.node,
            "architectures": list(r.architectures),
            "lease_ttl_seconds": r.lease_ttl_seconds,
            "heartbeat_seconds": r.heartbeat_seconds,
        }

        # 3. Long-poll claim.
        progress(f"claiming (wait {args.wait} s)")
        start = time.monotonic()
        c = node.Claim(pb.ClaimRequest(wait_seconds=args.wait), metadata=auth, timeout=args.wait + 30)
        waited = time.monotonic() - start
        if not c.HasField("job"):
            result["ok"] = False
            result["problems"].append(f"no job within {args.wait} s")
            print(json.dumps(result, indent=2))
            return 1
        job = c.job
        result["claim"] = {
            "waited_seconds": round(waited, 3),
            "job_id": job.job_id,
            "fence": job.fence,
            "lease_expires_at": job.lease_expires_at,
            "build_id": job.build_id,
            "source": job.source,
            "version": job.version,
            "architecture": job.architecture,
            "buildinfo_sha256": hashlib.sha256(job.buildinfo).hexdigest(),
        }
        expect("the buildinfo's SHA-256 is the build id", result["claim"]["buildinfo_sha256"], job.build_id)

        # 4. Heartbeat, then a stale fencing token while the lease is held.
        h = node.Heartbeat(pb.HeartbeatRequest(job_id=job.job_id, fence=job.fence), metadata=auth)
        result["heartbeat"] = {"lease_expires_at": h.lease_expires_at}
        stale = refusal(lambda: node.Heartbeat(pb.HeartbeatRequest(job_id=job.job_id, fence=job.fence - 1), metadata=auth))
        result["stale_fence"] = stale
        expect("heartbeat with a stale fence", stale and stale["code"], "FAILED_PRECONDITION")

        # 5. Streamed report: the buildinfo's own checksums, so the verdict is reproducible.
        artifacts = checksums_sha256(job.buildinfo)
        log = b"".join(f"node_client.py: rebuilt {job.source} {job.version} line {i}\n".encode() for i in range(200))

        def chunks():
            yield pb.ReportChunk(header=pb.ReportHeader(job_id=job.job_id, fence=job.fence, result="built"))
            for name, size, sha256 in artifacts:
                yield pb.ReportChunk(artifact=pb.Artifact(name=name, size=size, sha256=sha256))
            for i in range(0, len(log), 4096):
                yield pb.ReportChunk(log=log[i : i + 4096])
            # Only attested results count towards verification.
            yield pb.ReportChunk(attestation=signed_link(key, keyid, job, artifacts))

        rep = node.ReportResult(chunks(), metadata=auth)
        result["report"] = {
            "outcome": rep.outcome,
            "differing": list(rep.differing),
            "job_state": rep.job_state,
            "log_sha256": rep.log_sha256,
            "buildinfo_sha256": rep.buildinfo_sha256,
            "attestation_sha256": rep.attestation_sha256,
            "verdicts": [
                {"name": v.name, "rebuilt_sha256": v.rebuilt_sha256, "buildinfo_sha256": v.buildinfo_sha256, "matches": v.matches}
                for v in rep.verdicts
            ],
            "artifacts_sent": [{"name": n, "size": s, "sha256": h} for n, s, h in artifacts],
            "log_sent_sha256": hashlib.sha256(log).hexdigest(),
        }
        expect("report outcome", rep.outcome, "reproducible")
        expect("stored log", rep.log_sha256, result["report"]["log_sent_sha256"])

        # 6. The report ended the lease: its fence is stale now.
        ended = refusal(lambda: node.Heartbeat(pb.HeartbeatRequest(job_id=job.job_id, fence=job.fence), metadata=auth))
        result["after_report"] = ended
        expect("heartbeat after the report", ended and ended["code"], "FAILED_PRECONDITION")
        channel.close()

    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
