package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureTopics creates the metrics and spans topics of prefix with
// partitions partitions when they are missing, and returns the number of
// partitions they have: an existing cluster's topics keep theirs, whatever
// partitions asks (the partition of a series depends on it). Both topics
// must have the same number. Kafka's own replication of the topics is the
// brokers' default (default.replication.factor). It retries until ctx ends
// while the brokers cannot be reached.
func EnsureTopics(ctx context.Context, brokers []string, prefix string, partitions int) (int, error) {
	if partitions <= 0 {
		return 0, fmt.Errorf("kafkalog: %d partitions", partitions)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, fmt.Errorf("kafkalog: new admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := []string{MetricsTopic(prefix), SpansTopic(prefix)}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		n, err := ensureTopics(ctx, adm, topics, partitions)
		if err == nil || !retriable(err) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("kafkalog: create topics %v: %w (last error: %w)", topics, ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// errPartitions marks topics whose partition counts do not agree: not
// worth a retry.
var errPartitions = errors.New("kafkalog: topics disagree")

func retriable(err error) bool { return !errors.Is(err, errPartitions) }

func ensureTopics(ctx context.Context, adm *kadm.Client, topics []string, partitions int) (int, error) {
	created, err := adm.CreateTopics(ctx, int32(partitions), -1, nil, topics...)
	if err != nil {
		return 0, err
	}
	for _, r := range created {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return 0, fmt.Errorf("create topic %s: %w %s", r.Topic, r.Err, r.ErrMessage)
		}
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return 0, err
	}
	n := -1
	for _, t := range topics {
		d, ok := details[t]
		if !ok || d.Err != nil {
			return 0, fmt.Errorf("describe topic %s: %v", t, d.Err)
		}
		switch got := len(d.Partitions); {
		case got == 0:
			return 0, fmt.Errorf("topic %s has no partitions yet", t)
		case n >= 0 && got != n:
			return 0, fmt.Errorf("%w: %s has %d partitions, %s %d", errPartitions, topics[0], n, t, got)
		default:
			n = got
		}
	}
	return n, nil
}

// EndOffsets returns the end offset (high watermark) of every partition of
// the metrics and spans topics of prefix, by topic then partition.
func EndOffsets(ctx context.Context, brokers []string, prefix string) (map[string][]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("kafkalog: new admin client: %w", err)
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, MetricsTopic(prefix), SpansTopic(prefix))
	if err != nil {
		return nil, fmt.Errorf("kafkalog: list end offsets: %w", err)
	}
	out := map[string][]int64{}
	var ferr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ferr = fmt.Errorf("kafkalog: end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		s := out[o.Topic]
		for len(s) <= int(o.Partition) {
			s = append(s, 0)
		}
		s[o.Partition] = o.Offset
		out[o.Topic] = s
	})
	return out, ferr
}

// EndReader reads the end offsets of topics over one long-lived client: a
// query node asks it once per strongly consistent read. Safe for
// concurrent use.
type EndReader struct {
	cl  *kgo.Client
	adm *kadm.Client
}

// NewEndReader returns an EndReader on brokers; it connects on first use.
func NewEndReader(brokers []string) (*EndReader, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafkalog: no brokers")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("kafkalog: new admin client: %w", err)
	}
	return &EndReader{cl: cl, adm: kadm.NewClient(cl)}, nil
}

// EndOffsets returns the end offset (high watermark: the offset the next
// record will get, so every record Kafka acknowledged is before it) of
// every partition of topic, by partition. An unreachable Kafka or a
// partition without a leader is an error: the caller cannot know the end.
func (r *EndReader) EndOffsets(ctx context.Context, topic string) ([]int64, error) {
	listed, err := r.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafkalog: list end offsets of %s: %w", topic, err)
	}
	var out []int64
	var ferr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ferr = fmt.Errorf("kafkalog: end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		for len(out) <= int(o.Partition) {
			out = append(out, -1)
		}
		out[o.Partition] = o.Offset
	})
	if ferr != nil {
		return nil, ferr
	}
	if len(out) == 0 || slices.Contains(out, -1) {
		return nil, fmt.Errorf("kafkalog: end offsets of %s: topic unknown or partitions missing", topic)
	}
	return out, nil
}

// Close closes the client.
func (r *EndReader) Close() { r.cl.Close() }
