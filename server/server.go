// Package server is Tessera's central (or camp-office hub) service: the sync
// API over Connect, gRPC and gRPC-Web on HTTP/1.1 and h2c, server reflection
// and a health endpoint, over a replica kept in Badger by default. Started
// with an upstream, it is also a client of the central server and relays
// between its devices and it with the same protocol.
package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/grpcreflect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/bundle"
	"github.com/tessera-survey/tessera/forms"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/survey"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"
)

// Config configures a Server.
type Config struct {
	// DataDir holds the Badger store (ignored when Store is set).
	DataDir string
	// Store, when set, is used instead of opening Badger in DataDir.
	Store syncengine.Store
	// EncryptionKey opens an encrypted Badger store in DataDir (StoreKey
	// derives it from the passphrase); nil for a plain one.
	EncryptionKey []byte
	// Upstream is the URL of the server this one relays to (a hub), or "".
	Upstream string
	// UpstreamEnroll is a hub code from the upstream (surveyctl hub code):
	// on its first start the hub enrolls with it and keeps the credential.
	UpstreamEnroll string
	// UpstreamInterval is how often a hub syncs with its upstream even
	// when no device pushed (default 15s).
	UpstreamInterval time.Duration
	Logger           *slog.Logger
	// RateLimit is the requests per second each signed-in caller may make
	// (bursts of five times as many); 0 means 20. Negative disables it.
	RateLimit float64
	// RequireAuth refuses anonymous callers everywhere. When false the
	// server is open: sync and forms need no sign-in (a developer's
	// loopback server); surveyd turns it on for any non-loopback address.
	RequireAuth bool
	// SecureCookies marks the console's cookies Secure even over plain
	// HTTP: a proxy in front terminates TLS (--behind-tls-proxy).
	SecureCookies bool
	// Clock overrides the wall clock (tests).
	Clock func() time.Time
	// MediaMaxBytes bounds one file an answer names (0: 1 GiB).
	MediaMaxBytes int64
}

// Server is a running Tessera server: wiring of the use cases (package
// survey) to their transports.
type Server struct {
	// orHashes caches each form version's md5 as OpenRosa serves it (a
	// version's XForm never changes; Collect rebuilds its list often).
	orHashes sync.Map // key → hex md5
	cfg      Config
	log      *slog.Logger
	store    syncengine.Store
	svc      *survey.Service
	rep      *syncengine.Replica
	forms    *forms.Registry
	auth     *auth.Service
	handler  http.Handler

	limiter *limiter
	relay   *survey.Relay // a hub's link to its upstream, or nil
	hubPoke chan struct{}
	hubDone chan struct{}
	cancel  context.CancelFunc
}

// HubStatus reports a hub's last sync with its upstream.
type HubStatus = survey.HubStatus

// MaxRequestBytes bounds one request body: a form file is at most 32 MiB
// (each procedure bounds its own message further; a sync batch 4 MiB).
const MaxRequestBytes = forms.MaxXLSXBytes + 1<<20

// New opens the server's store (creating and initializing it on first
// start) and builds its HTTP handler. Call Close when done.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UpstreamInterval <= 0 {
		cfg.UpstreamInterval = 15 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: cfg.Store}
	if s.store == nil {
		// The store holds every answer: its folder is the owner's alone
		// (Badger's files inside inherit the umask).
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		if k, err := readKeyFile(cfg.DataDir); err != nil || (k != nil && cfg.EncryptionKey == nil) {
			return nil, fmt.Errorf("server: %w", cmp.Or(err, ErrNoPassphrase))
		}
		st, err := badgerstore.Open(badgerstore.Options{Dir: cfg.DataDir, Profile: badgerstore.Server, Logger: cfg.Logger,
			EncryptionKey: cfg.EncryptionKey})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.store = st
	}
	svc, err := survey.New(ctx, s.store, survey.Config{Open: !cfg.RequireAuth, Clock: cfg.Clock, Logger: cfg.Logger, Changed: s.pokeHub,
		MediaMaxBytes: cfg.MediaMaxBytes})
	if err != nil {
		s.store.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	s.svc, s.rep, s.forms, s.auth = svc, svc.Replica(), svc.Forms(), svc.Auth()
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 20
	}
	if cfg.RateLimit > 0 {
		s.limiter = newLimiter(cfg.RateLimit, 5*cfg.RateLimit)
	}
	token, err := s.auth.Bootstrap(ctx)
	if err != nil {
		s.svc.Close()
		s.store.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	if token != "" {
		s.announceSetupToken(token)
	}
	s.handler = http.MaxBytesHandler(s.mux(), MaxRequestBytes)
	if !cfg.RequireAuth {
		s.handler = loopbackHostOnly(s.handler)
	}
	if cfg.Upstream != "" {
		if err := s.startHub(); err != nil {
			s.svc.Close()
			s.store.Close()
			return nil, err
		}
	}
	return s, nil
}

