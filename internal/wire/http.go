package wire

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/tessera-survey/tessera/auth"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
)

// Counter counts bytes that crossed the network, both ways, as seen at the
// TCP connection (headers, framing and compression included).
type Counter struct{ Sent, Received atomic.Int64 }

type countingConn struct {
	net.Conn
	c *Counter
}

func (cc countingConn) Read(b []byte) (int, error) {
	n, err := cc.Conn.Read(b)
	cc.c.Received.Add(int64(n))
	return n, err
}

func (cc countingConn) Write(b []byte) (int, error) {
	n, err := cc.Conn.Write(b)
	cc.c.Sent.Add(int64(n))
	return n, err
}

// Option configures Dial.
type Option func(*dialOptions)

type dialOptions struct{ authorization string }

// WithAuthorization sends an Authorization header on every call: "Bearer
// SESSION" for a person, "Device ID:SECRET" for an enrolled device.
func WithAuthorization(h string) Option { return func(o *dialOptions) { o.authorization = h } }

func authInterceptor(h string) connect.ClientInterceptor {
	return func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok {
				info.RequestHeader().Set("Authorization", h)
			}
			return next(ctx, spec)
		}
	}
}

// Dial opens a client to the server at baseURL. Requests and responses are
// compressed (zstd, or gzip with peers that lack it); counter, when not nil,
// counts the bytes on the wire.
func Dial(baseURL string, counter *Counter, opts ...Option) (*Client, error) {
	var o dialOptions
	for _, opt := range opts {
		opt(&o)
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &url.Error{Op: "parse", URL: baseURL, Err: errBadURL}
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,   // up to 16 file chunks at once
		DisableCompression:    true, // Connect compresses messages itself
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil || counter == nil {
				return c, err
			}
			return countingConn{c, counter}, nil
		},
	}
	hc := &http.Client{Transport: tr}
	t := connecthttp.NewTransport(hc, strings.TrimRight(baseURL, "/"),
		connecthttp.WithCompressors(ClientCompressors()...), connecthttp.WithSendCompression("zstd"), connecthttp.WithCompressMinBytes(1024), connecthttp.WithReadMaxBytes(64<<20))
	var icpts []connect.ClientInterceptor
	if o.authorization != "" {
		icpts = append(icpts, authInterceptor(o.authorization))
	}
	cc := connect.NewClient(t, icpts...)
	c := NewClient(cc)
	c.auth = tesserav1connect.NewAuthServiceClient(cc)
	c.admin = tesserav1connect.NewAdminServiceClient(cc)
	c.export = tesserav1connect.NewExportServiceClient(cc)
	c.review = tesserav1connect.NewReviewServiceClient(cc)
	// File chunks are photos and videos: compressed already, so sent as
	// they are (zstd over them cost the sender a seventh of its CPU).
	tm := connecthttp.NewTransport(hc, strings.TrimRight(baseURL, "/"),
		connecthttp.WithCompressors(Compressors()...), connecthttp.WithReadMaxBytes(64<<20))
	c.media = tesserav1connect.NewMediaServiceClient(connect.NewClient(tm, icpts...))
	c.close = tr.CloseIdleConnections
	return c, nil
}

type urlError string

func (e urlError) Error() string { return string(e) }

const errBadURL = urlError("want an http:// or https:// URL with a host")

// Enroll exchanges a single-use code at serverURL for a credential: it
// makes a fresh key pair and proves holding it by signing the code (a
// device's first start, a hub's). The private key is returned to keep.
func Enroll(ctx context.Context, serverURL, code string) (*tesserav1.EnrollResponse, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	c, err := Dial(serverURL, nil)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	norm := auth.NormalizeCode(code)
	res, err := c.Auth().Enroll(ctx, &tesserav1.EnrollRequest{Code: norm, PublicKey: pub, Signature: ed25519.Sign(priv, []byte(norm))})
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: %w", err)
	}
	return res, priv, nil
}
