#!/bin/sh
# An example program for the rebuilder's `command` backend (see rebuilder/src/backend.rs for
# the contract): fetch the source, rebuild it with dpkg-buildpackage on this machine, and leave
# the produced files in $DEBCOVER_OUTPUT_DIR. Operators adapt it to their own tooling (a
# container, a VM, a remote builder).
#
#   debcover-rebuilder run --backends command --command /path/to/dpkg-buildpackage.sh ...
#
# Exit codes: 0 built, 2 dependencies unavailable, 3 environment mismatch, other: build failed.
set -eu
: "${DEBCOVER_BUILDINFO:?}" "${DEBCOVER_SOURCE:?}" "${DEBCOVER_SOURCE_VERSION:?}" "${DEBCOVER_OUTPUT_DIR:?}"

work=$(pwd)/cmd-build
mkdir -p "$work"
cd "$work"
upstream_revision=${DEBCOVER_SOURCE_VERSION#*:}
dsc="${DEBCOVER_SOURCE}_${upstream_revision}.dsc"
if [ -n "${DEBCOVER_DSC_URL:-}" ]; then
    base=${DEBCOVER_DSC_URL%/*}
    fetch() {
        case $1 in
            file://*) cp "${1#file://}" "$2" ;;
            *) curl -fsSL -o "$2" "$1" ;;
        esac
    }
    fetch "$DEBCOVER_DSC_URL" "$dsc" || exit 2
    if [ -n "${DEBCOVER_DSC_SHA256:-}" ]; then
        echo "$DEBCOVER_DSC_SHA256  $dsc" | sha256sum -c - || exit 2
    fi
    # Every file the .dsc lists, checked against its Checksums-Sha256.
    sed -n '/^Checksums-Sha256:/,/^[^ ]/s/^ \([0-9a-f]\{64\}\) [0-9]* \(.*\)$/\1 \2/p' "$dsc" | while read -r sum name; do
        fetch "$base/$name" "$name" || exit 2
        echo "$sum  $name" | sha256sum -c - || exit 2
    done
else
    apt-get source --download-only "$DEBCOVER_SOURCE=$DEBCOVER_SOURCE_VERSION" || exit 2
fi
dpkg-source -x "$dsc" tree
cd tree
# The binNMU entry, when the original build was one.
if grep -q '^Binary-Only-Changes:' "$DEBCOVER_BUILDINFO"; then
    {
        sed -n '/^Binary-Only-Changes:/,/^[^ ]/{/^Binary-Only-Changes:/d;/^[^ ]/d;s/^ //;s/^\.$//;p}' "$DEBCOVER_BUILDINFO"
        echo
        cat debian/changelog
    } >../changelog.new
    mv ../changelog.new debian/changelog
fi
arch_field=$(sed -n 's/^Architecture: //p' "$DEBCOVER_BUILDINFO")
case " $arch_field " in
    *" all "*) case "$arch_field" in all|"source all") mode=-A ;; *) mode=-b ;; esac ;;
    *) mode=-B ;;
esac
env -u MAKEFLAGS -u DEB_BUILD_OPTIONS LC_ALL=C.UTF-8 dpkg-buildpackage -us -uc "$mode"
cd ..
for f in *.deb *.udeb *.buildinfo; do
    [ -e "$f" ] && cp "$f" "$DEBCOVER_OUTPUT_DIR/"
done
exit 0
