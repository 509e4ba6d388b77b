// Command media measures files that answers name as they ship (issue 16):
// surveyd, fieldapp and surveyctl built from this tree and run as their own
// processes (fieldapp in its phone profile, its store encrypted), over
// loopback:
//
//   - video: a 200 MB video attached with `fieldapp record set video=@FILE`
//     and sent by `fieldapp sync`: the device's peak RSS (target ≤ 100 MB),
//     surveyd's RSS before and after (flat: no file in memory), the
//     upload's MB/s (target ≥ 100) and `surveyctl export --media`'s (out);
//
//   - cuts: 100 photos of 2 MB synced through a link cut every 2 MB: every
//     file arrives whole and once, and at most one chunk per cut is sent
//     again (counted in the proxy from the requests it forwards);
//
//   - link (with -link): a 500 KB photo over 64 kbit/s with 300 ms round
//     trips: it must arrive within twice its bytes' time on the link.
//
//     go run ./scripts/bench/media [-video-mb 200] [-photos 100] [-runs 3] [-link]
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/tessera-survey/tessera/scripts/bench/internal/procstat"
	"github.com/tessera-survey/tessera/scripts/bench/internal/surveyd"
)

const benchPIN = "bench-pin-246810"

var (
	bin     string // the binaries' folder
	profDir string
)

func main() {
	videoMB := flag.Int("video-mb", 200, "size of the video, MB")
	photos := flag.Int("photos", 100, "photos of 2 MB synced through cuts")
	runs := flag.Int("runs", 3, "runs of the video case (medians)")
	flag.StringVar(&profDir, "profile", "", "write CPU profiles of surveyd and of the first video sync into this folder")
	link := flag.Bool("link", false, "also the field link case (64 kbit/s, 300 ms round trips: about 70 s)")
	flag.Parse()
	tmp, err := os.MkdirTemp("", "tessera-media-bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	bin = tmp
	build := exec.Command("go", "build", "-o", tmp+string(filepath.Separator), "./cmd/surveyd", "./cmd/fieldapp", "./cmd/surveyctl")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		log.Fatalf("go build: %v", err)
	}
	addr, pid, stop := startServer(filepath.Join(tmp, "srv"))
	defer stop()
	server := "http://" + addr
	form := filepath.Join(tmp, "media.xlsx")
	writeForm(form)
	run("surveyctl", "--server", server, "form", "publish", form)

	var in, out, devRSS []float64
	var srvBefore, srvAfter int64
	for r := range *runs {
		dev := filepath.Join(tmp, fmt.Sprintf("dev%d", r))
		run("fieldapp", "--data", dev, "init", "--server", server)
		run("fieldapp", "--data", dev, "sync")
		id := strings.TrimSpace(run("fieldapp", "--data", dev, "record", "new", "media_bench", "note=video"))
		video := filepath.Join(tmp, "video.mp4")
		writeRandom(video, int64(*videoMB)<<20)
		run("fieldapp", "--data", dev, "record", "set", id, "video=@"+video)
		os.Remove(video)
		if r == 0 {
			srvBefore = procstat.KiB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")[0]
		}
		defer func(r int) {
			k := procstat.KiB(fmt.Sprintf("/proc/%d/status", pid), "RssAnon:", "RssFile:")
			fmt.Printf("  surveyd after run %d: RssAnon %d MB, RssFile %d MB\n", r, k[0]/1024, k[1]/1024)
		}(r)
		res, rss := syncJSON(dev, server)
		if res.Media.Files != 1 {
			log.Fatalf("sync sent %d files", res.Media.Files)
		}
		in = append(in, float64(*videoMB)/(res.DurationMS/1000))
		devRSS = append(devRSS, float64(rss)/1024)
		srvAfter = procstat.KiB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")[0]
		mdir := filepath.Join(tmp, fmt.Sprintf("export%d", r))
		t0 := time.Now()
		run("surveyctl", "--server", server, "export", "--form", "media_bench", "--out", mdir, "--media", filepath.Join(mdir, "media"))
		out = append(out, float64(*videoMB*(r+1))/time.Since(t0).Seconds()) // every run's video is exported
		os.RemoveAll(mdir)
	}
	fmt.Printf("video %d MB, %d runs (medians):\n", *videoMB, *runs)
	fmt.Printf("  upload (fieldapp sync, its own duration): %.0f MB/s  [%s]\n", median(in), list(in))
	fmt.Printf("  fieldapp sync peak RSS: %.0f MB  [%s]\n", median(devRSS), list(devRSS))
	fmt.Printf("  surveyd RSS before the first video %.0f MB, after the last %.0f MB\n", float64(srvBefore)/1024, float64(srvAfter)/1024)
	fmt.Printf("  download (surveyctl export --media, tables included): %.0f MB/s  [%s]\n", median(out), list(out))

	cutCase(tmp, addr, server, *photos)
	if *link {
		linkCase(tmp, addr, server)
	}
}

