package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
)

// Delivery is one notification a receiver sent, failed to send, or did not
// send because silences muted every alert of it.
type Delivery struct {
	At          time.Time        `json:"at"`
	Receiver    string           `json:"receiver"`
	Integration string           `json:"integration"` // webhook, slack, pagerduty, alertmanager
	GroupKey    string           `json:"groupKey"`
	Status      string           `json:"status"`  // firing | resolved
	Outcome     string           `json:"outcome"` // sent | failed | muted
	Attempts    int              `json:"attempts"`
	Error       string           `json:"error,omitempty"`
	Reason      string           `json:"reason,omitempty"`
	Alerts      []DeliveredAlert `json:"alerts"`
}

// DeliveredAlert is an alert as a delivery carried it.
type DeliveredAlert struct {
	Labels      map[string]string `json:"labels"`
	Fingerprint string            `json:"fingerprint"`
	Status      string            `json:"status"`
	// MutedBy lists the silences that kept it out of the notification.
	MutedBy []string `json:"mutedBy,omitempty"`
}

const keyDeliveries = "alerting/deliveries/"

// DeliveryLog keeps deliveries in a KV store for a retention period.
// Safe for concurrent use.
type DeliveryLog struct {
	kv        tsdb.KV
	retention time.Duration
	seq       atomic.Uint64
}

// NewDeliveryLog returns a log in kv keeping deliveries for retention.
func NewDeliveryLog(kv tsdb.KV, retention time.Duration) *DeliveryLog {
	if retention <= 0 {
		retention = 15 * 24 * time.Hour
	}
	return &DeliveryLog{kv: kv, retention: retention}
}

// Record appends a delivery and drops those past the retention (at most a
// few per call, so the cost stays small).
func (l *DeliveryLog) Record(ctx context.Context, d Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	key := fmt.Sprintf("%s%016x/%08x", keyDeliveries, uint64(d.At.UnixMilli()), l.seq.Add(1))
	if err := l.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	cutoff := fmt.Sprintf("%s%016x", keyDeliveries, uint64(d.At.Add(-l.retention).UnixMilli()))
	var old []string
	_ = l.kv.Scan(ctx, keyDeliveries, func(k string, _ []byte) error {
		if k >= cutoff || len(old) >= 16 {
			return errStop
		}
		old = append(old, k)
		return nil
	})
	for _, k := range old {
		_ = l.kv.Put(ctx, k, nil)
	}
	return nil
}

var errStop = fmt.Errorf("stop")

// List returns the deliveries at or after since, newest first, at most
// limit (0: all).
func (l *DeliveryLog) List(ctx context.Context, since time.Time, limit int) ([]Delivery, error) {
	from := fmt.Sprintf("%s%016x", keyDeliveries, uint64(max(since.UnixMilli(), 0)))
	var out []Delivery
	err := l.kv.Scan(ctx, keyDeliveries, func(k string, v []byte) error {
		if k < from {
			return nil
		}
		var d Delivery
		if json.Unmarshal(v, &d) == nil {
			out = append(out, d)
		}
		return nil
	})
	slices.Reverse(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}
