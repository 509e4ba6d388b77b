// Command export measures an export of many records (default 1,000,000 of
// 30 fields): rows per second and peak memory. The server runs in this
// process (its store filled first, its peak RSS reset before the export);
// surveyctl runs as its own process, built from ./cmd/surveyctl, so each
// side's peak RSS is measured apart. With -inprocess, surveyctl runs in
// this process instead (for a CPU profile of both sides).
//
//	go run ./scripts/bench/export [-records N] [-format csv] [-inprocess -cpuprofile FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/tessera-survey/tessera/ctl"
	"github.com/tessera-survey/tessera/scripts/bench/internal/procstat"
	"github.com/tessera-survey/tessera/server"
	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/badgerstore"

	"github.com/xuri/excelize/v2"
)

func main() {
	n := flag.Int("records", 1_000_000, "records to export")
	format := flag.String("format", "csv", "csv, jsonl, parquet or geojson")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the export (with -inprocess: of both sides)")
	inproc := flag.Bool("inprocess", false, "run surveyctl in this process rather than as its own")
	keep := flag.Bool("keep", false, "keep the scratch folder (the store and the exported files)")
	gogc := flag.Int("server-gogc", 0, "the server side's GOGC (0: the runtime's default or $GOGC)")
	heapProf := flag.String("heapprofile", "", "write heap profiles of the server as the export starts (FILE) and ends (FILE.end)")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tessera-export-bench")
	if err != nil {
		log.Fatal(err)
	}
	if *keep {
		log.Printf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	srv, err := server.New(ctx, server.Config{DataDir: filepath.Join(dir, "srv")})
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := srv.Forms().Publish(ctx, formXLSX(), "bench", "", time.Now()); err != nil {
		log.Fatal(err)
	}
	log.Printf("filling the store with %d records of 30 fields", *n)
	t0 := time.Now()
	batch := make([]syncengine.NewRecord, 0, 1000)
	for i := range *n {
		fs := make([]syncengine.FieldWrite, 30)
		for k := range fs {
			var v syncengine.Value
			switch k % 3 {
			case 0:
				v = syncengine.IntValue(int64((i * (k + 1)) % 97))
			case 1:
				v = syncengine.TextValue([]string{"yes", "no", "unsure", "often", "never"}[(i+k)%5])
			default:
				v = syncengine.DecimalValue(float64(i%1000) / 10)
			}
			fs[k] = syncengine.FieldWrite{Name: fmt.Sprintf("q%02d", k), Value: v}
		}
		batch = append(batch, syncengine.NewRecord{Form: "bench@1", Fields: fs})
		if len(batch) == cap(batch) || i == *n-1 {
			if _, err := srv.Replica().CreateMany(ctx, batch); err != nil {
				log.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	log.Printf("filled in %v", time.Since(t0).Round(time.Second))
	// A store filled a second ago is still compacting what was just
	// written, on the same two cores as the export; a server's store is
	// filled over days. Restart on it, compacted, as time would leave it.
	if err := srv.Close(); err != nil {
		log.Fatal(err)
	}
	t0 = time.Now()
	st, err := badgerstore.Open(badgerstore.Options{Dir: filepath.Join(dir, "srv"), Profile: badgerstore.Server})
	if err != nil {
		log.Fatal(err)
	}
	if err := st.Settle(); err != nil {
		log.Fatal(err)
	}
	srv, err = server.New(ctx, server.Config{Store: st, DataDir: filepath.Join(dir, "srv")})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	log.Printf("restarted on the compacted store in %v", time.Since(t0).Round(time.Millisecond))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Serve(sctx, ln)
	// The fill's garbage goes back to the system first, so the peak
	// measured from here is the serving server's, not the filler's; and
	// Badger's compaction buffers from settling the store are let go as
	// an idle server lets them go (its pool frees one every 2 s).
	if *gogc > 0 {
		debug.SetGCPercent(*gogc)
	}
	settleHeap()
	debug.FreeOSMemory()
	if *heapProf != "" {
		if f, err := os.Create(*heapProf); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset the peak RSS
	before := peakRSS()
	// RSS in two parts, sampled through the export: anonymous memory (the
	// heap and caches: what an export could make grow) and file-backed
	// pages (Badger maps its tables; pages read by a scan count in RSS
	// until the kernel reclaims them, as page cache).
	anon0, file0 := rssParts()
	var anonPeak, filePeak int64
	heapSamples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(heapSamples)
	heap0, live0 := heapSamples[0].Value.Uint64(), heapSamples[1].Value.Uint64()
	var heapPeak, livePeak uint64
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			a, f := rssParts()
			anonPeak, filePeak = max(anonPeak, a), max(filePeak, f)
			metrics.Read(heapSamples)
			heapPeak = max(heapPeak, heapSamples[0].Value.Uint64())
			livePeak = max(livePeak, heapSamples[1].Value.Uint64())
			select {
			case <-sampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	var clientCPU time.Duration
	var out, errb strings.Builder
	if *prof != "" {
		pf, _ := os.Create(*prof)
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	url := "http://" + ln.Addr().String()
	args := []string{"--server", url, "export", "--form", "bench", "--format", *format, "--out", filepath.Join(dir, "out")}
	var el time.Duration
	var clientKiB int64
	if *inproc {
		t0 = time.Now()
		err = ctl.Main(ctx, args, &out, &errb)
		el = time.Since(t0)
		if err != nil {
			log.Fatalf("%v %s", err, errb.String())
		}
	} else {
		bin := filepath.Join(dir, "surveyctl")
		if b, err := exec.Command("go", "build", "-o", bin, "./cmd/surveyctl").CombinedOutput(); err != nil {
			log.Fatalf("go build ./cmd/surveyctl: %v\n%s", err, b)
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		t0 = time.Now()
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		stopWatch := procstat.WatchPeak(cmd.Process.Pid, 20*time.Millisecond)
		err = cmd.Wait()
		el = time.Since(t0)
		clientKiB = stopWatch()
		if err != nil {
			log.Fatalf("surveyctl: %v %s", err, errb.String())
		}
		clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	fmt.Print(out.String())
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	serverCPU := cpu(ru1) - cpu(ru0)
	close(sampling)
	<-sampled
	if *heapProf != "" {
		if f, err := os.Create(*heapProf + ".end"); err == nil {
			pprof.WriteHeapProfile(f) // as of the last GC, during the export
			f.Close()
		}
	}
	server := float64(peakRSS()) / 1024
	fmt.Printf("%d rows in %.2f s: %.0f rows/s; server peak RSS during the export %.0f MiB (%.0f MiB before it, growth %.0f MiB)",
		*n, el.Seconds(), float64(*n)/el.Seconds(), server, float64(before)/1024, server-float64(before)/1024)
	fmt.Printf("\nserver RSS parts: anonymous %.0f -> peak %.0f MiB (growth %.0f), file-backed %.0f -> peak %.0f MiB",
		float64(anon0)/1024, float64(anonPeak)/1024, float64(anonPeak-anon0)/1024, float64(file0)/1024, float64(filePeak)/1024)
	fmt.Printf("\nserver Go heap: objects %.0f -> peak %.0f MiB, live after GC %.0f -> peak %.0f MiB",
		float64(heap0)/(1<<20), float64(heapPeak)/(1<<20), float64(live0)/(1<<20), float64(livePeak)/(1<<20))
	if !*inproc {
		fmt.Printf("; surveyctl peak RSS %.0f MiB", float64(clientKiB)/1024)
	}
	// CPU time is steadier than wall time on a shared machine: it says
	// what each side costs per row whatever else runs.
	fmt.Printf("\nCPU: server %.2f s (%.1f µs/row), surveyctl %.2f s (%.1f µs/row)", serverCPU.Seconds(), float64(serverCPU.Microseconds())/float64(*n),
		clientCPU.Seconds(), float64(clientCPU.Microseconds())/float64(*n))
	fmt.Println()
}

// settleHeap waits (up to 40 s) until the live heap stops shrinking.
func settleHeap() {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var last uint64
	same := 0
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline) && same < 2; {
		runtime.GC()
		metrics.Read(live)
		if v := live[0].Value.Uint64(); v >= last*99/100 && last != 0 {
			same++
		} else {
			same = 0
		}
		last = live[0].Value.Uint64()
		time.Sleep(2500 * time.Millisecond)
	}
	runtime.GC()
	log.Printf("server heap settled: %d MiB live", last>>20)
}

// rssParts reads this process's RssAnon and RssFile (KiB).
func rssParts() (anon, file int64) {
	v := procstat.KiB("/proc/self/status", "RssAnon:", "RssFile:")
	return v[0], v[1]
}

// peakRSS is this process's VmHWM in KiB.
func peakRSS() int64 { return procstat.KiB("/proc/self/status", "VmHWM:")[0] }

func formXLSX() []byte {
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "survey")
	f.NewSheet("settings")
	f.SetSheetRow("survey", "A1", &[]string{"type", "name", "label"})
	for k := range 30 {
		typ := []string{"integer", "text", "decimal"}[k%3]
		f.SetSheetRow("survey", fmt.Sprintf("A%d", k+2), &[]string{typ, fmt.Sprintf("q%02d", k), fmt.Sprintf("Question %d", k)})
	}
	f.SetSheetRow("settings", "A1", &[]string{"form_id", "version"})
	f.SetSheetRow("settings", "A2", &[]string{"bench", "1"})
	b, err := f.WriteToBuffer()
	if err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}
