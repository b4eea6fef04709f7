package lib

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"strings"
)

// WritePrometheus writes every registered meter in the Prometheus text
// exposition format (version 0.0.4), with cumulative values: counters as
// _total, timers as _seconds_count/_seconds_sum/_seconds_max, distribution
// summaries as _count/_sum/_max, gauges as they are. Names and tag keys are
// sanitized to Prometheus' character set (dots become underscores).
func (r *Registry) WritePrometheus(w io.Writer) error {
	bw := bufio.NewWriter(w)
	seen := map[string]bool{}
	typ := func(name, kind string) {
		if !seen[name] {
			seen[name] = true
			bw.WriteString("# TYPE " + name + " " + kind + "\n")
		}
	}
	line := func(name string, id Id, v float64) {
		bw.WriteString(name)
		if len(id.tags) > 0 {
			bw.WriteByte('{')
			for i, t := range id.tags {
				if i > 0 {
					bw.WriteByte(',')
				}
				bw.WriteString(promName(t.Key))
				bw.WriteString(`="`)
				bw.WriteString(escapeLabel(t.Value))
				bw.WriteByte('"')
			}
			bw.WriteByte('}')
		}
		bw.WriteByte(' ')
		bw.WriteString(formatFloat(v))
		bw.WriteByte('\n')
	}
	timer := func(m *Timer) {
		n := promName(m.id.name) + "_seconds"
		typ(n, "summary")
		c, tot, _ := m.cells.sums()
		line(n+"_count", m.id, float64(c))
		line(n+"_sum", m.id, float64(tot)/1e9)
	}
	summary := func(m *DistributionSummary) {
		n := promName(m.id.name)
		typ(n, "summary")
		line(n+"_count", m.id, float64(m.count.Load()))
		line(n+"_sum", m.id, m.total.load())
		typ(n+"_max", "gauge")
		line(n+"_max", m.id, m.max.load())
	}
	r.Meters(func(m any) {
		switch m := m.(type) {
		case *Counter:
			n := promName(m.id.name) + "_total"
			typ(n, "counter")
			line(n, m.id, m.Count())
		case *Gauge:
			n := promName(m.id.name)
			typ(n, "gauge")
			line(n, m.id, m.Value())
		case *MaxGauge:
			n := promName(m.id.name)
			typ(n, "gauge")
			line(n, m.id, m.Value())
		case *Timer:
			timer(m)
		case *PercentileTimer:
			timer(&m.Timer)
		case *DistributionSummary:
			summary(m)
		case *PercentileDistributionSummary:
			summary(&m.DistributionSummary)
		case *LongTaskTimer:
			n := promName(m.id.name)
			typ(n+"_active_tasks", "gauge")
			line(n+"_active_tasks", m.id, float64(m.ActiveTasks()))
			typ(n+"_duration_seconds", "gauge")
			line(n+"_duration_seconds", m.id, m.Duration().Seconds())
		}
	})
	return bw.Flush()
}

// promName maps a name to [a-zA-Z_:][a-zA-Z0-9_:]*.
func promName(s string) string {
	var b strings.Builder
	for i, r := range s {
		ok := r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if ok {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
