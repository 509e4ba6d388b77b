package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/syncengine/pgstore"
)

const usage = `surveyd: the Tessera server (central, or a camp-office hub).

Usage:
  surveyd [--data DIR] [--listen HOST:PORT] [--upstream URL] [flags]

It serves the sync API over Connect, gRPC and gRPC-Web (HTTP/1.1 and h2c),
gRPC server reflection (grpcurl, buf curl) and GET /healthz. Data is kept
in an embedded Badger store in --data, created on first start.

With --upstream it is a hub: a server to its devices and a client of the
upstream server, relaying both ways with the same protocol.

Flags:
`

// Main runs surveyd with the given arguments until ctx is done.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("surveyd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "directory of the server's store (created if missing)")
	storeURL := fs.String("store", "", "keep data in PostgreSQL instead of Badger: a postgres:// URL (several surveyd may share one database)")
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on, HOST:PORT")
	upstream := fs.String("upstream", "", "URL of the upstream server; makes this server a hub")
	interval := fs.Duration("upstream-interval", 15*time.Second, "how often a hub syncs with its upstream when idle")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see surveyd --help)", fs.Arg(0))
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	cfg := Config{DataDir: *data, Upstream: *upstream, UpstreamInterval: *interval, Logger: log}
	if *storeURL != "" {
		if !strings.HasPrefix(*storeURL, "postgres://") && !strings.HasPrefix(*storeURL, "postgresql://") {
			return fmt.Errorf("--store: want a postgres:// URL")
		}
		st, err := pgstore.Open(ctx, *storeURL, "")
		if err != nil {
			return err
		}
		cfg.Store = st
	}
	srv, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	where := []any{"data", *data}
	if *storeURL != "" {
		where = []any{"store", "postgres"}
	}
	attrs := append([]any{"url", "http://" + hostPort(ln.Addr())}, where...)
	attrs = append(attrs, "replica", srv.Replica().ID())
	if *upstream != "" {
		attrs = append(attrs, "upstream", *upstream)
	}
	log.Info("tessera server listening", attrs...)
	return srv.Serve(ctx, ln)
}

func hostPort(a net.Addr) string {
	s := a.String()
	if strings.HasPrefix(s, "[::]:") {
		return "localhost:" + strings.TrimPrefix(s, "[::]:")
	}
	return s
}
