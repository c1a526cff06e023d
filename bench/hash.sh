#!/bin/sh
# Hashing throughput of the rebuilder node: debcover_rebuilder::hash::sha256_file against the
# stock sha256sum on the same files, page cache warm, median of $REPS (default 5) repetitions.
# Usage: bench/hash.sh [PATH...]
# Files: the PATHs (files or directories, e.g. /var/cache/apt/archives); by default the .debs
# of $PACKAGES fetched with `apt-get download` into a temporary directory: the same 26 real
# artifacts on every run, of sizes from 87 KB to 19 MB (whatever the apt cache holds varies).
# Plus a generated $BIG_MIB MiB file (default 1024; 0: none) in $TMPDIR, removed afterwards.
set -eu
reps=${REPS:-5}
big=${BIG_MIB:-1024}
bin=target/release/debcover-measure
[ -x "$bin" ] || { echo "build first: cargo build --release -p debcover-bench" >&2; exit 2; }
packages=${PACKAGES:-"gcc-12 cpp-12 g++-12 libstdc++-12-dev libgcc-12-dev binutils-x86-64-linux-gnu libc6 libc6-dev \
perl perl-base perl-modules-5.36 libperl5.36 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib \
coreutils bash dpkg dpkg-dev libssl3 openssl zlib1g tzdata debianutils sed grep"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ $# -gt 0 ]; then
    set -- "$@"
else
    mkdir "$work/debs"
    # apt fetches as the _apt user: let it reach and write the directory.
    chmod 755 "$work"
    chmod 777 "$work/debs"
    # shellcheck disable=SC2086
    (cd "$work/debs" && apt-get download -q $packages >/dev/null)
    set -- "$work/debs"
fi
nproc_=$(nproc)
echo "files: $*; big file: $big MiB; reps: $reps; $nproc_ cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" hash --big-mib "$big" --reps "$reps" --tmp "${TMPDIR:-/tmp}" "$@"
