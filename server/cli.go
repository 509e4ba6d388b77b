package server

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/internal/cliutil"
	"github.com/tessera-survey/tessera/survey"
	"github.com/tessera-survey/tessera/syncengine/pgstore"
)

const usage = `surveyd: the Tessera server (central, or a camp-office hub).

Usage:
  surveyd [--data DIR] [--listen HOST:PORT] [--upstream URL] [flags]

It serves the sync API over Connect, gRPC and gRPC-Web (HTTP/1.1 and h2c),
gRPC server reflection (grpcurl, buf curl) and GET /healthz. Data is kept
in an embedded Badger store in --data, created on first start.

With --upstream it is a hub: a server to its devices and a client of the
upstream server, relaying both ways with the same protocol. Against an
upstream that requires sign-in, enroll the hub on its first start with a
code from "surveyctl hub code --project P": --enroll CODE; the hub keeps its
credential and relays only records of that project (and team).

The console for project leads is at /console. On first start an account
"admin" is created with a one-time setup token (in DIR/setup-token, or in
the log when it cannot be written there) that sets its password within 24
hours: surveyctl login --setup-token T. "surveyd --data DIR admin token"
mints a new one and revokes the earlier ones.

Encryption at rest: --encrypt keeps a new store encrypted (Badger's AES
encryption, the key derived with argon2id from a passphrase that is never
written down); a hub's store is encrypted by default. The passphrase comes
from --passphrase-file, else TESSERA_STORE_PASSPHRASE, else the terminal,
and is needed at every start. Backups: "surveyd --data DIR backup FILE"
(stopped server; sealed under the passphrase when the store is encrypted)
and "surveyd --data NEWDIR [--encrypt] restore FILE".

Memory: Badger's caches are small (16 MiB of blocks); the Go runtime's
GOMEMLIMIT and GOGC apply. A lower GOGC keeps the heap closer to its live
size (an export of 1M records: 180 MiB of growth at the default, 112 at 50)
at some cost to sync (docs/benchmarks.md).

Profiling (developers): TESSERA_CPUPROFILE=FILE and TESSERA_MEMPROFILE=FILE
write the server's CPU and allocation profiles when it stops.

Flags:
`