// cutCase syncs photos through a proxy that cuts every connection after
// 2 MB and counts the chunk requests it forwards.
func cutCase(tmp, addr, server string, n int) {
	p := newProxy(addr, 2<<20, 0, 0)
	dev := filepath.Join(tmp, "cuts")
	run("fieldapp", "--data", dev, "init", "--server", server)
	run("fieldapp", "--data", dev, "sync")
	for i := range n {
		id := strings.TrimSpace(run("fieldapp", "--data", dev, "record", "new", "media_bench", fmt.Sprintf("note=p%d", i)))
		photo := filepath.Join(tmp, "photo.jpg")
		writeRandom(photo, 2<<20)
		run("fieldapp", "--data", dev, "record", "set", id, "photo=@"+photo)
	}
	failures := 0
	t0 := time.Now()
	for {
		cmd := exec.Command(filepath.Join(bin, "fieldapp"), "--data", dev, "sync", "--server", p.url())
		cmd.Env = env()
		if err := cmd.Run(); err == nil {
			break
		}
		if failures++; failures > 1000 {
			log.Fatal("the sync through cuts never got through")
		}
	}
	took := time.Since(t0)
	mdir := filepath.Join(tmp, "cuts-export")
	got := run("surveyctl", "--server", server, "export", "--form", "media_bench", "--out", mdir, "--media", filepath.Join(mdir, "media"))
	chunks := int64(n * (2 << 20) / (256 << 10))
	sent, cuts := p.chunks.Load(), p.cuts.Load()
	fmt.Printf("%d photos of 2 MB through a link cut every 2 MB: %.1f s, %d cuts, %d failed syncs\n", n, took.Seconds(), cuts, failures)
	fmt.Printf("  chunk requests %d for %d chunks: %d sent again (at most one per cut: %v)\n", sent, chunks, sent-chunks, sent-chunks <= cuts)
	fmt.Printf("  export: %s", got)
}

// linkCase sends a 500 KB photo over a 64 kbit/s link with 300 ms round
// trips.
func linkCase(tmp, addr, server string) {
	const size = 500_000
	const rate = 64_000 / 8 // bytes per second
	p := newProxy(addr, 0, rate, 150*time.Millisecond)
	dev := filepath.Join(tmp, "link")
	run("fieldapp", "--data", dev, "init", "--server", server)
	run("fieldapp", "--data", dev, "sync")
	id := strings.TrimSpace(run("fieldapp", "--data", dev, "record", "new", "media_bench", "note=link"))
	photo := filepath.Join(tmp, "link.jpg")
	writeRandom(photo, size)
	run("fieldapp", "--data", dev, "record", "set", id, "photo=@"+photo)
	res, _ := syncJSON(dev, p.url())
	bytesTime := float64(size) / rate
	fmt.Printf("500 KB photo over 64 kbit/s, 300 ms round trips: %.1f s (its bytes alone %.1f s on the link: %.2fx; target ≤ 2x); %d bytes sent\n",
		res.DurationMS/1000, bytesTime, res.DurationMS/1000/bytesTime, res.BytesSent)
}

type syncResult struct {
	DurationMS float64 `json:"duration_ms"`
	BytesSent  int64   `json:"bytes_sent"`
	Media      struct {
		Files int   `json:"files"`
		Bytes int64 `json:"bytes"`
	} `json:"media"`
}

