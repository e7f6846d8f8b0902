// sarama-roundtrip: Debian 12's sarama 1.22 against a broker, as an application of that era
// uses it. It produces -n records to -topic (keys spread them over the partitions), consumes
// them all back with the group -group, commits, reads the committed offsets back through a
// fresh client, and prints one RESULT line that the Rust test
// (crates/strom-cli/tests/old_clients.rs) checks. It exits non-zero on the first error.
//
// -version default keeps sarama's default (V0_8_2_0: Produce v0, Fetch v0, ListOffsets v0,
// FindCoordinator v0, OffsetCommit v1, OffsetFetch v1) and consumes with a partition
// consumer plus an offset manager, since sarama's consumer groups need 0.10.2 or later; any
// other value (e.g. 1.0.0, 2.0.0) sets Config.Version and consumes with a ConsumerGroup.
package main

import (
	"context"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "sarama-roundtrip: "+format+"\n", args...)
	os.Exit(1)
}

// value is the payload of record i: the same function is in the Rust test.
func value(i int) []byte {
	return []byte(fmt.Sprintf("sarama-%06d-%s", i, strings.Repeat(string(rune('a'+i%26)), i%50)))
}

type consumed struct {
	partition int32
	offset    int64
	key       string
	value     []byte
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap servers")
	topic := flag.String("topic", "sarama", "topic (must exist)")
	group := flag.String("group", "sarama-group", "consumer group")
	n := flag.Int("n", 100, "records to produce")
	version := flag.String("version", "default", "Kafka version for Config.Version, or default")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after")
	flag.Parse()
	go func() {
		time.Sleep(*timeout)
		fail("timed out after %s", *timeout)
	}()

	config := sarama.NewConfig()
	config.ClientID = "sarama-roundtrip"
	if *version != "default" {
		v, err := sarama.ParseKafkaVersion(*version)
		if err != nil {
			fail("version %q: %v", *version, err)
		}
		config.Version = v
	}
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewHashPartitioner
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Return.Errors = true
	config.Metadata.Retry.Backoff = 100 * time.Millisecond

	client, err := sarama.NewClient(strings.Split(*brokers, ","), config)
	if err != nil {
		fail("client: %v", err)
	}
	partitions, err := client.Partitions(*topic)
	if err != nil {
		fail("partitions of %s: %v", *topic, err)
	}

	// Produce: remember where each record went.
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		fail("producer: %v", err)
	}
	where := map[int32]map[int64]int{}
	ends := map[int32]int64{}
	for i := 0; i < *n; i++ {
		p, off, err := producer.SendMessage(&sarama.ProducerMessage{
			Topic: *topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
			Value: sarama.ByteEncoder(value(i)),
		})
		if err != nil {
			fail("produce %d: %v", i, err)
		}
		if where[p] == nil {
			where[p] = map[int64]int{}
		}
		if _, dup := where[p][off]; dup {
			fail("record %d got offset %d of partition %d twice", i, off, p)
		}
		where[p][off] = i
		if off+1 > ends[p] {
			ends[p] = off + 1
		}
	}

	// Consume everything back with the group.
	var got []consumed
	if *version == "default" {
		got = consumeWithOffsetManager(client, *topic, *group, partitions, ends)
	} else {
		got = consumeWithGroup(config, *brokers, *topic, *group, ends)
	}
	if err := producer.Close(); err != nil {
		fail("producer close: %v", err)
	}

	// Every record once, in offset order within its partition, with its own payload.
	seen := map[int]bool{}
	last := map[int32]int64{}
	for _, c := range got {
		i, ok := where[c.partition][c.offset]
		if !ok {
			fail("consumed partition %d offset %d, which nobody produced", c.partition, c.offset)
		}
		if prev, ok := last[c.partition]; ok && c.offset <= prev {
			fail("partition %d: offset %d after %d", c.partition, c.offset, prev)
		}
		last[c.partition] = c.offset
		if string(c.value) != string(value(i)) || c.key != fmt.Sprintf("key-%d", i) {
			fail("partition %d offset %d: got key %q value %q, produced record %d", c.partition, c.offset, c.key, c.value, i)
		}
		if seen[i] {
			fail("record %d consumed twice", i)
		}
		seen[i] = true
	}
	if len(seen) != *n {
		fail("consumed %d distinct records of %d", len(seen), *n)
	}
	// The checksum of the payloads in production order.
	crc := uint32(0)
	for i := 0; i < *n; i++ {
		crc = crc32.Update(crc, castagnoli, value(i))
	}
	_ = client.Close()

	// The committed offsets, read by a fresh client and offset manager (OffsetFetch v1).
	committed := readCommitted(*brokers, config, *topic, *group, partitions)
	var parts []string
	sorted := append([]int32(nil), partitions...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	for _, p := range sorted {
		parts = append(parts, fmt.Sprintf("%d:%d/%d", p, committed[p], ends[p]))
		if committed[p] != ends[p] {
			fail("partition %d: committed %d, end %d", p, committed[p], ends[p])
		}
	}
	fmt.Printf("RESULT version=%s produced=%d consumed=%d crc32c=%08x committed=%s\n",
		*version, *n, len(got), crc, strings.Join(parts, ","))
}

