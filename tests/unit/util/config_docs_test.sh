#!/bin/sh
# Fails if the committed configuration reference differs from what the key
# table generates (run `make docs` after changing src/util/conf.c).
set -u
gen=src/util/pchat-conf-doc
echo "1..3"
n=0
check() {
    n=$((n + 1))
    if "$@"; then echo "ok $n - $desc"; else echo "not ok $n - $desc (run: make docs)"; fi
}
desc="docs/config.md is current"
check sh -c "$gen --markdown | cmp -s - '$srcdir/docs/config.md'"
desc="packaging/pchatd.conf.example is current"
check sh -c "$gen --example | cmp -s - '$srcdir/packaging/pchatd.conf.example'"
desc="packaging/man/pchatd.conf.5 is current"
check sh -c "{ cat '$srcdir/packaging/man/pchatd.conf.5.head'; $gen --man; cat '$srcdir/packaging/man/pchatd.conf.5.tail'; } | cmp -s - '$srcdir/packaging/man/pchatd.conf.5'"
