#!/bin/sh
# Seed the fuzz corpora from the shared real-world test data (corpus dirs are gitignored).
# Usage: formats/fuzz/seed.sh [TESTDATA_DIR]   (default: /work/shared/testdata)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${1:-/work/shared/testdata}
for t in buildinfo packages sources aggregate; do mkdir -p "$here/corpus/$t"; done
# Corpora kept from earlier recorded runs (corpora/TARGET.tar.xz): later runs start there.
for f in "$here"/corpora/*.tar.xz; do [ -e "$f" ] && tar -C "$here/corpus" -xJf "$f"; done
cp "$data"/buildinfo/* "$data"/changes/* "$data"/packages/debian-parsers__InRelease "$here/corpus/buildinfo/"
# Index excerpts are large: seed with their first few paragraphs as well as compressed copies.
for f in "$data"/packages/bookworm_amd64_Packages.*; do
    b=$(basename "$f")
    awk 'BEGIN{RS="";ORS="\n\n"} NR<=3' "$f" > "$here/corpus/packages/$b.head"
    gzip -9c "$here/corpus/packages/$b.head" > "$here/corpus/packages/$b.head.gz"
    xz -9c "$here/corpus/packages/$b.head" > "$here/corpus/packages/$b.head.xz"
done
awk 'BEGIN{RS="";ORS="\n\n"} NR<=4' "$data"/packages/bookworm_Sources.go-and-rust-subset > "$here/corpus/sources/Sources.head"
awk 'BEGIN{RS="";ORS="\n\n"} NR>100 && NR<=103' "$data"/packages/bookworm_Sources.go-and-rust-subset > "$here/corpus/sources/Sources.mid"
# Aggregate: unsigned buildinfos concatenated, plus single ones.
: > "$here/corpus/aggregate/index"
for f in "$data"/buildinfo/*; do
    if ! head -1 "$f" | grep -q '^-----BEGIN'; then
        cat "$f" >> "$here/corpus/aggregate/index"; echo >> "$here/corpus/aggregate/index"
        cp "$f" "$here/corpus/aggregate/"
    fi
done
echo "seeded: $(for t in buildinfo packages sources aggregate; do printf '%s=%s ' $t "$(ls "$here/corpus/$t" | wc -l)"; done)"
