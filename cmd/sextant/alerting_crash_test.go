package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAlertingRestartAndKill runs the real binary with a rule and a real
// webhook receiver, and while the alert fires kills it with SIGKILL, then
// restarts it gracefully: no page is sent twice, and the resolution after
// the restarts is still sent.
func TestAlertingRestartAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	hook := newWebhookInbox(t)
	dir := t.TempDir()
	rules := rulesDir(t, e2eRules)
	flags := []string{"--data-dir", dir, "--memory-retention", "1h", "--live-delay", "300ms",
		"--rules-dir", rules, "--external-url", "http://sextant.example",
		"--alerting-config", alertingConfigFile(t, t.TempDir(), hook.srv.URL, "1s", "2s", "1h")}
	b := runBinary(t, bin, nil, flags...)
	pub := startGauges(t, "http://"+b.addr, map[string]float64{"a": 50})
	waitBaseline(t, "http://"+b.addr, 2, "a") // steps below the threshold before the crossing
	pub.set("a", 90)
	m := hook.next(t, 20*time.Second)
	if m.msg.Status != "firing" || len(m.msg.Alerts) != 1 {
		t.Fatalf("page: %s", m.raw)
	}
	fp := m.msg.Alerts[0].Fingerprint
	// A kill between the send and its notification log record would page
	// again (at least once, as Alertmanager): wait for the record.
	waitFor(t, 10*time.Second, "the condition", func() bool {
		_, body := get(t, "http://"+b.addr+"/api/v1/alerting/notifications")
		return strings.Contains(body, `"outcome":"sent"`)
	})

	// SIGHUP re-reads the rules directory.
	os.WriteFile(filepath.Join(rules, "more.yml"), []byte("groups:\n  - name: more\n    rules:\n      - {alert: Extra, expr: '0'}\n"), 0o644)
	b.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the condition", func() bool {
		_, body := get(t, "http://"+b.addr+"/api/v1/alerting/rules")
		return strings.Contains(body, `"alert":"Extra"`)
	})

	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		b.cmd.Process.Signal(sig)
		b.cmd.Wait()
		b = runBinary(t, bin, nil, flags...)
		pub.base.Store("http://" + b.addr)
		// Firing still, and not paged again.
		hook.none(t, 6*time.Second)
		code, body := get(t, "http://"+b.addr+"/api/v1/alerting/alerts")
		if code != 200 || !strings.Contains(body, `"state":"firing"`) {
			t.Fatalf("after %v: alerts = %d %s", sig, code, body)
		}
	}
	pub.set("a", 10)
	m = hook.next(t, 20*time.Second)
	if m.msg.Status != "resolved" || m.msg.Alerts[0].Fingerprint != fp || m.msg.Alerts[0].EndsAt.IsZero() {
		t.Errorf("resolution: %s", m.raw)
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := b.cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}
