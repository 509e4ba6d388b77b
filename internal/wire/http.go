package wire

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
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

// Dial opens a sync client to the server at baseURL. Requests and responses
// are gzip-compressed (sync batches repeat field names and ids heavily);
// counter, when not nil, counts the bytes on the wire.
func Dial(baseURL string, counter *Counter) (*Client, error) {
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
		connecthttp.WithCompressors(Compressors()...), connecthttp.WithSendCompression("zstd"), connecthttp.WithCompressMinBytes(1024), connecthttp.WithReadMaxBytes(64<<20))
	c := NewClient(connect.NewClient(t))
	c.close = tr.CloseIdleConnections
	return c, nil
}

type urlError string

func (e urlError) Error() string { return string(e) }

const errBadURL = urlError("want an http:// or https:// URL with a host")
