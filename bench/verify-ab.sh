#!/usr/bin/env bash
# KIP-890's produce path (issue 9, transaction.partition.verification.enable) against the
# build before it: the plain and idempotent produce figures must not drop, and the
# transactional one shows what the first batch's verification costs. Builds alternate within
# each round (A B, then B A), each run against a freshly started broker of that build with
# default settings; `strom perf` (the client) is always the AFTER binary:
#   raw  : `strom perf produce-raw` (plain batches, the broker's own ceiling), 1 partition,
#          1 KiB records, acks=all, 4 connections x 4 in flight, RECORDS records
#   idem : `strom perf produce` idempotent (enable.idempotence=true), 1 KiB, acks=all,
#          3 partitions, RECORDS/4 records
#   txn  : the same with --transactional-id and a commit every 100 ms
# One line per run to $DIR/runs.txt (round, build, mode, MB/s, load average), then medians.
#
#   bench/verify-ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS] [RECORDS]
set -u
cd "$(dirname "$0")/.."
BEFORE=$1
AFTER=$2
ROUNDS=${3:-3}
RECORDS=${4:-400000}
DIR=/tmp/strom-bench-verify
rm -rf $DIR && mkdir -p $DIR
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
run() { # ROUND BUILD BINARY
  rm -rf $DIR/data
  RUST_LOG=info $3 broker --set listeners=PLAINTEXT://127.0.0.1:0 \
    --set strom.metrics.listener= --set log.dirs=$DIR/data > $DIR/broker.log 2>&1 &
  local pid=$! port=
  for _ in $(seq 100); do
    port=$(grep -o 'listeners=\[127.0.0.1:[0-9]*' $DIR/broker.log | head -1 | cut -d: -f2)
    [ -n "$port" ] && break
    sleep 0.1
  done
  local b=127.0.0.1:$port
  $AFTER -b $b topic create raw --partitions 1 > /dev/null
  for mode in raw idem txn; do
    local l out=$DIR/out.json
    l=$(cut -d' ' -f1 /proc/loadavg)
    case $mode in
      raw) $AFTER -b $b --json perf produce-raw --topic raw --num-records $RECORDS \
             --record-size 1024 > $out ;;
      idem) $AFTER -b $b --json perf produce --topic idem --partitions 3 \
             --num-records $((RECORDS / 4)) --record-size 1024 \
             --producer-prop enable.idempotence=true > $out ;;
      txn) $AFTER -b $b --json perf produce --topic txn --partitions 3 \
             --num-records $((RECORDS / 4)) --record-size 1024 \
             --transactional-id bench-$1 --commit-interval-ms 100 > $out ;;
    esac || { echo "round $1 $2 $mode failed" >&2; kill $pid; exit 1; }
    echo "$1 $2 $mode $(field 'round(d["bytes"]/d["elapsed_s"]/1e6,1)' < $out) $l"
  done
  kill -TERM $pid; wait $pid 2>/dev/null
}
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    run $round before $BEFORE; run $round after $AFTER
  else
    run $round after $AFTER; run $round before $BEFORE
  fi
done | tee $DIR/runs.txt
python3 - $DIR/runs.txt <<'PY'
import sys, statistics as st
runs = [l.split() for l in open(sys.argv[1])]
for mode in ("raw", "idem", "txn"):
    mb = {b: [float(r[3]) for r in runs if r[1] == b and r[2] == mode] for b in ("before", "after")}
    paired = [a / b for a, b in zip(mb["after"], mb["before"]) if b > 0]
    print(f"{mode}: before {st.median(mb['before']):.1f} MB/s {mb['before']}, "
          f"after {st.median(mb['after']):.1f} MB/s {mb['after']}, "
          f"ratio of medians {st.median(mb['after']) / st.median(mb['before']):.2f}, "
          f"median paired {st.median(paired):.2f}")
PY
