package ingest

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TagPolicy is the tag policy of the protocols other than Atlas publish
// (remote write, OTLP, SpectatorD, Zipkin; docs/ingest.md): keys and values
// are stored as sent, valid UTF-8 of any characters; a value longer than
// MaxValueBytes is cut (at a character boundary) and counted; a series
// with more than MaxTags tags, an empty key or invalid UTF-8 is rejected
// alone. Atlas's character and length rules (Rules) apply to the Atlas
// publish API only.
type TagPolicy struct {
	// MaxValueBytes is the longest value kept whole; default 1024.
	MaxValueBytes int
	// MaxTags bounds the tags of a series, name included; default 64.
	MaxTags int
	// ResourceTags are the OTLP resource attributes promoted to tags: exact
	// keys, or prefixes ending in '*'. The others go to one info series per
	// resource. Default: DefaultResourceTags.
	ResourceTags []string
}

// DefaultResourceTags are the OTLP resource attributes promoted to tags by
// default: the service, the deployment environment, the host and the
// Kubernetes workload names.
var DefaultResourceTags = []string{
	"service.*", "deployment.environment*", "host.name",
	"k8s.cluster.name", "k8s.namespace.name", "k8s.deployment.name", "k8s.statefulset.name",
	"k8s.daemonset.name", "k8s.replicaset.name", "k8s.job.name", "k8s.cronjob.name",
}

// ResourceInfoName is the name of the info series that holds the resource
// attributes not promoted to tags.
const ResourceInfoName = "target_info"

func (p TagPolicy) withDefaults() TagPolicy {
	if p.MaxValueBytes <= 0 {
		p.MaxValueBytes = 1024
	}
	if p.MaxTags <= 0 {
		p.MaxTags = 64
	}
	if p.ResourceTags == nil {
		p.ResourceTags = DefaultResourceTags
	}
	return p
}

// promoted reports whether the resource attribute k becomes a tag.
func (p TagPolicy) promoted(k string) bool {
	for _, pat := range p.ResourceTags {
		if prefix, ok := strings.CutSuffix(pat, "*"); ok {
			if strings.HasPrefix(k, prefix) {
				return true
			}
		} else if k == pat {
			return true
		}
	}
	return false
}

// value returns v cut to MaxValueBytes at a character boundary, and
// whether it was cut.
func (p TagPolicy) value(v string) (string, bool) {
	if len(v) <= p.MaxValueBytes {
		return v, false
	}
	n := p.MaxValueBytes
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n], true
}

// Reasons of the tag policy, the reason tag of sextant.ingest.rejected.
const (
	ReasonTooManyTags = "TooManyTags"
	ReasonEmptyKey    = "EmptyKey"
	ReasonInvalidUTF8 = "InvalidUTF8"
)

// check returns the reason and message when the sorted set ts breaks the
// policy, or empty strings. It allocates only on failure.
func (p TagPolicy) check(ts tags.Set) (reason, msg string) {
	if len(ts) > p.MaxTags {
		return ReasonTooManyTags, fmt.Sprintf("too many tags: %d > %d", len(ts), p.MaxTags)
	}
	name, ok := ts.Get(tags.NameKey)
	if !ok || name == "" {
		return ReasonMissingName, "missing key 'name'"
	}
	for _, t := range ts {
		if t.Key == "" {
			return ReasonEmptyKey, "empty tag key"
		}
		if !utf8.ValidString(t.Key) {
			return ReasonInvalidUTF8, fmt.Sprintf("invalid UTF-8 in key %q", t.Key)
		}
		if !utf8.ValidString(t.Value) {
			return ReasonInvalidUTF8, fmt.Sprintf("invalid UTF-8 in value of %q", t.Key)
		}
	}
	return "", ""
}

// countCut counts n tag values cut to the policy's length.
func (h *Handler) countCut(protocol string, n int) {
	if n > 0 {
		h.opts.Registry.Counter("sextant.ingest.valuesCut", "protocol", protocol).Add(float64(n))
	}
}
