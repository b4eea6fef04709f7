package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// SpectatorDOptions configure the SpectatorD listeners.
type SpectatorDOptions struct {
	// UDPAddr is the UDP address to listen on ("" for none).
	UDPAddr string
	// SocketPath is the unix datagram socket to listen on ("" for none).
	// A stale socket file at the path is replaced.
	SocketPath string
	// MaxGauges bounds the gauges and age gauges kept between steps;
	// default 100 000.
	MaxGauges int
	// Tick is how often Run looks for closed steps; default one second.
	Tick time.Duration
}

// SpectatorD accepts SpectatorD's line protocol over UDP, a unix datagram
// socket and HTTP (Register), and reports gauges and age gauges every step.
// Create it with NewSpectatorD; Run serves until its context ends; Close
// releases the sockets.
type SpectatorD struct {
	h    *Handler
	opts SpectatorDOptions
	udp  net.PacketConn
	unix net.PacketConn

	mu struct {
		sync.Mutex
		meters sdMeters
		last   int64 // the last step boundary ticked
	}
	closeOnce sync.Once
}

// protoSpectatorD is the protocol tag of SpectatorD's self-metrics.
const protoSpectatorD = "spectatord"

// NewSpectatorD binds the configured sockets.
func NewSpectatorD(h *Handler, opts SpectatorDOptions) (*SpectatorD, error) {
	if opts.MaxGauges <= 0 {
		opts.MaxGauges = 100_000
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	s := &SpectatorD{h: h, opts: opts}
	s.mu.meters = sdMeters{policy: h.opts.Tags, step: h.opts.Step, gauges: map[string]*sdGauge{}, maxGauges: opts.MaxGauges}
	var err error
	if opts.UDPAddr != "" {
		if s.udp, err = net.ListenPacket("udp", opts.UDPAddr); err != nil {
			return nil, fmt.Errorf("listen on %s for spectatord: %w", opts.UDPAddr, err)
		}
	}
	if opts.SocketPath != "" {
		if fi, err := os.Lstat(opts.SocketPath); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(opts.SocketPath)
		}
		if s.unix, err = net.ListenPacket("unixgram", opts.SocketPath); err != nil {
			s.Close()
			return nil, fmt.Errorf("listen on unix socket %s for spectatord: %w", opts.SocketPath, err)
		}
	}
	return s, nil
}

// UDPAddr returns the bound UDP address, or nil.
func (s *SpectatorD) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// Register adds POST /api/v1/spectatord: one line per measurement; 200, or
// 400 naming the bad lines (and then nothing of the request is stored, so
// that a client may fix and resend it).
func (s *SpectatorD) Register(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/spectatord", s.h.guard(protoSpectatorD, http.HandlerFunc(s.serveHTTP)))
}

func (s *SpectatorD) serveHTTP(w http.ResponseWriter, r *http.Request) {
	req := s.h.pool.Get().(*publishRequest)
	defer s.h.pool.Put(req)
	if _, err := s.h.readBody(w, r, &req.body); err != nil {
		writeError(w, r, err)
		return
	}
	pts, bad := s.parse(req.body.Bytes(), true)
	if bad.count > 0 {
		writeJSON(w, http.StatusBadRequest, &publishResponse{Type: "error", ErrorCount: bad.count, Message: bad.messages})
		return
	}
	if err := s.write(r.Context(), pts); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Run reads the sockets and reports gauges when steps close, until ctx
// ends; then it closes the sockets.
func (s *SpectatorD) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, c := range []net.PacketConn{s.udp, s.unix} {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); s.read(ctx, c) }()
		}
	}
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Close()
			wg.Wait()
			return nil
		case <-t.C:
			s.tick(ctx)
		}
	}
}

// Close closes the sockets (Run also does when it ends).
func (s *SpectatorD) Close() error {
	var err error
	s.closeOnce.Do(func() {
		for _, c := range []net.PacketConn{s.udp, s.unix} {
			if c != nil {
				err = errors.Join(err, c.Close())
			}
		}
		if s.unix != nil {
			os.Remove(s.opts.SocketPath)
		}
	})
	return err
}

// read handles the datagrams of c, one or more lines each, until c closes.
func (s *SpectatorD) read(ctx context.Context, c net.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			s.h.opts.Logger.Warn("spectatord read", "err", err)
			continue
		}
		pts, _ := s.parse(buf[:n], false)
		if err := s.write(ctx, pts); err != nil {
			s.h.opts.Logger.Warn("spectatord write", "err", err)
		}
	}
}

// parse turns the lines of b into datapoints; bad lines are counted and,
// for the first few, named.
func (s *SpectatorD) parse(b []byte, strict bool) ([]tsdb.Datapoint, rejections) {
	var pts []tsdb.Datapoint
	var bad rejections
	now := s.h.opts.Now()
	cut := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		l, ts, err := parseSDLine(line, nil)
		if err == nil {
			ts = append(ts, tags.Tag{Key: tags.NameKey, Value: l.name})
			for i := range ts {
				var c bool
				if ts[i].Value, c = s.mu.meters.policy.value(ts[i].Value); c {
					cut++
				}
			}
			set := tags.Set(ts).Normalize()
			if reason, msg := s.mu.meters.policy.check(set); reason != "" {
				err = errors.New(msg)
			} else if len(set) != len(ts) {
				err = errors.New("duplicate tag key")
			} else {
				pts, err = s.mu.meters.add(pts, l, set, now)
			}
		}
		if err != nil {
			s.h.reject(protoSpectatorD, "InvalidLine", 1)
			bad.add(func() string { return fmt.Sprintf("line %d: %v: %.200q", n, err, line) })
		}
	}
	s.h.countCut(protoSpectatorD, cut)
	if strict && bad.count > 0 {
		return nil, bad
	}
	return pts, bad
}

// write appends pts to the store and counts what it rejects.
func (s *SpectatorD) write(ctx context.Context, pts []tsdb.Datapoint) error {
	if len(pts) == 0 {
		return nil
	}
	b := tsdb.Batch{Points: pts}
	if err := s.h.opts.Appender.Append(ctx, &b); err != nil {
		return err
	}
	for _, rj := range b.Rejected {
		s.h.reject(protoSpectatorD, rj.Reason.String(), 1)
	}
	s.h.accepted(protoSpectatorD, len(pts)-len(b.Rejected))
	return nil
}

// tick writes gauges for every step that closed since the last tick.
func (s *SpectatorD) tick(ctx context.Context) {
	now := s.h.opts.Now()
	step := s.h.opts.Step
	closed := now - now%step // the newest closed step boundary
	var pts []tsdb.Datapoint
	s.mu.Lock()
	if s.mu.last == 0 {
		s.mu.last = closed - step
	}
	for b := max(s.mu.last+step, closed-10*step); b <= closed; b += step {
		pts = s.mu.meters.tick(pts, b)
	}
	s.mu.last = closed
	s.mu.Unlock()
	if err := s.write(ctx, pts); err != nil {
		s.h.opts.Logger.Warn("spectatord gauges", "err", err)
	}
}
