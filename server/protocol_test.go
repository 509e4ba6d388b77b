package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/grpcreflect/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"strconv"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/gen/tessera/v1/tesserav1connect"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
)

func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p, TLSClientConfig: &tls.Config{}}}
}

func client(url string, hc *http.Client, opts ...connecthttp.Option) tesserav1connect.SyncServiceClient {
	return tesserav1connect.NewSyncServiceClient(connect.NewClient(connecthttp.NewTransport(hc, url, opts...)))
}

func goodChange(replica syncengine.ReplicaID, counter uint64) *tesserav1.Change {
	c := syncengine.Change{
		Record: syncengine.NewRecordID(), Form: "household", Dot: syncengine.Dot{Replica: replica, Counter: counter},
		HLC: syncengine.MakeHLC(time.Now().UnixMilli(), 0), Fields: []syncengine.FieldWrite{{Name: "q1", Value: syncengine.IntValue(int64(counter))}},
	}
	return wire.ChangeTo(&c)
}

// TestProtocols: the same service answers Connect (binary and JSON), gRPC
// over h2c and gRPC-Web, lists itself through reflection and has a health
// endpoint.
func TestProtocols(t *testing.T) {
	srv := startServer(t, server.Config{})
	dev := syncengine.NewReplicaID()
	ctx := context.Background()
	cases := []struct {
		name string
		hc   *http.Client
		opts []connecthttp.Option
	}{
		{"connect", http.DefaultClient, nil},
		{"connect-json", http.DefaultClient, []connecthttp.Option{connecthttp.WithProtoJSON()}},
		{"grpc-h2c", h2cClient(), []connecthttp.Option{connecthttp.WithGRPC()}},
		{"grpc-web", http.DefaultClient, []connecthttp.Option{connecthttp.WithGRPCWeb()}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := client(srv.URL, tc.hc, tc.opts...)
			res, err := c.Push(ctx, &tesserav1.PushRequest{Replica: dev[:], After: uint64(i), Through: uint64(i + 1),
				Changes: []*tesserav1.Change{goodChange(dev, uint64(i+1))}})
			if err != nil || res.Acknowledged != uint64(i+1) || res.Applied != 1 || res.ServerTime == 0 {
				t.Fatalf("push: %v %v", res, err)
			}
			page, err := c.Pull(ctx, &tesserav1.PullRequest{Replica: make16(9)})
			if err != nil || len(page.Changes) != i+1 {
				t.Fatalf("pull: %d changes, %v", len(page.GetChanges()), err)
			}
		})
	}
	t.Run("reflection", func(t *testing.T) {
		rc := grpcreflect.NewClient(connect.NewClient(connecthttp.NewTransport(h2cClient(), srv.URL, connecthttp.WithGRPC())))
		stream := rc.NewStream(ctx)
		defer stream.Close()
		names, err := stream.ListServices()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(names, func(n protoreflectName) bool { return string(n) == "tessera.v1.SyncService" }) {
			t.Fatalf("reflection lists %v", names)
		}
	})
	t.Run("health", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body["status"] != "ok" {
			t.Fatalf("health: %d %v %v", resp.StatusCode, body, err)
		}
	})
}

func make16(b byte) []byte { return bytes.Repeat([]byte{b}, 16) }

