package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAlertingAPI exercises the alerting API of an in-process server:
// reload with a bad file (400 naming file, line, word and position; the
// old rules stay), groups saved through the API (persisted), check,
// backtest, silences with preview, and the Prometheus-shaped endpoints.
func TestAlertingAPI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.LiveDelay = 100 * time.Millisecond
	dir := rulesDir(t, e2eRules)
	cfg.Alerting = alertingConfig{RulesDir: dir, ExternalURL: "http://sextant.example"}
	base := "http://" + startServe(t, cfg)
	pub := startGauges(t, base, map[string]float64{"a": 90})
	_ = pub

	// A bad file: rejected whole, with where and which word.
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("groups:\n  - name: bad\n    rules:\n      - alert: X\n        expr: name,x,:eq,:nope\n"), 0o644)
	code, body := doJSON(t, "POST", base+"/api/v1/alerting/reload", "")
	var e struct {
		Type, Message, File, Word string
		Line                      int
		Position                  *int
	}
	json.Unmarshal(body, &e)
	if code != 400 || e.Type != "error" || e.File != "bad.yaml" || e.Line != 5 || e.Word != ":nope" || e.Position == nil || *e.Position != 11 {
		t.Errorf("reload of a bad file = %d %s", code, body)
	}
	os.Remove(filepath.Join(dir, "bad.yaml"))
	_, rb := get(t, base+"/api/v1/alerting/rules")
	if !strings.Contains(rb, `"alert":"HighCPU"`) {
		t.Errorf("old rules gone: %s", rb)
	}

	// A group through the API, in JSON; a name clash with a file group is a 400.
	code, body = doJSON(t, "PUT", base+"/api/v1/alerting/rules/api-group",
		`{"rules":[{"alert":"Always","expr":"1","labels":{"team":"x"},"annotations":{"summary":"value {{ $value }}"}}]}`)
	if code != 200 {
		t.Fatalf("put group = %d %s", code, body)
	}
	code, body = doJSON(t, "PUT", base+"/api/v1/alerting/rules/hosts", `{"rules":[{"alert":"X","expr":"1"}]}`)
	if code != 400 || !strings.Contains(string(body), "rule file") {
		t.Errorf("put over a file group = %d %s", code, body)
	}
	code, body = doJSON(t, "PUT", base+"/api/v1/alerting/rules/g2", `{"rules":[{"alert":"X","expr":"1,:bogus"}]}`)
	if code != 400 || !strings.Contains(string(body), `"word":":bogus"`) {
		t.Errorf("put a bad rule = %d %s", code, body)
	}
	// Evaluated: Always fires (no for) and HighCPU goes pending then firing.
	waitFor(t, 15*time.Second, "the condition", func() bool {
		_, b := get(t, base+"/api/v1/alerting/alerts")
		return strings.Count(b, `"state":"firing"`) == 2
	})
	_, body2 := get(t, base+"/api/v1/alerting/alerts")
	if !strings.Contains(body2, `"summary":"value 1"`) {
		t.Errorf("alerts: %s", body2)
	}
	code, pr := get(t, base+"/api/v1/rules")
	var prom struct {
		Status string
		Data   struct {
			Groups []struct {
				Name  string
				Rules []struct {
					Name, State, Health, Type string
					Alerts                    []struct{ State, Value string }
				}
			}
		}
	}
	json.Unmarshal([]byte(pr), &prom)
	if code != 200 || prom.Status != "success" || len(prom.Data.Groups) != 2 || prom.Data.Groups[1].Rules[0].State != "firing" ||
		prom.Data.Groups[1].Rules[0].Type != "alerting" || prom.Data.Groups[1].Rules[0].Alerts[0].Value != "1e+00" {
		t.Errorf("/api/v1/rules = %d %s", code, pr)
	}
	code, pa := get(t, base+"/api/v1/alerts")
	if code != 200 || !strings.Contains(pa, `"status":"success"`) || strings.Count(pa, `"state":"firing"`) != 2 {
		t.Errorf("/api/v1/alerts = %d %s", code, pa)
	}

	// Check.
	code, body = doJSON(t, "POST", base+"/api/v1/alerting/rules/check", e2eRules)
	if code != 200 || !strings.Contains(string(body), `"rules":1`) {
		t.Errorf("check = %d %s", code, body)
	}
	code, body = doJSON(t, "POST", base+"/api/v1/alerting/rules/check", `{"alert":"A","expr":"1","for":"soon"}`)
	if code != 400 || !strings.Contains(string(body), `"field":"for"`) {
		t.Errorf("check a bad rule = %d %s", code, body)
	}

	// Backtest over what was stored.
	code, body = doJSON(t, "POST", base+"/api/v1/alerting/backtest",
		`{"rule":{"alert":"Hot","expr":"name,e2e.cpu,:eq,(,host,),:by,80,:gt","for":"1s"},"s":"now-20s","e":"now"}`)
	var bt struct {
		Transitions   []struct{ From, To string }
		Firing        []struct{ Start, End int64 }
		Notifications int
	}
	json.Unmarshal(body, &bt)
	if code != 200 || len(bt.Firing) != 1 || len(bt.Transitions) < 2 {
		t.Errorf("backtest = %d %s", code, body)
	}
	code, body = doJSON(t, "POST", base+"/api/v1/alerting/backtest", `{"rule":{"alert":"Hot","expr":"1"},"s":"yesterday"}`)
	if code != 400 || !strings.Contains(string(body), "bad time") {
		t.Errorf("backtest with a bad time = %d %s", code, body)
	}

	// Silences: preview, create, list, expire.
	now := time.Now().UTC()
	sil := fmt.Sprintf(`{"matchers":[{"name":"team","value":"x|y","isRegex":true}],"startsAt":%q,"endsAt":%q,"createdBy":"me","comment":"c"}`,
		now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	code, body = doJSON(t, "POST", base+"/api/v1/alerting/silences/preview", sil)
	if code != 200 || !strings.Contains(string(body), `"rule":"Always"`) || strings.Contains(string(body), `"rule":"HighCPU"`) {
		t.Errorf("preview = %d %s", code, body)
	}
	code, body = doJSON(t, "POST", base+"/api/v1/alerting/silences", sil)
	var id struct{ SilenceID string }
	json.Unmarshal(body, &id)
	if code != 200 || id.SilenceID == "" {
		t.Fatalf("post silence = %d %s", code, body)
	}
	code, body = doJSON(t, "POST", base+"/api/v1/alerting/silences", `{"matchers":[],"createdBy":"me"}`)
	if code != 400 || !strings.Contains(string(body), "matchers") {
		t.Errorf("empty silence = %d %s", code, body)
	}
	code, body = doJSON(t, "DELETE", base+"/api/v1/alerting/silences/"+id.SilenceID, "")
	if code != 200 {
		t.Errorf("delete silence = %d %s", code, body)
	}
	_, ls := get(t, base+"/api/v1/alerting/silences")
	if !strings.Contains(ls, `"state":"expired"`) {
		t.Errorf("silences: %s", ls)
	}
	code, _ = doJSON(t, "DELETE", base+"/api/v1/alerting/silences/nope", "")
	if code != 404 {
		t.Errorf("delete unknown silence = %d", code)
	}
	// Deleting the API group resolves its alert.
	code, _ = doJSON(t, "DELETE", base+"/api/v1/alerting/rules/api-group", "")
	if code != 204 {
		t.Errorf("delete group = %d", code)
	}
	code, _ = doJSON(t, "DELETE", base+"/api/v1/alerting/rules/api-group", "")
	if code != 404 {
		t.Errorf("delete group again = %d", code)
	}
}