// mux routes the Connect services, the health check and the console.
func (s *Server) mux() *http.ServeMux {
	cs := connect.NewServer(recoverInterceptor(s.log), s.authInterceptor)
	tesserav1connect.RegisterSyncServiceHandler(cs, &syncService{s: s})
	tesserav1connect.RegisterFormServiceHandler(cs, &formService{s: s})
	tesserav1connect.RegisterAuthServiceHandler(cs, &authService{s: s})
	tesserav1connect.RegisterAdminServiceHandler(cs, &adminService{s: s})
	tesserav1connect.RegisterExportServiceHandler(cs, &exportService{s: s})
	tesserav1connect.RegisterReviewServiceHandler(cs, &reviewService{s: s})
	tesserav1connect.RegisterMediaServiceHandler(cs, &mediaService{s: s})
	grpcreflect.Register(cs)
	mux := http.NewServeMux()
	connecthttp.Mount(mux, cs, connecthttp.WithConditionalOptions(func(spec connect.Spec) []connecthttp.Option {
		if spec.Procedure == tesserav1connect.FormServicePublishFormProcedure {
			return []connecthttp.Option{connecthttp.WithReadMaxBytes(forms.MaxXLSXBytes + 1024)}
		}
		if spec.Procedure == tesserav1connect.SyncServiceImportBundleProcedure || spec.Procedure == tesserav1connect.SyncServiceImportUpstreamReplyProcedure {
			return []connecthttp.Option{connecthttp.WithReadMaxBytes(bundle.MaxSize + 4096)}
		}
		if spec.Procedure == tesserav1connect.MediaServicePutChunkProcedure {
			return []connecthttp.Option{connecthttp.WithReadMaxBytes(media.ChunkSize + 4096)}
		}
		if spec.Procedure == tesserav1connect.MediaServiceGetMediaProcedure {
			// Photos, recordings and videos are compressed already:
			// zstd over them costs the server a core for nothing.
			return []connecthttp.Option{connecthttp.WithReadMaxBytes(syncengine.MaxBatchBytes), connecthttp.WithCompressMinBytes(math.MaxInt)}
		}
		if spec.Procedure == tesserav1connect.ExportServiceExportProcedure {
			return []connecthttp.Option{connecthttp.WithReadMaxBytes(syncengine.MaxBatchBytes), connecthttp.WithCompressors(wire.BulkCompressors()...)}
		}
		return []connecthttp.Option{connecthttp.WithReadMaxBytes(syncengine.MaxBatchBytes)}
	}),
		connecthttp.WithCompressors(wire.Compressors()...), connecthttp.WithCompressMinBytes(1024))
	mux.HandleFunc("GET /healthz", s.health)
	s.mountConsole(mux)
	s.mountOpenRosa(mux)
	return mux
}

// loopbackHostOnly guards an open server (no sign-in: a developer's
// loopback server) against DNS rebinding: a web page whose name resolves
// to 127.0.0.1 reaches the server with its own Host header, and would read
// every answer. Only loopback names are served.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ip := net.ParseIP(strings.Trim(host, "[]"))
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "this server runs without sign-in and answers to loopback names only (localhost, 127.0.0.1); start it with --require-auth to serve other names", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SetupTokenFile is where the first start writes the admin's one-time setup
// token (readable by the owner only), beside the data.
const SetupTokenFile = "setup-token"

