"""gRPC stubs generated from proto/ at run time, for the test clients in this directory: they
know debcover only through its .proto files (the proto is the contract)."""

import importlib
import subprocess
import sys


def generate(proto_dir, out_dir, name, prog):
    """Compile debcover/v1/NAME.proto with grpc_tools.protoc into out_dir and import its message
    and service modules: (pb, rpc). A proto that does not compile ends the program (SystemExit,
    protoc's message prefixed with PROG)."""
    proto = f"debcover/v1/{name}.proto"
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        proto,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{prog}: protoc failed on {proto_dir}/{proto}:\n{done.stderr}")
    sys.path.insert(0, out_dir)
    pb = importlib.import_module(f"debcover.v1.{name}_pb2")
    rpc = importlib.import_module(f"debcover.v1.{name}_pb2_grpc")
    return pb, rpc
