// Command device measures the field app on a device holding many records
// (default 100,000 of 30 fields of the sample form, in the encrypted
// store): the peak RSS of the `fieldapp serve` process while it is
// unlocked, lists interviews page by page, opens a record, edits it, opens
// the form for a new interview, and syncs everything to a real surveyd.
// Targets (issue 5): peak RSS ≤ 100 MB, opening a form < 1 s.
//
//	go run ./scripts/bench/device [-records N] [-pages N]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tessera-survey/tessera/server"
)

var (
	records = flag.Int("records", 100000, "records on the device (30 fields each)")
	pages   = flag.Int("pages", 20, "pages of the interview list to walk (50 per page)")
	keep    = flag.Bool("keep", false, "keep the scratch folder")
	srvProf = flag.String("server-profile", "", "write a CPU profile of the server (this process) during the sync to this file; TESSERA_CPUPROFILE=FILE profiles fieldapp")
)

const pin = "bench-pin-2468"

func main() {
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tessera-bench-device-")
	check(err)
	if !*keep {
		defer os.RemoveAll(dir)
	}
	bin := filepath.Join(dir, "fieldapp")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/fieldapp").CombinedOutput()
	if err != nil {
		log.Fatalf("go build ./cmd/fieldapp: %v\n%s", err, out)
	}

	srv, err := server.New(ctx, server.Config{DataDir: filepath.Join(dir, "srv")})
	check(err)
	defer srv.Close()
	xlsx, err := os.ReadFile("examples/forms/community-security.xlsx")
	check(err)
	info, _, err := srv.Forms().Publish(ctx, xlsx, "", "", time.Now())
	check(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Serve(sctx, ln)
	serverURL := "http://" + ln.Addr().String()

	data := filepath.Join(dir, "device")
	run := func(args ...string) (time.Duration, int64) {
		cmd := exec.Command(bin, append([]string{"--data", data}, args...)...)
		cmd.Env = append(os.Environ(), "TESSERA_PIN="+pin)
		var b strings.Builder
		cmd.Stdout, cmd.Stderr = &b, &b
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			log.Fatalf("fieldapp %s: %v\n%s", strings.Join(args, " "), err, b.String())
		}
		return time.Since(t0), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	}
	run("init", "--server", serverURL)
	run("sync")
	jsonl := filepath.Join(dir, "records.jsonl")
	writeRecords(jsonl, info.Key(), *records)
	log.Printf("importing %d records of 30 fields into the encrypted device store...", *records)
	took, rss := run("record", "import", jsonl)
	log.Printf("imported in %v (%.0f records/s), peak RSS of the import %.1f MiB", took.Round(time.Millisecond),
		float64(*records)/took.Seconds(), float64(rss)/1024)

	// The UI process, its memory sampled every 10 ms.
	port := freePort()
	cmd := exec.Command(bin, "--data", data, "serve", "--listen", "127.0.0.1:"+port)
	cmd.Env = os.Environ() // no TESSERA_PIN: the UI is unlocked like a person would
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	defer func() {
		// Stopped as a person stops it, so it closes its store (and
		// writes the profile TESSERA_CPUPROFILE asks for).
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
	}()
	ready := bufio.NewReader(stdout)
	if _, err := ready.ReadString('\n'); err != nil {
		log.Fatal("fieldapp serve did not start")
	}
	go io.Copy(io.Discard, stdout)
	s := newSampler(cmd.Process.Pid)
	base := "http://127.0.0.1:" + port
	c := newClient(base)

	type row struct {
		phase      string
		took       time.Duration
		peak, anon int64
		cpu, srv   time.Duration // fieldapp's CPU, the server's (this process)
	}
	var rows []row
	phase := func(name string, fn func()) {
		s.reset()
		c0, s0 := procCPU(cmd.Process.Pid), selfCPU()
		t0 := time.Now()
		fn()
		rows = append(rows, row{name, time.Since(t0), s.peak(), s.anonPeak(), procCPU(cmd.Process.Pid) - c0, selfCPU() - s0})
	}
	phase("idle (locked)", func() { time.Sleep(200 * time.Millisecond) })
	phase("unlock", func() {
		loc := c.post("/unlock", url.Values{"pin": {pin}})
		c.session = regexp.MustCompile(`^/s/[^/]+`).FindString(loc) // the session's own path
		c.get("/forms")
	})
	var first string
	phase(fmt.Sprintf("list %d pages", *pages), func() {
		body := c.get("/interviews")
		first = regexp.MustCompile(`data-id="([^"]+)"`).FindStringSubmatch(body)[1]
		next := regexp.MustCompile(`href="/?interviews\?before=([^"]+)"`)
		for range *pages - 1 {
			m := next.FindStringSubmatch(body)
			if m == nil {
				break
			}
			body = c.get("/interviews?before=" + m[1])
		}
	})
	phase("open a record", func() { c.get("/interview/" + first) })
	phase("edit it (3 answers)", func() {
		for _, a := range [][2]string{{"threats/safe_day", "unsafe"}, {"coexistence/comment", "edited in the benchmark"}, {"household/hh_size", "3"}} {
			c.post("/interview/"+first+"/answer", url.Values{"field": {a[0]}, "value": {a[1]}})
		}
	})
	var openForm time.Duration
	phase("open the form (new interview)", func() {
		t0 := time.Now()
		loc := c.post("/interviews", url.Values{"form": {"community_security"}})
		c.get(loc)
		openForm = time.Since(t0)
	})
	var res map[string]any
	phase(fmt.Sprintf("sync %d records to surveyd", *records+1), func() {
		if *srvProf != "" {
			f, err := os.Create(*srvProf)
			check(err)
			check(pprof.StartCPUProfile(f))
			defer func() { pprof.StopCPUProfile(); check(f.Close()) }()
		}
		c.get("/sync")
		c.post("/sync", url.Values{})
		for {
			var st struct {
				Running bool           `json:"running"`
				Result  map[string]any `json:"result"`
				Error   string         `json:"error"`
			}
			check(json.Unmarshal([]byte(c.get("/sync/status")), &st))
			if !st.Running && st.Result != nil {
				if st.Error != "" {
					log.Fatalf("sync: %s", st.Error)
				}
				res = st.Result
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	hwm := s.hwm()
	fmt.Printf("\nfieldapp serve with %d records × 30 fields (encrypted Badger store)\n\n", *records)
	fmt.Printf("%-34s %12s %14s %18s %13s %12s\n", "phase", "time", "peak RSS", "of it anonymous", "fieldapp CPU", "server CPU")
	for _, r := range rows {
		fmt.Printf("%-34s %12s %10.1f MiB %14.1f MiB %13s %12s\n", r.phase, r.took.Round(time.Millisecond), float64(r.peak)/1024, float64(r.anon)/1024,
			r.cpu.Round(10*time.Millisecond), r.srv.Round(10*time.Millisecond))
	}
	fmt.Printf("\nsync: %v changes pushed, %.1f MiB sent\n", res["pushed"], res["bytes_sent"].(float64)/(1<<20))
	fmt.Printf("peak RSS of the process (VmHWM): %.1f MiB  (target ≤ 100 MB = 95.4 MiB: %s)\n", float64(hwm)/1024, verdict(hwm*1024 <= 100e6))
	fmt.Printf("opening the form: %s  (target < 1 s: %s)\n", openForm.Round(time.Millisecond), verdict(openForm < time.Second))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// writeRecords writes n interviews of the sample form with 30 answers
// each (two household members included), varied so they do not compress
// to nothing.
func writeRecords(path, form string, n int) {
	f, err := os.Create(path)
	check(err)
	w := bufio.NewWriterSize(f, 1<<20)
	pick := func(i int, xs ...string) string { return xs[i%len(xs)] }
	for i := range n {
		fields := map[string]any{
			"started": fmt.Sprintf("2026-11-%02dT%02d:%02d:00Z", 1+i%27, 8+i%10, i%60), "interview_day": fmt.Sprintf("2026-11-%02d", 1+i%27),
			"ended": fmt.Sprintf("2026-11-%02dT%02d:%02d:00Z", 1+i%27, 9+i%10, i%60), "device": fmt.Sprintf("tessera:bench-%d", i%3),
			"intro/consent": "yes", "household/site": pick(i, "camp_a", "camp_b", "host_village"),
			"household/location":                           fmt.Sprintf("%.5f %.5f 0 %d", 2.0+float64(i%1000)/1e4, 31.0+float64(i%777)/1e4, 3+i%20),
			"household/hh_size":                            2,
			"household/roster[a" + strconv.Itoa(i%9) + "]": 1, "household/roster[a" + strconv.Itoa(i%9) + "]/member_name": fmt.Sprintf("Person %d", i),
			"household/roster[a" + strconv.Itoa(i%9) + "]/sex": pick(i, "female", "male"), "household/roster[a" + strconv.Itoa(i%9) + "]/age": 18 + i%60,
			"household/roster[b" + strconv.Itoa(i%7) + "]": 2, "household/roster[b" + strconv.Itoa(i%7) + "]/member_name": fmt.Sprintf("Relative %d", i*7%100000),
			"household/roster[b" + strconv.Itoa(i%7) + "]/sex": pick(i+1, "female", "male"), "household/roster[b" + strconv.Itoa(i%7) + "]/age": i % 90,
			"household/members": 2, "threats/safe_day": pick(i, "very_safe", "safe", "unsafe", "very_unsafe"),
			"threats/safe_night": pick(i+2, "very_safe", "safe", "unsafe", "very_unsafe"), "threats/threats_faced": pick(i, "theft", "theft eviction", "armed_groups", "discrimination"),
			"fear_want/free_from_fear": pick(i, "agree", "disagree", "strongly_agree"), "fear_want/free_from_want": pick(i+1, "agree", "strongly_agree"),
			"services/access_health": pick(i, "easy", "difficult", "none"), "services/access_school": pick(i+1, "easy", "difficult", "none"),
			"services/access_justice": pick(i+2, "easy", "difficult", "none"), "gbv/gbv_private": "no",
			"coexistence/host_relations": pick(i, "good", "mixed", "tense"), "coexistence/trust_host": pick(i, "agree", "disagree"),
			"coexistence/comment": fmt.Sprintf("comment number %d about the water point", i), "fear_want/unmet_needs": pick(i, "food", "food water", "shelter work"),
		}
		b, _ := json.Marshal(map[string]any{"form": form, "fields": fields})
		w.Write(b)
		w.WriteByte('\n')
	}
	check(w.Flush())
	check(f.Close())
}

type sampler struct {
	status string
	mu     sync.Mutex
	max    int64
	top    int64
	anon   int64 // peak anonymous (heap and stacks) since reset
}

func newSampler(pid int) *sampler {
	s := &sampler{status: fmt.Sprintf("/proc/%d/status", pid)}
	go func() {
		for {
			rss, hwm := s.read()
			if rss < 0 {
				return
			}
			s.mu.Lock()
			s.max = max(s.max, rss)
			s.top = max(s.top, hwm)
			s.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return s
}

func (s *sampler) read() (rss, hwm int64) {
	b, err := os.ReadFile(s.status)
	if err != nil {
		return -1, -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			switch f[0] {
			case "VmRSS:":
				rss, _ = strconv.ParseInt(f[1], 10, 64)
			case "VmHWM:":
				hwm, _ = strconv.ParseInt(f[1], 10, 64)
			case "RssAnon:":
				anon, _ := strconv.ParseInt(f[1], 10, 64)
				s.mu.Lock()
				s.anon = max(s.anon, anon)
				s.mu.Unlock()
			}
		}
	}
	return rss, hwm
}

func (s *sampler) reset() {
	rss, _ := s.read()
	s.mu.Lock()
	s.max, s.anon = rss, 0
	s.mu.Unlock()
}

// anonPeak is the highest anonymous RSS seen since reset, in KiB.
func (s *sampler) anonPeak() int64 {
	s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.anon
}

// peak is the highest RSS seen since reset, in KiB.
func (s *sampler) peak() int64 {
	rss, _ := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.max, rss)
}

// hwm is the process's own peak (VmHWM), in KiB.
func (s *sampler) hwm() int64 {
	_, h := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.top, h)
}

type client struct {
	base    string
	session string // the unlocked session's path: its pages are under it
	c       *http.Client
	csrf    string
}

// url is path in the session (a path that names the session already, as
// redirects do, is used as is).
func (c *client) url(path string) string {
	if strings.HasPrefix(path, "/s/") || path == "/unlock" {
		return c.base + path
	}
	return c.base + c.session + path
}

func newClient(base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) get(path string) string {
	res, err := c.c.Get(c.url(path))
	check(err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		log.Fatalf("GET %s: %s %.300s", path, res.Status, b)
	}
	if m := csrfRE.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return string(b)
}

// post posts a form and returns where it redirects (if it does).
func (c *client) post(path string, form url.Values) string {
	form.Set("csrf", c.csrf)
	res, err := c.c.PostForm(c.url(path), form)
	check(err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		log.Fatalf("POST %s: %s %.300s", path, res.Status, b)
	}
	return res.Header.Get("Location")
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// procCPU is a process's user and system CPU so far (/proc/PID/stat, in
// clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// selfCPU is this process's CPU so far: the server's, and the little the
// driving client costs.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