func (s *Server) announceSetupToken(token string) {
	const command = "surveyctl --server URL login --setup-token TOKEN"
	if s.cfg.DataDir != "" {
		path := filepath.Join(s.cfg.DataDir, SetupTokenFile)
		err := os.MkdirAll(s.cfg.DataDir, 0o700)
		if err == nil {
			err = os.WriteFile(path, []byte(token+"\n"), 0o600)
		}
		if err == nil {
			// Not in the log: logs are collected and kept where a token
			// (good for a day, until used) has no business.
			s.log.Warn("first start: an admin account was created; set its password with the one-time setup token in the file named here",
				"file", path, "valid_for", auth.SetupTokenTTL, "command", command)
			return
		}
		s.log.Warn("the setup token could not be written beside the data", "file", path, "err", err)
	}
	s.log.Warn("first start: an admin account was created; set its password with this one-time setup token",
		"setup_token", token, "valid_for", auth.SetupTokenTTL, "command", command)
}

// Service returns the server's use cases (tests and tools).
func (s *Server) Service() *survey.Service { return s.svc }

// Forms returns the server's form registry (tests and tools).
func (s *Server) Forms() *forms.Registry { return s.forms }

// Auth returns the server's accounts and devices (tests and tools).
func (s *Server) Auth() *auth.Service { return s.auth }

// Check validates one record now (tests and tools).
func (s *Server) Check(ctx context.Context, id syncengine.RecordID) error {
	return s.svc.Check(ctx, id)
}

// Replica returns the server's replica (tests and tools).
func (s *Server) Replica() *syncengine.Replica { return s.rep }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves HTTP/1.1 and h2c on ln until ctx is done, then shuts down
// gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP2(true) // over TLS, when surveyd serves HTTPS
	hs := &http.Server{
		Handler:           s.handler,
		Protocols:         p,
		ReadHeaderTimeout: 10 * time.Second,
		// A 4 MiB batch over a 64 kbit/s link takes under 10 minutes.
		ReadTimeout:  10 * time.Minute,
		WriteTimeout: 10 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	}
}

// Close stops the hub loop and the checker and closes the store.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
		<-s.hubDone
	}
	s.svc.Close()
	return s.store.Close()
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	var head uint64
	err := s.store.View(r.Context(), func(tx syncengine.ReadTx) (err error) { head, err = tx.Head(); return })
	w.Header().Set("Content-Type", "application/json")
	body := map[string]any{"status": "ok", "replica": s.rep.ID().String(), "head": head, "time": s.rep.Now().UTC()}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		body = map[string]any{"status": "unavailable"}
		s.log.Error("health check", "err", err)
	}
	if s.relay != nil {
		body["upstream"] = map[string]any{"url": s.cfg.Upstream, "status": s.relay.Status()}
	}
	_ = json.NewEncoder(w).Encode(body)
}

type syncService struct{ s *Server }

func (h *syncService) Push(ctx context.Context, req *tesserav1.PushRequest) (*tesserav1.PushResponse, error) {
	p, err := wire.PushFrom(req)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "Push", err)
	}
	given, err := wire.ScopesFrom(req.Scopes)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "Push", err)
	}
	res, err := h.s.svc.Push(ctx, principal(ctx), p, fromWire(given))
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "Push", err)
	}
	return wire.PushResultTo(res), nil
}

func (h *syncService) Pull(ctx context.Context, req *tesserav1.PullRequest) (*tesserav1.PullResponse, error) {
	r, err := wire.PullFrom(req)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "Pull", err)
	}
	page, scopes, err := h.s.svc.Pull(ctx, principal(ctx), r, req.DeviceTime)
	if err != nil {
		return nil, toConnect(ctx, h.s.log, "Pull", err)
	}
	if !req.Erasures {
		wire.ErasuresAsDeletes(&page)
	}
	res := wire.PageTo(page, req.Columnar)
	res.Scopes = wire.ScopesTo(toWire(scopes))
	return res, nil
}

func recoverInterceptor(log *slog.Logger) connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.ErrorContext(ctx, "panic in handler", "procedure", spec.Procedure, "panic", r)
					err = connect.NewError(connect.CodeInternal, "internal error")
				}
			}()
			return next(ctx, spec, stream)
		}
	}
}
