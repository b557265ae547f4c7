#!/usr/bin/env bash
# The main job. For now: the `nami frame` tool on the vendor's examples (the REST daemon with an
# embedded simulated terminal replaces this once nami-httpd lands).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p nami-cli
nami=target/debug/nami
echo "# REGISTER (17), unsigned:"
$nami frame encode --txn-type REGISTER --input-req-data '130623194300;12345678!'
echo "# PURCHASE of SAR 1.00, signed with terminal ID 8184000200000077:"
frame=$($nami frame encode --txn-type PURCHASE --input-req-data '210320144000;100;0;12345678000001!' --terminal-id 8184000200000077)
echo "$frame"
echo "# ...decoded:"
$nami frame decode "$frame"
