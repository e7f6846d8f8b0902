#!/usr/bin/env bash
# A/B of the modern fetch path between two broker binaries: both run at once (ports 29094 and
# 29095, their own log dirs), hold the same 1,000,000 x 1023-byte records in one partition,
# and are read alternately by fetch_loop at Fetch v12 and by kcat (Fetch v11), ROUNDS times.
#
#   bench/modern-fetch-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]
set -u
cd "$(dirname "$0")/.."
OLD=$1
NEW=$2
ROUNDS=${3:-5}
LOOP="${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}/release/examples/fetch_loop"
RECORDS=/tmp/strom-records-1k.txt
VALUE_BYTES=1023
[ -f $RECORDS ] || python3 -c "
pad = 'x' * 1015
with open('$RECORDS', 'w') as f:
    for i in range(1000000):
        f.write('%08d%s\n' % (i, pad))
"
DIR=/tmp/strom-bench-modern-ab
rm -rf $DIR && mkdir -p $DIR
pids=()
start() {
  local name=$1 bin=$2 port=$3
  RUST_LOG=warn $bin broker --set listeners=PLAINTEXT://127.0.0.1:$port \
    --set log.dirs=$DIR/$name --set strom.metrics.listener= > $DIR/$name.log 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
}
start old "$OLD" 29094
start new "$NEW" 29095
trap 'for p in "${pids[@]}"; do kill -TERM $p 2>/dev/null; done; wait' EXIT
sleep 1.5
for port in 29094 29095; do
  kcat -b 127.0.0.1:$port -P -t perf -p 0 -X acks=all -X linger.ms=5 -l $RECORDS
done
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
run() {
  local name=$1 pid=$2
  shift 2
  local c0 s e c1 n
  c0=$(ticks "$pid")
  s=$(date +%s.%N)
  n=$("$@")
  e=$(date +%s.%N)
  c1=$(ticks "$pid")
  python3 -c "
s, e, n = $s, $e, $n
print('%-14s records %d  %.2f s  %.0f MB/s  broker CPU %.2f s' % ('$name', n, e - s, n * $VALUE_BYTES / (e - s) / 1e6, ($c1 - $c0) / 100))"
}
kcat_read() { kcat -b 127.0.0.1:$1 -C -t perf -p 0 -o 0 -e -q -f '\n' | wc -l; }
raw_read() { $LOOP 127.0.0.1:$1 perf 12 $((1 << 20)) $VALUE_BYTES | awk '{print $3}'; }
kcat_read 29094 >/dev/null
kcat_read 29095 >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  run old-raw-v12 "$pid_old" raw_read 29094
  run new-raw-v12 "$pid_new" raw_read 29095
  run old-kcat "$pid_old" kcat_read 29094
  run new-kcat "$pid_new" kcat_read 29095
done
