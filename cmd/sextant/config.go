package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/wal"
)

// flagSpec is one setting of `sextant serve`: a flag, a config-file key of
// the same name and an environment variable SEXTANT_<NAME> with - as _.
type flagSpec struct {
	name, def, usage string
}

// serveFlags are the server's settings (docs/server.md), plus logging.
var serveFlags = []flagSpec{
	{"listen", ":7101", "HTTP address: Atlas APIs, Jaeger query API, remote write, web UI, /metrics, /healthz"},
	{"otlp-http-listen", ":4318", `OTLP/HTTP address (/v1/metrics, /v1/traces); "" disables`},
	{"otlp-grpc-listen", ":4317", `OTLP/gRPC address; "" disables`},
	{"data-dir", "./sextant-data", "directory for everything durable"},
	{"step", "60s", "storage step of the time-series store (1s … 1h, must divide 1h)"},
	{"memory-retention", "24h", "how much recent data is kept in memory blocks"},
	{"retention", "15d", "how long data is kept on disk"},
	{"trace-retention", "7d", "how long spans are kept"},
	{"trace-max-size", "10GiB", "size cap of the span store on disk; past it the oldest spans go early (0: none)"},
	{"ingest-max-age", "1h", "datapoints older than this are rejected (future skew allowed: 5m)"},
	{"fsync", "batch", "always | batch (group commit) | interval (fsync every 1s)"},
	{"log-level", "info", "debug | info | warn | error"},
	{"live-delay", "5s", "how long after a step closes the live evaluator (streaming and alert rules) evaluates it"},
	{"allowed-origins", "", "comma-separated extra origins allowed to open websockets and make cross-origin API calls; same-origin is always allowed"},
	{"rules-dir", "", "directory of alert rule files (*.yaml, *.yml); re-read on SIGHUP and POST /api/v1/alerting/reload"},
	{"alerting-config", "", "YAML file with notification route and receivers"},
	{"alertmanager-url", "", "comma-separated Alertmanager base URLs; active alerts are also pushed to their /api/v2/alerts"},
	{"external-url", "", "the URL users reach Sextant at, for links in notifications (default http://<hostname>:<port>)"},
	{"auth-token", "", "when set, every endpoint but /healthz requires Authorization: Bearer <token> (OTLP/gRPC: the same metadata)"},
	{"max-series", "10000000", "most series the store holds; new series past it are rejected"},
	{"max-series-per-name", "1000000", "most series of one name; new series past it are rejected"},
	{"max-series-per-query", "1000000", "most series one data expression of a query may read (422 past it; in a cluster, over every store node)"},
	{"max-datapoints-per-query", "500000000", "most storage-step values one data expression of a query may read (422 past it)"},
	{"max-bytes-per-query", "256MiB", "most memory one fetch of a query may hold (422 past it)"},
	{"zipkin-listen", ":9411", `Zipkin v2 span ingest address (POST /api/v2/spans); "" disables`},
	{"spectatord-listen", "127.0.0.1:1234", `SpectatorD line protocol over UDP; "" disables`},
	{"spectatord-socket", "", "SpectatorD line protocol over a unix datagram socket at this path"},
	// Cluster mode (cluster.go, docs/cluster.md).
	{"kafka-brokers", "", "comma-separated Kafka bootstrap brokers; empty = single node, no Kafka"},
	{"role", "all", "cluster role(s), comma-separated: ingest, store, query, or all"},
	{"node-id", "", "unique name of this node in a cluster (default: the hostname)"},
	{"kafka-topic-prefix", "sextant", "prefix of the topics Sextant creates and uses"},
	{"kafka-partitions", "64", "partitions of the metrics and spans topics when Sextant creates them"},
	{"replication-factor", "2", "store nodes that own each partition"},
	{"advertise-addr", "", "where other nodes reach this node (default: host:port of --listen)"},
}

// config is the resolved configuration of `sextant serve`.
type config struct {
	Listen          string
	OTLPHTTPListen  string
	OTLPGRPCListen  string
	DataDir         string
	Step            time.Duration
	MemoryRetention time.Duration
	Retention       time.Duration
	TraceRetention  time.Duration
	TraceMaxBytes   int64
	IngestMaxAge    time.Duration
	Fsync           wal.SyncMode
	LogLevel        slog.Level
	LiveDelay       time.Duration
	AllowedOrigins  string // comma-separated
	Alerting        alertingConfig
	AuthToken       string
	MaxSeries       int
	MaxSeriesByName int
	// QueryLimits are --max-series-per-query, --max-datapoints-per-query
	// and --max-bytes-per-query: the store's limits on one fetch, and a
	// query node's on the total over the store nodes.
	QueryLimits tsdb.Cost
	// Ingest listeners of ingest_listeners.go.
	ZipkinListen, SpectatorDListen, SpectatorDSocket string
	// Cluster mode (cluster.go).
	Cluster clusterConfig
}

