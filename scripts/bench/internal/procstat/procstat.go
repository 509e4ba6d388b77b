// Package procstat reads a process's memory figures from /proc, for the
// benchmarks that run Tessera's binaries as their own processes.
package procstat

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// KiB reads the values (KiB) of the fields named keys ("VmHWM:",
// "RssAnon:", ...) from a /proc status file, 0 for any it does not find.
func KiB(status string, keys ...string) []int64 {
	out := make([]int64, len(keys))
	b, _ := os.ReadFile(status)
	for _, l := range strings.Split(string(b), "\n") {
		for i, k := range keys {
			if v, ok := strings.CutPrefix(l, k); ok {
				fmt.Sscanf(strings.TrimSpace(v), "%d", &out[i])
			}
		}
	}
	return out
}

// WatchPeak polls the VmHWM of process pid (a child that was just
// started: rusage's maxrss would count the image it was forked from)
// every interval; stop, called once the process has ended, returns the
// last value read. VmHWM only grows, so that is the process's peak to
// within one interval.
func WatchPeak(pid int, every time.Duration) (stop func() int64) {
	status := fmt.Sprintf("/proc/%d/status", pid)
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var hwm int64
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if v := KiB(status, "VmHWM:")[0]; v > 0 {
				hwm = v
			}
			select {
			case <-done:
				peak <- hwm
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-peak
	}
}
