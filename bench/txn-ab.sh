#!/usr/bin/env bash
# Transactions against idempotent produce (issue 9's "Performance"), same broker, same run,
# modes alternating within each round:
#   produce  : RECORDS x 1 KiB, acks=all, 3 partitions, `strom perf produce` idempotent
#              (enable.idempotence=true), transactional with a commit every 100 ms, and every
#              10 ms; each mode writes its own topic.
#   consume  : the topic written with 100 ms transactions (commit markers every 100 ms), read
#              whole by `strom perf consume` as read_uncommitted and as read_committed.
#   e2e      : `strom perf e2e` at RATE records/s for E2E_S seconds, 1 KiB, acks=all:
#              idempotent producer → read_uncommitted consumer, and transactional producer
#              (100 ms, 10 ms) → read_committed consumer.
# One line per run goes to $DIR/runs.txt (round, kind, mode, figures, load average); the
# summary (medians, ratios) is printed at the end.
#
#   bench/txn-ab.sh [STROM_BINARY] [ROUNDS] [RECORDS] [RATE] [E2E_S]
#   STROM_BENCH_BOOTSTRAP=host:port,... uses a running cluster instead (bench/cluster --txn-ab)
set -u
cd "$(dirname "$0")/.."
STROM=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}/release/strom}
ROUNDS=${2:-4}
RECORDS=${3:-200000}
RATE=${4:-5000}
E2E_S=${5:-5}
DIR=/tmp/strom-bench-txn
rm -rf $DIR && mkdir -p $DIR
if [ -n "${STROM_BENCH_BOOTSTRAP:-}" ]; then
  # A cluster started by the caller (bench/cluster --txn-ab): no broker of our own, and no
  # single broker's CPU to read.
  B=$STROM_BENCH_BOOTSTRAP
  ticks() { echo 0; }
else
  RUST_LOG=info $STROM broker --set listeners=PLAINTEXT://127.0.0.1:0 \
    --set strom.metrics.listener= --set log.dirs=$DIR/data > $DIR/broker.log 2>&1 &
  PID=$!
  trap 'kill -TERM $PID 2>/dev/null; wait; rm -rf $DIR/data' EXIT
  for _ in $(seq 100); do
    PORT=$(grep -o 'addresses=\[127.0.0.1:[0-9]*' $DIR/broker.log | head -1 | cut -d: -f2)
    [ -n "$PORT" ] && break
    sleep 0.1
  done
  B=127.0.0.1:$PORT
  ticks() { awk '{print $14+$15}' /proc/$PID/stat; } # the broker's CPU, 1/100 s
fi
load() { cut -d' ' -f1 /proc/loadavg; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
producer_flags() { # MODE -> flags
  case $1 in
    idem) echo "--producer-prop enable.idempotence=true" ;;
    txn100) echo "--transactional-id bench-$2 --commit-interval-ms 100" ;;
    txn10) echo "--transactional-id bench-$2 --commit-interval-ms 10" ;;
  esac
}
for mode in idem txn100 txn10; do # create the topics, warm up
  $STROM -b $B --json perf produce --topic $mode --num-records 20000 --record-size 1024 \
    --partitions 3 $(producer_flags $mode warm) > /dev/null || exit 1
done
for round in $(seq "$ROUNDS"); do
  for mode in idem txn100 txn10; do
    l=$(load)
    $STROM -b $B --json perf produce --topic $mode --num-records $RECORDS --record-size 1024 \
      $(producer_flags $mode $round) > $DIR/out.json || exit 1
    echo "$round produce $mode $(field 'round(d["bytes"]/d["elapsed_s"]/1e6,1), (d.get("transactions") or {}).get("commits",0), d["latency"]["p99_ms"], (d.get("transactions") or {}).get("commit_latency", {}).get("p50_ms", 0)' < $DIR/out.json | tr -d '(),') $l"
  done
done | tee $DIR/runs.txt
TOTAL=$(( RECORDS * ROUNDS + 20000 ))
for round in $(seq $(( ROUNDS * 3 ))); do # reads are short: three times the rounds
  for level in read_uncommitted read_committed; do
    l=$(load)
    before=$(ticks)
    mbs=$($STROM -b $B --json perf consume --topic txn100 --num-records $TOTAL \
      --consumer-prop isolation.level=$level 2>/dev/null \
      | field 'd["complete"] and round(d["bytes"]/d["elapsed_s"]/1e6,1)')
    echo "$round consume $level $mbs $(( $(ticks) - before )) 0 $l"
  done
done | tee -a $DIR/runs.txt
for round in $(seq "$ROUNDS"); do
  for mode in idem txn100 txn10; do
    level=read_committed; [ $mode = idem ] && level=read_uncommitted
    l=$(load)
    $STROM -b $B --json perf e2e --topic e2e-$mode --rate $RATE --duration $E2E_S \
      --record-size 1024 $(producer_flags $mode e2e-$round) \
      --consumer-prop isolation.level=$level > $DIR/out.json || exit 1
    echo "$round e2e $mode $(field 'd["e2e_latency"]["p50_ms"], d["e2e_latency"]["p99_ms"], d["ack_latency"]["p99_ms"]' < $DIR/out.json | tr -d '(),') $l"
  done
done | tee -a $DIR/runs.txt
python3 - $DIR/runs.txt <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
def runs(kind, mode):
    return {r[0]: r for r in rows if r[1] == kind and r[2] == mode}
def med(rs, i):
    return st.median(float(r[i]) for r in rs.values())
idem = runs("produce", "idem")
for mode in ("idem", "txn100", "txn10"):
    rs = runs("produce", mode)
    mbs = [float(r[3]) for r in rs.values()]
    paired = st.median(float(rs[k][3]) / float(idem[k][3]) for k in rs)
    print(f"produce {mode}: median {st.median(mbs):.0f} MB/s ({min(mbs):.0f}-{max(mbs):.0f}), "
          f"ack p99 {med(rs, 5):.1f} ms, commits/run {med(rs, 4):.0f}, commit p50 {med(rs, 6):.1f} ms; "
          f"ratio to idempotent {st.median(mbs) / med(idem, 3):.3f} (paired {paired:.3f})")
u, c = runs("consume", "read_uncommitted"), runs("consume", "read_committed")
print(f"consume read_uncommitted {med(u, 3):.0f} MB/s ({med(u, 4) / 100:.2f} s broker CPU), "
      f"read_committed {med(c, 3):.0f} MB/s ({med(c, 4) / 100:.2f} s): "
      f"ratio {med(c, 3) / med(u, 3):.3f} (paired {st.median(float(c[k][3]) / float(u[k][3]) for k in c):.3f})")
for mode in ("idem", "txn100", "txn10"):
    rs = runs("e2e", mode)
    print(f"e2e {mode}: p50 {med(rs, 3):.1f} ms, p99 {med(rs, 4):.1f} ms (ack p99 {med(rs, 5):.1f} ms), "
          f"p99 range {min(float(r[4]) for r in rs.values()):.1f}-{max(float(r[4]) for r in rs.values()):.1f}")
print("load average per run:", " ".join(r[-1] for r in rows))
PY