// TestBadInput: malformed ids, unknown replica claims, oversized batches and
// truncated messages are refused with a clear code and message, and nothing
// of the request is applied.
func TestBadInput(t *testing.T) {
	srv := startServer(t, server.Config{})
	c := client(srv.URL, http.DefaultClient)
	ctx := context.Background()
	dev := syncengine.NewReplicaID()
	other := syncengine.NewReplicaID()
	bad := func(mut func(*tesserav1.Change)) []*tesserav1.Change {
		b := goodChange(dev, 2)
		mut(b)
		return []*tesserav1.Change{goodChange(dev, 1), b}
	}
	v4 := syncengine.RecordID{}
	v4[6], v4[8] = 0x40, 0x80
	many := make([]*tesserav1.Change, syncengine.MaxBatchChanges+1)
	for i := range many {
		many[i] = goodChange(dev, uint64(i+1))
	}
	huge := goodChange(dev, 1)
	huge.Fields[0] = wire.FieldTo("q1", syncengine.TextValue(strings.Repeat("x", 900_000)))
	hugeBatch := []*tesserav1.Change{huge, goodChange(dev, 2), goodChange(dev, 3), goodChange(dev, 4), goodChange(dev, 5)}
	for i := range hugeBatch[1:] {
		hugeBatch[i+1].Fields[0] = huge.Fields[0]
	}
	cases := []struct {
		name string
		req  *tesserav1.PushRequest
		code connect.Code
		msg  string
	}{
		{"short replica", &tesserav1.PushRequest{Replica: []byte{1, 2, 3}, Through: 1, Changes: []*tesserav1.Change{goodChange(dev, 1)}}, connect.CodeInvalidArgument, "replica id of 3 bytes"},
		{"short record id", &tesserav1.PushRequest{Replica: dev[:], Through: 2, Changes: bad(func(c *tesserav1.Change) { c.Record = c.Record[:15] })}, connect.CodeInvalidArgument, "record id of 15 bytes"},
		{"not a UUIDv7", &tesserav1.PushRequest{Replica: dev[:], Through: 2, Changes: bad(func(c *tesserav1.Change) { c.Record = v4[:] })}, connect.CodeInvalidArgument, "not a UUIDv7"},
		{"zero counter", &tesserav1.PushRequest{Replica: dev[:], Through: 2, Changes: bad(func(c *tesserav1.Change) { c.Dot.Counter = 0 })}, connect.CodeInvalidArgument, "no replica or counter"},
		{"no fields", &tesserav1.PushRequest{Replica: dev[:], Through: 2, Changes: bad(func(c *tesserav1.Change) { c.Fields = nil })}, connect.CodeInvalidArgument, "fields"},
		{"reserved field", &tesserav1.PushRequest{Replica: dev[:], Through: 2, Changes: bad(func(c *tesserav1.Change) { c.Fields[0].Name = "$evil" })}, connect.CodeInvalidArgument, "reserved"},
		{"unknown replica claim", &tesserav1.PushRequest{Replica: dev[:], Through: 2, Changes: bad(func(c *tesserav1.Change) { c.Dot.Replica = other[:] })}, connect.CodeInvalidArgument, "without relay"},
		{"through before after", &tesserav1.PushRequest{Replica: dev[:], After: 5, Through: 2, Changes: []*tesserav1.Change{goodChange(dev, 1)}}, connect.CodeInvalidArgument, "through"},
		{"too many changes", &tesserav1.PushRequest{Replica: dev[:], Through: 2000, Changes: many}, connect.CodeResourceExhausted, "at most 1000"},
		{"too many bytes", &tesserav1.PushRequest{Replica: dev[:], Through: 5, Changes: hugeBatch}, connect.CodeResourceExhausted, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Push(ctx, tc.req)
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != tc.code || !strings.Contains(ce.Message(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.code, tc.msg)
			}
			if n := logLen(t, srv.Replica()); n != 0 {
				t.Fatalf("%d changes applied from a refused request", n)
			}
		})
	}
	t.Run("truncated message", func(t *testing.T) {
		b, err := proto.Marshal(&tesserav1.PushRequest{Replica: dev[:], Through: 1, Changes: []*tesserav1.Change{goodChange(dev, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(srv.URL+tesserav1connect.SyncServicePushProcedure, "application/proto", bytes.NewReader(b[:len(b)-7]))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("invalid_argument")) {
			t.Fatalf("truncated message: %d %s", resp.StatusCode, body)
		}
		if n := logLen(t, srv.Replica()); n != 0 {
			t.Fatalf("%d changes applied from a truncated message", n)
		}
	})
	t.Run("cut mid-request", func(t *testing.T) {
		b, _ := proto.Marshal(&tesserav1.PushRequest{Replica: dev[:], Through: 1, Changes: []*tesserav1.Change{goodChange(dev, 1)}})
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "POST "+tesserav1connect.SyncServicePushProcedure+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\n")
		io.WriteString(conn, "Content-Length: "+itoa(len(b))+"\r\n\r\n")
		conn.Write(b[:len(b)/2])
		conn.Close()
		waitFor(t, "server to drop the cut request", func() bool { return true })
		if n := logLen(t, srv.Replica()); n != 0 {
			t.Fatalf("%d changes applied from a cut request", n)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

type protoreflectName = protoreflect.FullName
