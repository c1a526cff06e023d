#!/usr/bin/env python3
"""A stock gRPC client (grpcio, stubs generated from proto/ at run time) asking the coordinator's
`built-with` question, which the coordinator answers as a stream of column pages: so the exchange
and the page layout are checked by an implementation that is not ours.

For PACKAGE it calls:
1. BuiltWith: every page decoded by protobuf into BuiltWithPage, each build and binary rebuilt
   from the columns as coordinator.proto says (strings by index, raw SHA-256s to hexadecimal);
2. BuiltWith with an empty package name: must be refused with INVALID_ARGUMENT.

Prints one JSON object on stdout: the pages, the resolved packages, the first string of the
first page, the builds as {id, source, version, binaries: [{package, sha256}]}; and the
refusal's code and details. Exit code 0 when every call went as expected, 1 when one did not or
the stubs could not be generated, 2 on a usage error.

Usage: built_with_client.py --server HOST:PORT --package PACKAGE [--proto-dir DIR]
"""

import argparse
import json
import sys
import tempfile

import grpc_stubs


def page_strings(r):
    """The string table of a BuiltWithPage: string_bytes cut at string_lengths, UTF-8."""
    out, at = [], 0
    for n in r.string_lengths:
        out.append(r.string_bytes[at:at + n].decode("utf-8"))
        at += n
    if at != len(r.string_bytes):
        raise ValueError(f"string_lengths add up to {at}, not {len(r.string_bytes)}")
    return out


def page_builds(r):
    """The builds of a BuiltWithPage, read column by column as coordinator.proto says."""
    s = page_strings(r)
    out = []
    binary = 0
    for i in range(len(r.build_source)):
        build = {
            "id": r.build_ids[32 * i:32 * i + 32].hex(),
            "source": s[r.build_source[i]],
            "version": s[r.build_version[i]],
            "binaries": [],
        }
        for _ in range(r.binary_counts[i]):
            build["binaries"].append({
                "package": s[r.binary_package[binary]],
                "sha256": r.binary_sha256[32 * binary:32 * binary + 32].hex(),
            })
            binary += 1
        out.append(build)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--proto-dir", default="proto/proto")
    args = ap.parse_args()
    import grpc

    with tempfile.TemporaryDirectory() as out_dir:
        pb, rpc = grpc_stubs.generate(args.proto_dir, out_dir, "coordinator", "built_with_client")
        target = args.server.removeprefix("http://")
        with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
            stub = rpc.CoordinatorStub(channel)
            result = {"ok": True}
            pages = list(stub.BuiltWith(pb.BuiltWithRequest(package=args.package), timeout=60))
            result["pages"] = len(pages)
            result["resolved"] = list(pages[0].resolved_packages) if pages else None
            result["strings_first"] = page_strings(pages[0])[0] if pages and pages[0].string_lengths else None
            result["builds"] = [b for p in pages for b in page_builds(p)]
            try:
                list(stub.BuiltWith(pb.BuiltWithRequest(package=""), timeout=60))
                result["empty"] = {"code": "OK"}
                result["ok"] = False
            except grpc.RpcError as e:
                result["empty"] = {"code": e.code().name, "details": e.details()}
                result["ok"] = result["ok"] and e.code() == grpc.StatusCode.INVALID_ARGUMENT
            result["ok"] = result["ok"] and len(pages) >= 1
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
