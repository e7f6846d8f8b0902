#!/usr/bin/env bash
# Recovery time with 1 GiB of log: produce one million 1 KiB records, kill -9 the broker, and
# time the restart until its "logs loaded" line (which reports what recovery re-read); then the
# same without the recovery-point checkpoint (a full re-read), then after a clean stop.
# Run bench/quick-kcat.sh first: it writes the record file this script reads.
set -u
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}/release/strom"
D=/tmp/strom-bench2
rm -rf $D && mkdir -p $D
start() { RUST_LOG=info $BIN broker --set listeners=PLAINTEXT://127.0.0.1:29093 --set log.dirs=$D/data > $D/$1.log 2>&1 & pid=$!; }
wait_listen() { s=$(date +%s%N); until grep -q "logs loaded" $D/$1.log 2>/dev/null; do sleep 0.005; done; e=$(date +%s%N); echo "$1: ready $(( (e-s)/1000000 )) ms after start; $(grep "logs loaded" $D/$1.log | sed "s/.*logs loaded//")"; }
start first; wait_listen first
kcat -b 127.0.0.1:29093 -P -t big -X acks=all -l /tmp/strom-records-1k.txt
kill -9 $pid; wait $pid 2>/dev/null
du -sh $D/data/big-0
start after-kill; wait_listen after-kill
kill -9 $pid; wait $pid 2>/dev/null
rm $D/data/recovery-point-offset-checkpoint
start no-checkpoint; wait_listen no-checkpoint
n=$(kcat -b 127.0.0.1:29093 -C -t big -o beginning -e -q -f '\n' | wc -l); echo "records after recovery: $n"
kill -TERM $pid; wait $pid
start clean; wait_listen clean
kill -TERM $pid; wait $pid
