package alerting

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/stack"
)

// NoData modes of a rule: what an evaluation that yields no line means.
const (
	NoDataOK       = "ok"       // all instances inactive
	NoDataAlerting = "alerting" // one instance active
	NoDataNoData   = "nodata"   // a nodata instance (the default)
)

// Duration is a time.Duration written as "90s", "5m", "2h" or "1d".
type Duration time.Duration

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string duration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"5m\"")
	}
	v, err := ParseDuration(s)
	*d = v
	return err
}

// String renders d compactly ("5m", "1h30m").
func (d Duration) String() string {
	if d == 0 {
		return "0s"
	}
	s := time.Duration(d).String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

// ParseDuration reads a Go duration or a number of days ("1d").
func ParseDuration(s string) (Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n && days >= 0 {
			return Duration(time.Duration(days) * 24 * time.Hour), nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad duration %q (want e.g. 30s, 5m, 1h, 1d)", s)
	}
	return Duration(v), nil
}

// Group is a named set of rules evaluated at one interval.
type Group struct {
	Name string `json:"name" yaml:"name"`
	// Interval is the evaluation step; 0 means the storage step.
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	Rules    []*Rule  `json:"rules" yaml:"rules"`
	// File is where the group came from: a path under the rules directory,
	// or "" for a group saved through the API.
	File string `json:"file,omitempty" yaml:"-"`
}

// Rule is one alert rule.
type Rule struct {
	Alert         string            `json:"alert" yaml:"alert"`
	Expr          string            `json:"expr" yaml:"expr"`
	For           Duration          `json:"for,omitempty" yaml:"for,omitempty"`
	KeepFiringFor Duration          `json:"keep_firing_for,omitempty" yaml:"keep_firing_for,omitempty"`
	NoData        string            `json:"nodata,omitempty" yaml:"nodata,omitempty"`
	Labels        map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`

	annotations map[string]*template.Template
	labelTmpls  map[string]*template.Template // labels whose values are templates
}

// RuleError is a rule file or group that cannot be used. File, Line and
// Field say where; for an expression error Word and Pos name the stack
// language word and its byte offset in the expression.
type RuleError struct {
	File  string `json:"file,omitempty"`
	Line  int    `json:"line,omitempty"`
	Field string `json:"field,omitempty"`
	Word  string `json:"word,omitempty"`
	Pos   int    `json:"position,omitempty"`
	Msg   string `json:"message"`
}

// Error renders "file:line: field: message".
func (e *RuleError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Word != "" {
		fmt.Fprintf(&b, " (word %q at position %d)", e.Word, e.Pos)
	}
	return b.String()
}

// ParseOptions check rules against the server's settings.
type ParseOptions struct {
	// Step is the storage step (ms); a group interval must be a multiple.
	Step int64
}

// ParseFile reads a rule file (YAML, or JSON, which is YAML) with a top-level
// groups list. Any error is a *RuleError naming the file, the line and, for
// an expression, the word and its position.
func ParseFile(file string, data []byte, opts ParseOptions) ([]*Group, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	p := parser{file: file, opts: opts}
	var groups []*Group
	err := p.mapping(root, "", func(k string, v *yaml.Node) error {
		if k != "groups" {
			return p.errf(v, k, "unknown key (want groups)")
		}
		if v.Kind != yaml.SequenceNode {
			return p.errf(v, "groups", "want a list of groups")
		}
		for _, g := range v.Content {
			grp, err := p.group(g)
			if err != nil {
				return err
			}
			groups = append(groups, grp)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, g := range groups {
		if seen[g.Name] {
			return nil, &RuleError{File: file, Field: "name", Msg: fmt.Sprintf("group %q defined twice", g.Name)}
		}
		seen[g.Name] = true
		g.File = file
	}
	return groups, nil
}

// ParseGroup reads one group in the YAML or JSON shape of a rule file's
// groups entry (the API's PUT body).
func ParseGroup(data []byte, opts ParseOptions) (*Group, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError("", err)
	}
	if len(doc.Content) == 0 {
		return nil, &RuleError{Msg: "empty group"}
	}
	p := parser{opts: opts}
	return p.group(doc.Content[0])
}

// ParseRule reads one rule in its YAML or JSON shape (the backtest body).
func ParseRule(data []byte, opts ParseOptions) (*Rule, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError("", err)
	}
	if len(doc.Content) == 0 {
		return nil, &RuleError{Msg: "empty rule"}
	}
	p := parser{opts: opts}
	return p.rule(doc.Content[0])
}

// Check validates a rule built in Go (not parsed), compiling its templates.
func (r *Rule) Check() error {
	p := parser{}
	return p.check(r, nil)
}

var yamlLine = func(msg string) int {
	var n int
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i+5:], "%d", &n)
	}
	return n
}

func yamlError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return &RuleError{File: file, Line: yamlLine(msg), Msg: "bad YAML: " + msg}
}

type parser struct {
	file string
	opts ParseOptions
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	return &RuleError{File: p.file, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// mapping calls fn for each key of a mapping node, rejecting duplicates.
func (p *parser) mapping(n *yaml.Node, what string, fn func(k string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n, what, "want a mapping")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if seen[k] {
			return p.errf(n.Content[i], k, "key given twice")
		}
		seen[k] = true
		if err := fn(k, n.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) scalar(v *yaml.Node, field string) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", p.errf(v, field, "want a string")
	}
	return v.Value, nil
}

func (p *parser) duration(v *yaml.Node, field string) (Duration, error) {
	s, err := p.scalar(v, field)
	if err != nil {
		return 0, err
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, p.errf(v, field, "%v", err)
	}
	return d, nil
}

func (p *parser) stringMap(v *yaml.Node, field string) (map[string]string, error) {
	out := map[string]string{}
	err := p.mapping(v, field, func(k string, val *yaml.Node) error {
		s, err := p.scalar(val, field+"."+k)
		out[k] = s
		return err
	})
	return out, err
}

func (p *parser) group(n *yaml.Node) (*Group, error) {
	g := &Group{}
	var rulesNode *yaml.Node
	err := p.mapping(n, "group", func(k string, v *yaml.Node) error {
		var err error
		switch k {
		case "name":
			g.Name, err = p.scalar(v, k)
		case "interval":
			g.Interval, err = p.duration(v, k)
			if err == nil && p.opts.Step > 0 && (time.Duration(g.Interval).Milliseconds()%p.opts.Step != 0 || g.Interval == 0) {
				err = p.errf(v, k, "interval %s is not a positive multiple of the storage step %dms", g.Interval, p.opts.Step)
			}
		case "rules":
			if v.Kind != yaml.SequenceNode {
				return p.errf(v, k, "want a list of rules")
			}
			rulesNode = v
			for _, rn := range v.Content {
				r, err := p.rule(rn)
				if err != nil {
					return err
				}
				g.Rules = append(g.Rules, r)
			}
		default:
			err = p.errf(v, k, "unknown key (want name, interval, rules)")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if g.Name == "" {
		return nil, p.errf(n, "name", "group without a name")
	}
	if len(g.Rules) == 0 {
		return nil, p.errf(n, "rules", "group %q has no rules", g.Name)
	}
	seen := map[string]bool{}
	for i, r := range g.Rules {
		if seen[r.Alert] {
			return nil, p.errf(rulesNode.Content[i], "alert", "alert %q defined twice in group %q", r.Alert, g.Name)
		}
		seen[r.Alert] = true
	}
	return g, nil
}

func (p *parser) rule(n *yaml.Node) (*Rule, error) {
	r := &Rule{}
	var exprNode *yaml.Node
	err := p.mapping(n, "rule", func(k string, v *yaml.Node) error {
		var err error
		switch k {
		case "alert":
			r.Alert, err = p.scalar(v, k)
		case "expr":
			r.Expr, err = p.scalar(v, k)
			exprNode = v
		case "for":
			r.For, err = p.duration(v, k)
		case "keep_firing_for":
			r.KeepFiringFor, err = p.duration(v, k)
		case "nodata":
			r.NoData, err = p.scalar(v, k)
		case "labels":
			r.Labels, err = p.stringMap(v, k)
		case "annotations":
			r.Annotations, err = p.stringMap(v, k)
		case "record":
			err = p.errf(v, k, "recording rules are not supported; use an alert with expr")
		default:
			err = p.errf(v, k, "unknown key (want alert, expr, for, keep_firing_for, nodata, labels, annotations)")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := p.check(r, exprNode); err != nil {
		if re, ok := errors.AsType[*RuleError](err); ok && re.Line == 0 {
			re.Line = n.Line
			if re.Field == "expr" && exprNode != nil {
				re.Line = exprNode.Line
			}
		}
		return nil, err
	}
	return r, nil
}

// check validates r and compiles its templates; exprNode, when known,
// places expression errors on their line.
func (p *parser) check(r *Rule, exprNode *yaml.Node) error {
	fail := func(field, format string, args ...any) error {
		return &RuleError{File: p.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if r.Alert == "" {
		return fail("alert", "rule without an alert name")
	}
	if !validLabelValue(r.Alert) {
		return fail("alert", "alert name %q has characters other than letters, digits and . _ -", r.Alert)
	}
	if strings.TrimSpace(r.Expr) == "" {
		return fail("expr", "rule %q without an expr", r.Alert)
	}
	if _, err := query.Parse(r.Expr, query.ParseOptions{}); err != nil {
		e := &RuleError{File: p.file, Field: "expr", Msg: err.Error()}
		if se, ok := stack.AsError(err); ok {
			e.Msg, e.Word, e.Pos = se.Msg, se.Word, se.Pos
		}
		if exprNode != nil {
			e.Line = exprNode.Line
			// A literal block starts on the next line.
			if exprNode.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				e.Line++
			}
		}
		return e
	}
	switch r.NoData {
	case "":
		r.NoData = NoDataNoData
	case NoDataOK, NoDataAlerting, NoDataNoData:
	default:
		return fail("nodata", "nodata %q: want ok, alerting or nodata", r.NoData)
	}
	r.labelTmpls = nil
	for k, v := range r.Labels {
		if !validLabelName(k) {
			return fail("labels", "bad label name %q", k)
		}
		if strings.Contains(v, "{{") {
			// Label templates see the line's tags only: a label that
			// changed with the value would make a new alert every step.
			t, err := template.New(k).Option("missingkey=zero").Parse("{{$labels := .Tags}}" + v)
			if err != nil {
				return fail("labels."+k, "bad template: %v", err)
			}
			if r.labelTmpls == nil {
				r.labelTmpls = map[string]*template.Template{}
			}
			r.labelTmpls[k] = t
		}
	}
	r.annotations = map[string]*template.Template{}
	for k, v := range r.Annotations {
		t, err := template.New(k).Option("missingkey=zero").Parse(templatePrelude + v)
		if err != nil {
			return fail("annotations."+k, "bad template: %v", err)
		}
		r.annotations[k] = t
	}
	return nil
}

// templatePrelude gives templates Prometheus' $labels and $value beside
// .Tags and .Value.
const templatePrelude = "{{$labels := .Tags}}{{$value := .Value}}"

func validLabelValue(s string) bool { return validLabelName(s) }

// UnmarshalYAML reads a string duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes d as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
