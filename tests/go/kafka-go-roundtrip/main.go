// kafka-go-roundtrip: Debian 12's segmentio/kafka-go 0.2 against a broker. A Writer produces -n
// records (Produce v2, message format v1), a Reader in group -group consumes them (JoinGroup
// v1, SyncGroup v0, Fetch v2, ListOffsets v1) committing each one synchronously (OffsetCommit
// v2), and the program prints one RESULT line that crates/strom-cli/tests/old_clients.rs
// checks. It exits non-zero on the first error.
package main

import (
	"context"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"sort"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kafka-go-roundtrip: "+format+"\n", args...)
	os.Exit(1)
}

// value is the payload of record i: the same function is in the Rust test.
func value(i int) []byte {
	return []byte(fmt.Sprintf("kafka-go-%06d-%s", i, strings.Repeat(string(rune('a'+i%26)), i%50)))
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap servers")
	topic := flag.String("topic", "kafka-go", "topic (must exist)")
	group := flag.String("group", "kafka-go-group", "consumer group")
	n := flag.Int("n", 100, "records to produce")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	go func() {
		<-ctx.Done()
		time.Sleep(time.Second)
		fail("timed out after %s", *timeout)
	}()

	w := kafka.NewWriter(kafka.WriterConfig{
		Brokers:      strings.Split(*brokers, ","),
		Topic:        *topic,
		Balancer:     &kafka.Hash{},
		BatchSize:    10,
		BatchTimeout: 20 * time.Millisecond,
		RequiredAcks: -1,
	})
	msgs := make([]kafka.Message, *n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("key-%d", i)), Value: value(i)}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		fail("write: %v", err)
	}
	if err := w.Close(); err != nil {
		fail("writer close: %v", err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:          strings.Split(*brokers, ","),
		GroupID:          *group,
		Topic:            *topic,
		MinBytes:         1,
		MaxBytes:         1 << 20,
		MaxWait:          200 * time.Millisecond,
		SessionTimeout:   10 * time.Second,
		RebalanceTimeout: 10 * time.Second,
	})
	byKey := map[string]int{}
	for i := 0; i < *n; i++ {
		byKey[fmt.Sprintf("key-%d", i)] = i
	}
	seen := map[int]bool{}
	last := map[int]int64{}
	for len(seen) < *n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			fail("fetch after %d records: %v", len(seen), err)
		}
		i, ok := byKey[string(m.Key)]
		if !ok || string(m.Value) != string(value(i)) {
			fail("partition %d offset %d: unexpected key %q value %q", m.Partition, m.Offset, m.Key, m.Value)
		}
		if seen[i] {
			fail("record %d consumed twice", i)
		}
		if prev, ok := last[m.Partition]; ok && m.Offset <= prev {
			fail("partition %d: offset %d after %d", m.Partition, m.Offset, prev)
		}
		if m.Time.IsZero() || m.Time.Before(time.Now().Add(-time.Hour)) {
			fail("partition %d offset %d: timestamp %v is not the write time", m.Partition, m.Offset, m.Time)
		}
		last[m.Partition] = m.Offset
		seen[i] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			fail("commit %d: %v", m.Offset, err)
		}
	}
	if err := r.Close(); err != nil {
		fail("reader close: %v", err)
	}
	crc := uint32(0)
	for i := 0; i < *n; i++ {
		crc = crc32.Update(crc, castagnoli, value(i))
	}
	var parts []int
	for p := range last {
		parts = append(parts, p)
	}
	sort.Ints(parts)
	var ends []string
	for _, p := range parts {
		ends = append(ends, fmt.Sprintf("%d:%d", p, last[p]+1))
	}
	fmt.Printf("RESULT produced=%d consumed=%d crc32c=%08x next=%s\n", *n, len(seen), crc, strings.Join(ends, ","))
}
