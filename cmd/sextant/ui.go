package main

import (
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/ui"
)

// setupUI adds the web UI (/ and /ui/...), the dashboards API and the
// status API to the node's routes.
func setupUI(n *node, _ *runGroup) error {
	started := time.Now().UTC()
	cfg := n.cfg
	u, err := ui.New(ui.Options{
		KV:       n.stateKV(),
		Status:   func() any { return statusInfo(cfg, started) },
		Logger:   n.logger.With("component", "ui"),
		Registry: n.reg,
	})
	if err != nil {
		return err
	}
	u.Register(n.mux)
	return nil
}

// statusInfo is what the UI's status page shows: the build and the
// settings in force (secrets left out).
func statusInfo(cfg config, started time.Time) map[string]any {
	build := map[string]string{"go": runtime.Version(), "started": started.Format(time.RFC3339)}
	if bi, ok := debug.ReadBuildInfo(); ok {
		build["module"] = bi.Main.Path
		build["version"] = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
				build[s.Key] = s.Value
			}
		}
	}
	settings := map[string]string{}
	v := reflect.ValueOf(cfg)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		// Nested settings (alerting receivers) may hold URLs with keys:
		// only plain values are shown.
		if !f.IsExported() || secretField(f.Name) || f.Type.Kind() == reflect.Struct && !f.Type.Implements(reflect.TypeFor[fmt.Stringer]()) ||
			f.Type.Kind() == reflect.Map || f.Type.Kind() == reflect.Slice || f.Type.Kind() == reflect.Pointer {
			continue
		}
		val := v.Field(i).Interface()
		if s, ok := val.(fmt.Stringer); ok {
			settings[f.Name] = s.String()
		} else {
			settings[f.Name] = fmt.Sprint(val)
		}
	}
	return map[string]any{"build": build, "settings": settings}
}

func secretField(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "secret", "password", "key", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