// envName returns the environment variable of a setting.
func envName(flag string) string {
	return "SEXTANT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// errHelp is returned when --help was asked for; usage was printed.
var errHelp = errors.New("help requested")

// loadConfig resolves the settings from args, the environment (lookup) and
// the config file named by --config, in that order of precedence.
func loadConfig(args []string, lookupEnv func(string) (string, bool), usageOut io.Writer) (config, error) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(usageOut)
	configFile := fs.String("config", "", "YAML file with any of the settings below (keys are the flag names)")
	for _, f := range serveFlags {
		fs.String(f.name, f.def, f.usage)
	}
	fs.Usage = func() { printUsage(usageOut, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return config{}, errHelp
		}
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	if !fs.Changed("config") {
		if f, ok := lookupEnv("SEXTANT_CONFIG"); ok {
			*configFile = f
		}
	}
	v := viper.New()
	for _, f := range serveFlags {
		if err := v.BindPFlag(f.name, fs.Lookup(f.name)); err != nil {
			return config{}, err
		}
		// Explicit lookups rather than AutomaticEnv, so tests can inject the
		// environment and only known variables are read.
		if val, ok := lookupEnv(envName(f.name)); ok {
			v.Set("env."+f.name, val)
		}
	}
	if *configFile != "" {
		v.SetConfigFile(*configFile)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return config{}, fmt.Errorf("read config %s: %w", *configFile, err)
		}
		known := map[string]bool{}
		for _, f := range serveFlags {
			known[f.name] = true
		}
		for _, k := range v.AllKeys() {
			if !known[k] && !strings.HasPrefix(k, "env.") {
				return config{}, fmt.Errorf("unknown key %q in config file %s", k, *configFile)
			}
		}
	}
	get := func(name string) string {
		// Flags win over the environment, the environment over the file.
		if fs.Changed(name) {
			return fs.Lookup(name).Value.String()
		}
		if v.IsSet("env." + name) {
			return v.GetString("env." + name)
		}
		return v.GetString(name)
	}
	return resolve(get)
}

func resolve(get func(string) string) (config, error) {
	var c config
	var errs []error
	dur := func(name string) time.Duration {
		d, err := parseDuration(get(name))
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", name, err))
		}
		return d
	}
	c.Listen, c.OTLPHTTPListen, c.OTLPGRPCListen = get("listen"), get("otlp-http-listen"), get("otlp-grpc-listen")
	c.DataDir = get("data-dir")
	c.ZipkinListen, c.SpectatorDListen, c.SpectatorDSocket = get("zipkin-listen"), get("spectatord-listen"), get("spectatord-socket")
	c.Step = dur("step")
	c.MemoryRetention = dur("memory-retention")
	c.Retention = dur("retention")
	c.TraceRetention = dur("trace-retention")
	c.IngestMaxAge = dur("ingest-max-age")
	c.LiveDelay = dur("live-delay")
	c.AllowedOrigins = get("allowed-origins")
	var err error
	if c.TraceMaxBytes, err = parseSize(get("trace-max-size")); err != nil {
		errs = append(errs, fmt.Errorf("--trace-max-size: %w", err))
	}
	if b, err := parseSize(get("max-bytes-per-query")); err != nil || b <= 0 {
		errs = append(errs, fmt.Errorf("--max-bytes-per-query: %q is not a positive size such as 256MiB", get("max-bytes-per-query")))
	} else {
		c.QueryLimits.Bytes = int(b)
	}
	if c.Fsync, err = wal.ParseSyncMode(get("fsync")); err != nil {
		errs = append(errs, fmt.Errorf("--fsync: %w", err))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("log-level"))); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if c.Alerting, err = resolveAlerting(get); err != nil {
		errs = append(errs, err)
	}
	c.AuthToken = get("auth-token")
	if c.Cluster, err = resolveCluster(get); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"max-series", &c.MaxSeries}, {"max-series-per-name", &c.MaxSeriesByName},
		{"max-series-per-query", &c.QueryLimits.Series}, {"max-datapoints-per-query", &c.QueryLimits.Datapoints}} {
		n, err := strconv.Atoi(get(f.name))
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("--%s: %q is not a positive count", f.name, get(f.name)))
		}
		*f.dst = n
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("--listen: must not be empty"))
	}
	if c.LiveDelay < 0 {
		errs = append(errs, errors.New("--live-delay: must not be negative"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir: must not be empty"))
	}
	return c, errors.Join(errs...)
}

// parseSize parses a byte count with an optional binary unit: 0, 512MiB,
// 10GiB, 1TiB (KiB, MiB, GiB, TiB; also K, M, G, T and KB/MB/GB/TB as the
// same binary units).
func parseSize(s string) (int64, error) {
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.TrimSpace(s[len(num):])
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 10GiB", s)
	}
	shift := 0
	switch strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(unit, "iB"), "B")) {
	case "":
	case "K":
		shift = 10
	case "M":
		shift = 20
	case "G":
		shift = 30
	case "T":
		shift = 40
	default:
		return 0, fmt.Errorf("%q: unknown unit %q; use KiB, MiB, GiB or TiB", s, unit)
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}

// parseDuration accepts Go durations and the d (24h), w (7d) and y (365d)
// units, in any combination: 15d, 1d12h, 90s, 500ms.
func parseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		j := i
		for j < len(s) && (s[j] < '0' || s[j] > '9') && s[j] != '.' {
			j++
		}
		num, unit := s[:i], s[i:j]
		s = s[j:]
		if num == "" {
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
		var mult time.Duration
		switch unit {
		case "d":
			mult = 24 * time.Hour
		case "w":
			mult = 7 * 24 * time.Hour
		case "y":
			mult = 365 * 24 * time.Hour
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", orig)
			}
			total += d
			continue
		}
		n, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
		total += time.Duration(n * float64(mult))
	}
	return total, nil
}

func printUsage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: sextant serve [flags]\n\nRuns every part of Sextant in one process.\n\n")
	fmt.Fprintf(w, "Settings come from flags, then SEXTANT_* environment variables, then the --config file.\n\nFlags:\n")
	names := []string{"config"}
	for _, f := range serveFlags {
		names = append(names, f.name)
	}
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		f := fs.Lookup(n)
		def := ""
		if f.DefValue != "" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		env := " [env " + envName(n) + "]"
		fmt.Fprintf(w, "  --%-*s  %s%s%s\n", width, n, f.Usage, def, env)
	}
}
