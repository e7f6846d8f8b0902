#!/usr/bin/env bash
# The cost of down-conversion: the same 1,000,000 x 1023-byte records (one partition) read
# with Fetch v12 and with old versions, alternating in one run against one release-build
# broker: by fetch_loop (a raw-protocol consumer, crates/strom-cli/examples, whose own cost is
# next to nothing) at v12, v2 (magic 1) and v0 (magic 0), and by kcat (librdkafka 2.0.2)
# with its newest version and forced to the 0.9.0 protocol (Fetch v1, magic 0; -o 0, so no
# ListOffsets is needed).
#
#   cargo build --release --bin strom && cargo build --release -p strom-cli --example fetch_loop
#   bench/old-fetch.sh [ROUNDS] [CODEC]
#
# Prints, per run: wall seconds, MB/s of record values (10^6 bytes/s) and broker CPU seconds.
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
CODEC=${2:-none}
BIN="${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}/release/strom"
RECORDS=/tmp/strom-records-1k.txt
COUNT=1000000
VALUE_BYTES=1023 # each line of $RECORDS without its newline
[ -f $RECORDS ] || python3 -c "
pad = 'x' * 1015
with open('$RECORDS', 'w') as f:
    for i in range($COUNT):
        f.write('%08d%s\n' % (i, pad))
"
PORT=29093
DIR=/tmp/strom-bench-old-fetch
rm -rf $DIR && mkdir -p $DIR
RUST_LOG=warn $BIN broker --set listeners=PLAINTEXT://127.0.0.1:$PORT --set log.dirs=$DIR/data \
  > $DIR/broker.log 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
sleep 1.5
ticks() { awk '{print $14+$15}' /proc/$pid/stat; }
kcat -b 127.0.0.1:$PORT -P -t perf -p 0 -z "$CODEC" -X acks=all -X linger.ms=5 -l $RECORDS

LOOP="${CARGO_TARGET_DIR:-$HOME/.cache/strom-target}/release/examples/fetch_loop"
# librdkafka can be forced below ApiVersions only to 0.9.0 and older (from 0.10.0 on it asks
# ApiVersions whatever api.version.request says): 0.9.0 = Produce/Fetch v1, magic 0.
OLD_0_9=(-X api.version.request=false -X broker.version.fallback=0.9.0)
for setting in modern 0.9.0; do
  case $setting in
    modern) extra=() ;;
    0.9.0) extra=("${OLD_0_9[@]}") ;;
  esac
  version=$(timeout 20 kcat -b 127.0.0.1:$PORT -C -t perf -p 0 -o 0 -c 1 -q -f '' -d protocol \
    ${extra[@]+"${extra[@]}"} 2>&1 | grep -oE 'Sent FetchRequest \(v[0-9]+' | head -1)
  echo "kcat $setting: ${version:-?}"
done

# One measured run of a command that prints the number of records it read: wall time, MB/s of
# record values and the broker's CPU time.
run() {
  local name=$1
  shift
  local c0 s e c1 n
  c0=$(ticks)
  s=$(date +%s.%N)
  n=$("$@")
  e=$(date +%s.%N)
  c1=$(ticks)
  python3 -c "
s, e, n = $s, $e, $n
print('%-16s records %d  %.2f s  %.0f MB/s  broker CPU %.2f s' % ('$name', n, e - s, n * $VALUE_BYTES / (e - s) / 1e6, ($c1 - $c0) / 100))"
}
kcat_read() { kcat -b 127.0.0.1:$PORT -C -t perf -p 0 -o 0 -e -q -f '\n' "$@" | wc -l; }
raw_read() { $LOOP 127.0.0.1:$PORT perf "$1" $((1 << 20)) $VALUE_BYTES | awk '{print $3}'; }
run warm-up kcat_read >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round (codec $CODEC)"
  run raw-fetch-v12 raw_read 12
  run raw-fetch-v2 raw_read 2
  run raw-fetch-v0 raw_read 0
  run kcat-modern kcat_read
  run kcat-fetch-v1 kcat_read "${OLD_0_9[@]}"
done
echo "broker RSS: $(grep VmHWM /proc/$pid/status)"
