// Package load is Tessera's load tool: many simulated devices syncing with
// one server at once, with latency percentiles and an exactly-once check.
// Devices are sync engines on in-memory stores (the server under test is
// real: a surveyd given by URL, or one started here on loopback).
package load

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

// Config of a run.
type Config struct {
	Server    string // "" starts one on loopback
	Devices   int
	Records   int
	Fields    int
	PullPages int // pages each device pulls after pushing (0: all)
	PageSize  int // changes per pulled page
	Retries   int
}

// Result of a run.
type Result struct {
	Devices       int     `json:"devices"`
	Records       int     `json:"records"`
	WallSeconds   float64 `json:"wall_seconds"`
	RecordsPerSec float64 `json:"records_per_second"`
	P50MS         float64 `json:"p50_sync_ms"`
	P99MS         float64 `json:"p99_sync_ms"`
	MaxMS         float64 `json:"max_sync_ms"`
	Failures      int     `json:"failed_attempts"`
	ServerHead    uint64  `json:"server_log_head"`
	ExactlyOnce   bool    `json:"exactly_once"`
	BytesSent     int64   `json:"bytes_sent"`
	BytesReceived int64   `json:"bytes_received"`
}

// pageLimit stops a device's pull after n pages: in the field a device pulls
// only its team's records; here every device would otherwise pull every
// other device's, which measures bandwidth, not the server under load.
type pageLimit struct {
	syncengine.Remote
	n, seen int
}

func (p *pageLimit) Pull(ctx context.Context, r syncengine.PullRequest) (syncengine.Page, error) {
	page, err := p.Remote.Pull(ctx, r)
	p.seen++
	if p.n > 0 && p.seen >= p.n {
		page.More = false
	}
	return page, err
}

// Run runs one load test.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Result, error) {
	url := cfg.Server
	var srv *server.Server
	if url == "" {
		dir, err := os.MkdirTemp("", "tessera-load")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(dir)
		srv, err = server.New(ctx, server.Config{DataDir: filepath.Join(dir, "server"), Logger: log})
		if err != nil {
			return Result{}, err
		}
		defer srv.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return Result{}, err
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go srv.Serve(sctx, ln)
		url = "http://" + ln.Addr().String()
	}
	headBefore, _ := serverHead(url)

	log.Info("preparing devices", "devices", cfg.Devices, "records", cfg.Records, "fields", cfg.Fields)
	reps := make([]*syncengine.Replica, cfg.Devices)
	for i := range reps {
		st := memstore.New()
		if err := syncengine.Init(ctx, st, syncengine.NewReplicaID()); err != nil {
			return Result{}, err
		}
		r, err := syncengine.Open(ctx, st, syncengine.Options{})
		if err != nil {
			return Result{}, err
		}
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		recs := make([]syncengine.NewRecord, cfg.Records)
		for j := range recs {
			fs := make([]syncengine.FieldWrite, cfg.Fields)
			for k := range fs {
				var v syncengine.Value
				switch k % 3 {
				case 0:
					v = syncengine.IntValue(rng.Int64N(100))
				case 1:
					v = syncengine.TextValue(fmt.Sprintf("answer-%d", rng.IntN(20)))
				default:
					v = syncengine.BoolValue(rng.IntN(2) == 0)
				}
				fs[k] = syncengine.FieldWrite{Name: fmt.Sprintf("q%02d", k), Value: v}
			}
			recs[j] = syncengine.NewRecord{Form: "load@1", Fields: fs}
		}
		if _, err := r.CreateMany(ctx, recs); err != nil {
			return Result{}, err
		}
		reps[i] = r
	}

	log.Info("syncing all devices at once", "server", url)
	var counter wire.Counter
	client, err := wire.Dial(url, &counter)
	if err != nil {
		return Result{}, err
	}
	defer client.Close()
	lat := make([]time.Duration, cfg.Devices)
	var failures atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	errs := make(chan error, cfg.Devices)
	for i, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; ; attempt++ {
				t0 := time.Now()
				_, err := r.Sync(ctx, &pageLimit{Remote: client, n: cfg.PullPages}, syncengine.SyncOptions{PageLimit: cfg.PageSize})
				if err == nil {
					lat[i] = time.Since(t0)
					return
				}
				failures.Add(1)
				if attempt >= cfg.Retries {
					errs <- fmt.Errorf("device %d: %w", i, err)
					return
				}
				time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	total := cfg.Devices * cfg.Records
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res := Result{
		Devices: cfg.Devices, Records: total, WallSeconds: wall.Seconds(), RecordsPerSec: float64(total) / wall.Seconds(),
		P50MS: ms(lat[len(lat)/2]), P99MS: ms(lat[min(len(lat)-1, len(lat)*99/100)]), MaxMS: ms(lat[len(lat)-1]),
		Failures: int(failures.Load()), BytesSent: counter.Sent.Load(), BytesReceived: counter.Received.Load(),
	}
	head, err := serverHead(url)
	if err != nil {
		return res, err
	}
	res.ServerHead = head - headBefore
	res.ExactlyOnce = res.ServerHead == uint64(total)
	if srv != nil && res.ExactlyOnce {
		n := 0
		srv.Replica().Records(ctx, func(*syncengine.Record) error { n++; return nil })
		res.ExactlyOnce = n == total
	}
	if len(all) > 0 {
		return res, errors.Join(all...)
	}
	if !res.ExactlyOnce {
		return res, fmt.Errorf("the server logged %d changes for %d records: not exactly once", res.ServerHead, total)
	}
	return res, nil
}

func serverHead(url string) (uint64, error) {
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var h struct {
		Head uint64 `json:"head"`
	}
	return h.Head, json.NewDecoder(resp.Body).Decode(&h)
}

// Main is the tessera-load command line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tessera-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{}
	fs.StringVar(&cfg.Server, "server", "", "server URL; empty starts a surveyd on loopback with Badger in a temporary directory")
	fs.IntVar(&cfg.Devices, "devices", 500, "simulated devices syncing at once")
	fs.IntVar(&cfg.Records, "records", 200, "records each device pushes")
	fs.IntVar(&cfg.Fields, "fields", 22, "fields per record")
	fs.IntVar(&cfg.PullPages, "pull-pages", 1, "pages each device pulls after pushing (0: everything)")
	fs.IntVar(&cfg.PageSize, "page-size", 100, "changes per pulled page")
	fs.IntVar(&cfg.Retries, "retries", 5, "attempts a device makes after a failed sync")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "tessera-load: many simulated devices sync with one server at once; reports throughput, sync latency percentiles and checks every record arrived exactly once.\n\nUsage: tessera-load [flags]\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if cfg.Devices < 1 || cfg.Records < 1 || cfg.Fields < 1 {
		return errors.New("--devices, --records and --fields must be at least 1")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	res, err := Run(ctx, cfg, log)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		fmt.Fprintf(stdout, "%d devices x %d records = %d records in %.2f s: %.0f records/s\n", cfg.Devices, cfg.Records, res.Records, res.WallSeconds, res.RecordsPerSec)
		fmt.Fprintf(stdout, "sync latency: p50 %.0f ms, p99 %.0f ms, max %.0f ms; %d failed attempts retried\n", res.P50MS, res.P99MS, res.MaxMS, res.Failures)
		fmt.Fprintf(stdout, "server logged %d changes: exactly once = %v; %.1f MiB sent, %.1f MiB received\n", res.ServerHead, res.ExactlyOnce,
			float64(res.BytesSent)/(1<<20), float64(res.BytesReceived)/(1<<20))
	}
	return err
}