// consumeWithOffsetManager reads every partition from its committed offset (or the oldest)
// to `ends` with partition consumers, marking offsets with an offset manager, then closes it
// (which commits).
func consumeWithOffsetManager(client sarama.Client, topic, group string, partitions []int32, ends map[int32]int64) []consumed {
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		fail("offset manager: %v", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("consumer: %v", err)
	}
	var got []consumed
	for _, p := range partitions {
		pom, err := om.ManagePartition(topic, p)
		if err != nil {
			fail("manage partition %d: %v", p, err)
		}
		start, _ := pom.NextOffset()
		if ends[p] == 0 || start >= ends[p] {
			pom.Close()
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			fail("consume partition %d from %d: %v", p, start, err)
		}
		for {
			select {
			case m := <-pc.Messages():
				got = append(got, consumed{m.Partition, m.Offset, string(m.Key), m.Value})
				pom.MarkOffset(m.Offset+1, "")
			case e := <-pc.Errors():
				fail("partition %d: %v", p, e)
			}
			if len(got) > 0 && got[len(got)-1].partition == p && got[len(got)-1].offset+1 >= ends[p] {
				break
			}
		}
		if err := pc.Close(); err != nil {
			fail("close partition consumer %d: %v", p, err)
		}
		if err := pom.Close(); err != nil {
			fail("close partition offset manager %d: %v", p, err)
		}
	}
	if err := consumer.Close(); err != nil {
		fail("consumer close: %v", err)
	}
	if err := om.Close(); err != nil {
		fail("offset manager close (final commit): %v", err)
	}
	return got
}

type handler struct {
	mu   sync.Mutex
	got  []consumed
	ends map[int32]int64
	done chan struct{}
	once sync.Once
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		h.got = append(h.got, consumed{m.Partition, m.Offset, string(m.Key), m.Value})
		total := 0
		for _, end := range h.ends {
			total += int(end)
		}
		complete := len(h.got) >= total
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if complete {
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

// consumeWithGroup joins `group` with a ConsumerGroup and consumes until every produced
// record arrived; closing the group commits the marked offsets.
func consumeWithGroup(config *sarama.Config, brokers, topic, group string, ends map[int32]int64) []consumed {
	config.Consumer.Offsets.CommitInterval = 200 * time.Millisecond
	g, err := sarama.NewConsumerGroup(strings.Split(brokers, ","), group, config)
	if err != nil {
		fail("consumer group: %v", err)
	}
	h := &handler{ends: ends, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil {
				finished <- err
				return
			}
		}
		finished <- nil
	}()
	go func() {
		for err := range g.Errors() {
			fail("consumer group error: %v", err)
		}
	}()
	<-h.done
	cancel()
	if err := <-finished; err != nil {
		fail("consume: %v", err)
	}
	if err := g.Close(); err != nil {
		fail("consumer group close: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

func readCommitted(brokers string, config *sarama.Config, topic, group string, partitions []int32) map[int32]int64 {
	client, err := sarama.NewClient(strings.Split(brokers, ","), config)
	if err != nil {
		fail("second client: %v", err)
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		fail("second offset manager: %v", err)
	}
	defer om.Close()
	out := map[int32]int64{}
	for _, p := range partitions {
		pom, err := om.ManagePartition(topic, p)
		if err != nil {
			fail("read committed %d: %v", p, err)
		}
		off, _ := pom.NextOffset()
		if off == sarama.OffsetOldest {
			off = 0
		}
		out[p] = off
		pom.AsyncClose()
	}
	return out
}
