package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sextant-dev/sextant/query/canary"
)

// Exit codes of `sextant canary judge`: the pipeline gate.
const (
	exitPass     = 0
	exitFail     = 1
	exitMarginal = 2 // also every error: the gate does not open
)

const canaryUsage = `Usage: sextant canary judge --server URL -f FILE [--timeout 60s] [--json]

Judges a canary against its baseline on a Sextant server (POST
/api/v1/canary/judge). FILE is the judge request in YAML, with the keys of
the JSON body (baseline, canary, s, e, step, metrics, thresholds). Prints a
table of the metrics and exits 0 on pass, 1 on fail, 2 on marginal or any
error.
`

// runCanary runs `sextant canary ...` and returns the exit code.
func runCanary(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "judge" {
		fmt.Fprint(stderr, canaryUsage)
		return exitMarginal
	}
	fs := flag.NewFlagSet("sextant canary judge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, canaryUsage); fs.PrintDefaults() }
	server := fs.String("server", "http://localhost:7101", "base URL of the Sextant server")
	file := fs.String("f", "", "judge request in YAML (- for standard input)")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the judgement")
	asJSON := fs.Bool("json", false, "print the server's JSON answer instead of the table")
	if err := fs.Parse(args[1:]); err != nil {
		return exitMarginal // also for --help: the gate does not open
	}
	if *file == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "sextant canary judge: give the request file with -f and no other arguments")
		return exitMarginal
	}
	var src []byte
	var err error
	if *file == "-" {
		src, err = io.ReadAll(os.Stdin)
	} else {
		src, err = os.ReadFile(*file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sextant canary judge: %v\n", err)
		return exitMarginal
	}
	body, err := canaryYAML(src)
	if err != nil {
		fmt.Fprintf(stderr, "sextant canary judge: %s: %v\n", *file, err)
		return exitMarginal
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	token, _ := lookupEnv("SEXTANT_AUTH_TOKEN")
	raw, a, err := postJudge(ctx, strings.TrimSuffix(*server, "/"), token, body)
	if err != nil {
		fmt.Fprintf(stderr, "sextant canary judge: %v\n", err)
		return exitMarginal
	}
	if *asJSON {
		stdout.Write(raw)
	} else {
		writeCanaryTable(stdout, a)
	}
	switch a.Result {
	case canary.Pass:
		return exitPass
	case canary.Fail:
		return exitFail
	}
	return exitMarginal
}

// canaryYAML turns a judge request in YAML into its JSON body, checked
// by the same strict decoder as the server's so a typo is named here.
func canaryYAML(src []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errors.New("empty request")
	}
	v, err := jsonable(v, "")
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if _, err := canary.DecodeRequest(body); err != nil {
		return nil, err
	}
	return body, nil
}

// jsonable converts what YAML decoded into values encoding/json takes:
// mappings must have string keys.
func jsonable(v any, path string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			c, err := jsonable(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("%s: key %v is not a string", strings.TrimPrefix(path, "."), k)
			}
			c, err := jsonable(e, path+"."+ks)
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		for i, e := range x {
			c, err := jsonable(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%s: %v is not a finite number", strings.TrimPrefix(path, "."), x)
		}
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	}
	return v, nil
}

// postJudge sends the request and decodes the answer; an error answer of
// the server becomes an error naming its field.
func postJudge(ctx context.Context, server, token string, body []byte) ([]byte, *canary.Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/api/v1/canary/judge", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message, Param string }
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			return nil, nil, fmt.Errorf("server answered %s: %s", resp.Status, e.Message)
		}
		return nil, nil, fmt.Errorf("server answered %s: %.200s", resp.Status, raw)
	}
	var a canary.Answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, nil, fmt.Errorf("decode answer: %w", err)
	}
	return raw, &a, nil
}

// writeCanaryTable prints the answer as a table, one metric a row, then
// the verdict and each metric's reason.
func writeCanaryTable(w io.Writer, a *canary.Answer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tRESULT\tP-VALUE\tRATIO\tSHIFT (HL)\tBASELINE n/median/mean\tCANARY n/median/mean\tWEIGHT")
	for _, m := range a.Metrics {
		class := m.Classification
		if m.Passed && class != canary.Pass {
			class += " (harmless)"
		}
		if m.Critical {
			class += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%g\n", m.Name, class, num(m.PValue, 'e', 2), num(m.Effect.Ratio, 'f', 3),
			num(m.Effect.HodgesLehmann, 'g', 4), sample(m.Baseline), sample(m.Canary), m.Weight)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nscore %g: %s (%s)\n", a.Score, strings.ToUpper(a.Result), a.Reason)
	fmt.Fprintf(w, "window %s .. %s, step %s; * critical\n", time.UnixMilli(a.Start).UTC().Format(time.RFC3339),
		time.UnixMilli(a.End).UTC().Format(time.RFC3339), time.Duration(a.Step)*time.Millisecond)
	for _, m := range a.Metrics {
		fmt.Fprintf(w, "  %s: %s\n", m.Name, m.Reason)
	}
}

func num(f canary.Float, format byte, prec int) string {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	if v == 0 {
		v = 0 // no -0
	}
	return strconv.FormatFloat(v, format, prec, 64)
}

func sample(s canary.Sample) string {
	return fmt.Sprintf("%d/%s/%s", s.Count, num(s.Median, 'g', 4), num(s.Mean, 'g', 4))
}