func syncJSON(dev, server string) (syncResult, int64) {
	cmd := exec.Command(filepath.Join(bin, "fieldapp"), "--data", dev, "sync", "--json", "--server", server)
	cmd.Env = env()
	if profDir != "" {
		cmd.Env = append(cmd.Env, "TESSERA_CPUPROFILE="+filepath.Join(profDir, "fieldapp-"+filepath.Base(dev)+".prof"))
	}
	cmd.Stderr = os.Stderr
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	peak := procstat.WatchPeak(cmd.Process.Pid, 5*time.Millisecond)
	err := cmd.Wait()
	rss := peak()
	if err != nil {
		log.Fatalf("fieldapp sync: %v", err)
	}
	var r syncResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		log.Fatalf("fieldapp sync said %q: %v", stdout.Bytes(), err)
	}
	return r, rss
}

// env: the binaries' own memory profile (no GOMEMLIMIT or GOGC from here).
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "TESSERA_") {
			out = append(out, kv)
		}
	}
	return append(out, "TESSERA_PIN="+benchPIN)
}

func run(name string, args ...string) string {
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = env()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("%s %v: %v\n%s", name, args, err, errb.String())
	}
	return string(out)
}

// startServer runs the shipped surveyd with the files' size limit the
// video needs (and its CPU profile with -profile).
func startServer(data string) (addr string, pid int, stop func()) {
	e := env()
	if profDir != "" {
		e = append(e, "TESSERA_CPUPROFILE="+filepath.Join(profDir, "surveyd.prof"))
	}
	return surveyd.Start(filepath.Join(bin, "surveyd"), data, e, "--media-max-mb", "1024")
}

func writeForm(path string) {
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.NewSheet("settings")
	for i, r := range [][]string{{"type", "name", "label", "parameters"}, {"image", "photo", "Photo", "max-pixels=100000"},
		{"video", "video", "Video", ""}, {"text", "note", "Note", ""}} {
		for j, v := range r {
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			f.SetCellStr("survey", cell, v)
		}
	}
	f.SetCellStr("settings", "A1", "form_id")
	f.SetCellStr("settings", "A2", "media_bench")
	if err := f.SaveAs(path); err != nil {
		log.Fatal(err)
	}
}

// writeRandom writes n random bytes (a photo or a video does not compress).
func writeRandom(path string, n int64) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func list(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, " ")
}

// proxy forwards to target: cut > 0 drops each connection after that many
// bytes; rate > 0 paces each direction at that many bytes/s and delay
// holds each byte that long (one way). It counts the chunk requests that
// pass towards the server.
type proxy struct {
	ln           net.Listener
	target       string
	cut          int64
	rate         int
	delay        time.Duration
	cuts, chunks atomic.Int64
	mu           sync.Mutex
}

func newProxy(target string, cut int64, rate int, delay time.Duration) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, cut: cut, rate: rate, delay: delay}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

var putChunk = []byte("POST /tessera.v1.MediaService/PutChunk ")

func (p *proxy) handle(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	var left atomic.Int64
	left.Store(p.cut)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, toServer bool) {
		defer func() { done <- struct{}{} }()
		type piece struct {
			b  []byte
			at time.Time
		}
		q := make(chan piece, 1024)
		go func() { // delivery after the delay
			for pc := range q {
				time.Sleep(time.Until(pc.at))
				if _, err := dst.Write(pc.b); err != nil {
					return
				}
			}
		}()
		defer close(q)
		var tail []byte
		buf := make([]byte, 1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if toServer {
					look := append(tail, buf[:n]...)
					p.chunks.Add(int64(bytes.Count(look, putChunk)))
					tail = bytes.Clone(look[max(0, len(look)-len(putChunk)+1):])
				}
				if p.cut > 0 && left.Add(-int64(n)) < 0 {
					p.cuts.Add(1)
					return
				}
				if p.rate > 0 {
					time.Sleep(time.Duration(n) * time.Second / time.Duration(p.rate))
				}
				q <- piece{bytes.Clone(buf[:n]), time.Now().Add(p.delay)}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(up, c, true)
	go pipe(c, up, false)
	<-done
}
