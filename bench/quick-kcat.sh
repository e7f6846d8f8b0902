#!/usr/bin/env bash
# A first, simple throughput measurement (the benchmark harness comes later): one million
# 1 KiB records produced with kcat (acks=all, librdkafka defaults, linger.ms=5) into a
# single-partition topic of a release-build broker, then consumed back from the beginning.
# Prints wall time, broker CPU seconds (utime+stime from /proc) and broker peak RSS.
#
#   cargo build --release --bin strom && bench/quick-kcat.sh [--set KEY=VALUE ...]
set -u
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}/release/strom"
RECORDS=/tmp/strom-records-1k.txt
[ -f $RECORDS ] || python3 -c "
import sys
pad = 'x' * 1015
with open('$RECORDS', 'w') as f:
    for i in range(1000000):
        f.write('%08d%s\n' % (i, pad))
"

rm -rf /tmp/strom-bench && mkdir -p /tmp/strom-bench
RUST_LOG=info $BIN broker --set listeners=PLAINTEXT://127.0.0.1:29092 --set log.dirs=/tmp/strom-bench/data "$@" > /tmp/strom-bench/broker.log 2>&1 &
pid=$!
sleep 1.5
ticks() { awk '{print $14+$15}' /proc/$pid/stat; }
kcat -b 127.0.0.1:29092 -P -t warm -X acks=all -l <(head -1000 $RECORDS)
c0=$(ticks); s=$(date +%s.%N)
kcat -b 127.0.0.1:29092 -P -t perf -X acks=all -X linger.ms=5 -l $RECORDS
e=$(date +%s.%N); c1=$(ticks)
echo "produce: 1000000 x 1 KiB in $(echo "$e - $s" | bc) s; broker CPU $(echo "($c1 - $c0)/100" | bc -l | cut -c1-5) s"
s=$(date +%s.%N)
n=$(kcat -b 127.0.0.1:29092 -C -t perf -o beginning -e -q -f '\n' | wc -l)
e=$(date +%s.%N); c2=$(ticks)
echo "consume: $n records in $(echo "$e - $s" | bc) s; broker CPU $(echo "($c2 - $c1)/100" | bc -l | cut -c1-5) s"
echo "broker RSS: $(grep VmHWM /proc/$pid/status)"
kill -TERM $pid; wait $pid; echo "broker exit $?"
