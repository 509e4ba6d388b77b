package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tessera-survey/tessera/scripts/bench/internal/procstat"
	"github.com/tessera-survey/tessera/scripts/bench/internal/surveyd"
)

// The shipped side: surveyd and fieldapp as their own processes, built
// from this tree, with the memory settings users get (fieldapp's phone
// profile: its 56 MiB soft memory limit, the device store profile), the
// device store unlocked with a PIN as in the field.

const benchPIN = "bench-pin-246810"

// buildBinaries builds surveyd and fieldapp into dir.
func buildBinaries(dir string) {
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/surveyd", "./cmd/fieldapp")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("go build: %v", err)
	}
}

// syncRun is one `fieldapp sync --json` as its own process.
type syncRun struct {
	SyncMS   float64 `json:"duration_ms"`
	UnlockMS float64 `json:"unlock_ms"`
	OpenMS   float64 `json:"open_ms"`
	Pushed   int     `json:"pushed"`
	Pulled   int     `json:"pulled"`
	Applied  int     `json:"applied"`
	wallMS   float64
	rssKB    int64
}

// procEnv is the environment of the shipped binaries: GOMEMLIMIT and GOGC
// unset so fieldapp applies its own profile.
func procEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "TESSERA_") {
			env = append(env, kv)
		}
	}
	return append(env, "TESSERA_PIN="+benchPIN)
}

func runFieldapp(bin, data string, args ...string) []byte {
	cmd := exec.Command(filepath.Join(bin, "fieldapp"), append([]string{"--data", data}, args...)...)
	cmd.Env = procEnv()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("fieldapp %v: %v", args, err)
	}
	return out
}

func fieldappSync(bin, data string) syncRun {
	cmd := exec.Command(filepath.Join(bin, "fieldapp"), "--data", data, "sync", "--json")
	cmd.Env = procEnv()
	cmd.Stderr = os.Stderr
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		log.Fatalf("fieldapp sync: %v", err)
	}
	stopWatch := procstat.WatchPeak(cmd.Process.Pid, 5*time.Millisecond)
	err := cmd.Wait()
	wall := time.Since(t0)
	rssKB := stopWatch()
	if err != nil {
		log.Fatalf("fieldapp sync: %v", err)
	}
	out := stdout.Bytes()
	var r syncRun
	if err := json.Unmarshal(out, &r); err != nil {
		log.Fatalf("fieldapp sync said %q: %v", out, err)
	}
	r.wallMS = float64(wall.Microseconds()) / 1000
	r.rssKB = rssKB
	return r
}

// shippedResult holds, per case, the sync's own duration and the whole
// process (the measure), and the process parts.
type shippedResult struct {
	sync    runResult // duration_ms of the sync itself
	process runResult // the whole fieldapp process, start to exit
	runs    map[string]syncRun
}

func writeImport(path string, recs []rec) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, r := range recs {
		fields := map[string]any{}
		for _, fw := range r.fields() {
			fields[fw.Name] = fw.Value.Any()
		}
		b, _ := json.Marshal(map[string]any{"form": "perception@3", "fields": fields})
		w.Write(append(b, '\n'))
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	f.Close()
}

func shipped(bin, dir string, recs []rec) shippedResult {
	addr, _, stop := surveyd.Start(filepath.Join(bin, "surveyd"), filepath.Join(dir, "server"), procEnv())
	defer stop()
	px := newProxy(addr)
	defer px.ln.Close()
	a, b := filepath.Join(dir, "dev-a"), filepath.Join(dir, "dev-b")
	runFieldapp(bin, a, "init", "--server", px.url())
	imp := filepath.Join(dir, "records.jsonl")
	writeImport(imp, recs)
	runFieldapp(bin, a, "record", "import", imp)
	runFieldapp(bin, b, "init", "--server", px.url())
	res := shippedResult{sync: runResult{}, process: runResult{}, runs: map[string]syncRun{}}
	step := func(name, data string, n int, check func(syncRun) bool) {
		px.bytes.Store(0)
		r := fieldappSync(bin, data)
		if !check(r) {
			log.Fatalf("shipped %s: unexpected result %+v", name, r)
		}
		by := px.bytes.Load()
		res.sync[name] = measure{ms: r.SyncMS, bytes: by, n: n}
		res.process[name] = measure{ms: r.wallMS, bytes: by, n: n}
		res.runs[name] = r
	}
	step("push", a, len(recs), func(r syncRun) bool { return r.Pushed == len(recs) })
	step("pull", b, len(recs), func(r syncRun) bool { return r.Applied == len(recs) })
	step("warm-up", b, 0, func(syncRun) bool { return true })
	step("noop", b, 0, func(r syncRun) bool { return r.Pushed+r.Pulled == 0 })
	return res
}