// Main runs surveyd with the given arguments until ctx is done. It is long
// on purpose: the flags, each documented where it is declared, then their
// checks in order.
func Main(ctx context.Context, args []string, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("surveyd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "directory of the server's store (created if missing)")
	storeURL := fs.String("store", "", "keep data in PostgreSQL instead of Badger: a postgres:// URL (several surveyd may share one database)")
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on, HOST:PORT")
	upstream := fs.String("upstream", "", "URL of the upstream server; makes this server a hub")
	enroll := fs.String("enroll", "", "with --upstream: a hub code from the upstream (surveyctl hub code) to enroll with on the first start")
	interval := fs.Duration("upstream-interval", 15*time.Second, "how often a hub syncs with its upstream when idle")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	requireAuth := fs.Bool("require-auth", false, "require sign-in or an enrolled device for every call (always on for a non-loopback --listen)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM); with --tls-key serves HTTPS")
	tlsKey := fs.String("tls-key", "", "TLS private key file (PEM)")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "on SIGTERM or Ctrl-C, how long to wait for the store to be saved (after open requests end) before exiting with an error")
	insecure := fs.Bool("insecure", false, "allow plain HTTP on a non-loopback address (data about people crosses the network unencrypted)")
	mediaMax := fs.Int64("media-max-mb", survey.DefaultMediaMaxBytes>>20, "the largest file (photo, audio, video) an answer may name, in MiB: devices are told before they send any of a larger one")
	encrypt := fs.Bool("encrypt", false, "keep a new Badger store encrypted at rest with a key from a passphrase (--passphrase-file, else TESSERA_STORE_PASSPHRASE, else asked at the terminal); the default for a hub (--upstream). An encrypted store always needs its passphrase")
	passFile := fs.String("passphrase-file", "", "read the store's passphrase from this file's first line")
	behindTLS := fs.Bool("behind-tls-proxy", false, "a proxy in front terminates TLS: the console's cookies are marked Secure (sent over HTTPS only) although surveyd itself speaks plain HTTP")
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() > 0 {
		switch fs.Arg(0) {
		case "admin":
			return adminCommand(ctx, *data, passphrase(*passFile, stderr), fs.Args()[1:], stderr)
		case "backup", "restore":
			return storeCommand(*data, fs.Arg(0), fs.Args()[1:], *passFile, *encrypt, os.Stdout, stderr)
		}
		return fmt.Errorf("unexpected argument %q (see surveyd --help)", fs.Arg(0))
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	loopback := isLoopback(*listen)
	if !loopback && *tlsCert == "" && !*insecure {
		return fmt.Errorf("refusing plain HTTP on %s, which is not a loopback address: give --tls-cert and --tls-key, or --insecure", *listen)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	if *enroll != "" && *upstream == "" {
		return fmt.Errorf("--enroll goes with --upstream")
	}
	var key []byte
	if *storeURL == "" {
		// A hub is a laptop in a camp office: its store is encrypted unless
		// told otherwise (an older hub's plain store stays readable).
		want := *encrypt
		if !set["encrypt"] && *upstream != "" {
			want = !hasStore(*data)
		}
		var err error
		if key, err = StoreKey(*data, want, passphrase(*passFile, stderr)); err != nil {
			if errors.Is(err, ErrNoPassphrase) && !set["encrypt"] && want {
				err = fmt.Errorf("%w; a hub's store is encrypted by default (--encrypt=false keeps it plain)", err)
			}
			return err
		}
	} else if *encrypt {
		return fmt.Errorf("--encrypt is for the embedded Badger store; encrypt PostgreSQL's storage where it runs")
	}
	cfg := Config{DataDir: *data, EncryptionKey: key, Upstream: *upstream, UpstreamEnroll: *enroll, UpstreamInterval: *interval, Logger: log, RequireAuth: *requireAuth || !loopback,
		SecureCookies: *behindTLS, MediaMaxBytes: *mediaMax << 20}
	if *mediaMax <= 0 {
		return fmt.Errorf("--media-max-mb: want a positive size")
	}
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
	stopProfile, err := cliutil.Profile()
	if err != nil {
		return err
	}
	defer func() {
		if perr := stopProfile(); err == nil {
			err = perr
		}
	}()
	srv, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeWithin(srv.Close, *shutdown); err == nil {
			err = cerr
		}
	}()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	where := []any{"data", *data, "encrypted", key != nil}
	if *storeURL != "" {
		where = []any{"store", "postgres"}
	}
	scheme := "http://"
	if *tlsCert != "" {
		scheme = "https://"
	}
	attrs := append([]any{"url", scheme + hostPort(ln.Addr())}, where...)
	attrs = append(attrs, "auth", map[bool]string{true: "required", false: "open (loopback)"}[cfg.RequireAuth])
	attrs = append(attrs, "replica", srv.Replica().ID())
	if *upstream != "" {
		attrs = append(attrs, "upstream", *upstream)
	}
	log.Info("tessera server listening", attrs...)
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	}
	return srv.Serve(ctx, ln)
}

// ErrShutdownTimeout: the store could not be closed in time (a Badger store
// whose folder was removed or whose disk failed retries its last flush
// forever). Every write surveyd acknowledged was synced when it was made,
// so exiting then loses nothing a device was told is stored.
var ErrShutdownTimeout = errors.New("the store was not closed in time; acknowledged writes were already synced")

// closeWithin runs closeFn and gives up after d.
func closeWithin(closeFn func() error, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- closeFn() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("closing the store: %w", err)
		}
		return nil
	case <-time.After(d):
		return fmt.Errorf("shutdown after %s: %w", d, ErrShutdownTimeout)
	}
}

// isLoopback reports whether a listen address only accepts local callers.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

const adminUsage = `Usage: surveyd [--data DIR] admin token [--user NAME]

Mints a one-time setup token that sets the user's password (default admin),
for when the first one was lost. Run it on the server machine; with the
embedded store, stop surveyd first.
`

func adminCommand(ctx context.Context, data string, pass func(bool) (string, error), args []string, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "token" {
		fmt.Fprint(stderr, adminUsage)
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errors.New("admin: the subcommand is token")
	}
	fs := flag.NewFlagSet("admin token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "admin", "whose password the token sets")
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	key, err := StoreKey(data, false, pass)
	if err != nil {
		return err
	}
	srv, err := New(ctx, Config{DataDir: data, EncryptionKey: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer srv.Close()
	token, err := srv.Auth().NewSetupToken(ctx, *user)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "setup token for", *user+":")
	fmt.Println(token)
	return nil
}

func hostPort(a net.Addr) string {
	s := a.String()
	if strings.HasPrefix(s, "[::]:") {
		return "localhost:" + strings.TrimPrefix(s, "[::]:")
	}
	return s
}
