package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The kill -9 tests aim their kills at the sync itself. A fieldapp process
// first spends a few hundred milliseconds unlocking its store (argon2id), so
// kills at random delays of a few milliseconds land before any byte moves.
// Each trial here is of one of three kinds, in turn:
//   - push: the device has 3,000 new records (six batches); the kill comes
//     right after the k-th acknowledged batch (k random, 1 or 2), while the next are
//     in flight;
//   - pull: a fresh device pulls everything; the kill comes right after
//     the k-th page it applied;
//   - timed: a push whose kill comes at a random moment of the whole
//     window, unlock and store open included, measured on the earlier push
//     trials.
// Where a kill really landed is read from the outcome: a push landed
// mid-push when the server acknowledged some but not all of the device's
// pending changes (the device's count before and after); a pull landed mid-pull when the device had applied at least
// one page and the sync had not finished. The tests print the counts and
// require at least a quarter of the trials mid-push and a quarter mid-pull.

// crashTrials is how many kill -9 trials each crash test runs:
// TESSERA_CRASH_TRIALS (scripts/crash-test sets 200), 6 by default.
func crashTrials() int {
	if n, err := strconv.Atoi(os.Getenv("TESSERA_CRASH_TRIALS")); err == nil && n > 0 {
		return n
	}
	return 6
}

const pushTrialRecords = 3000 // six push batches of 500

var progressRe = regexp.MustCompile(`^sync: (\d+) sent, (\d+) received`)

type progressLine struct{ pushed, pulled int }

// syncProc is a `fieldapp sync --progress` running, its progress lines read
// as they come.
type syncProc struct {
	cmd   *exec.Cmd
	start time.Time
	lines chan progressLine // closed when stderr ends (the process exited)
	exit  chan error
}

func startSync(t *testing.T, dir string) *syncProc {
	t.Helper()
	_, bin := binaries(t)
	cmd := exec.Command(bin, "--data", dir, "sync", "--progress")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &syncProc{cmd: cmd, lines: make(chan progressLine, 1024), exit: make(chan error, 1)}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := progressRe.FindStringSubmatch(sc.Text()); m != nil {
				a, _ := strconv.Atoi(m[1])
				b, _ := strconv.Atoi(m[2])
				p.lines <- progressLine{a, b}
			}
		}
		close(p.lines)
		p.exit <- cmd.Wait()
	}()
	return p
}

// waitFor returns the first line satisfying ok, and false if the process
// ended first.
func (p *syncProc) waitFor(ok func(progressLine) bool) (progressLine, bool) {
	for l := range p.lines {
		if ok(l) {
			return l, true
		}
	}
	return progressLine{}, false
}

// finish drains the lines and waits for the process; it reports whether
// the sync completed.
func (p *syncProc) finish() bool {
	for range p.lines {
	}
	return <-p.exit == nil
}

// pending is how many changes the device in dir has not had acknowledged.
func pending(t *testing.T, dir string) float64 {
	t.Helper()
	var info struct{ Pending float64 }
	if err := json.Unmarshal([]byte(mustFieldapp(t, dir, "info", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	return info.Pending
}

// crashTally counts where the kills landed.
type crashTally struct {
	trials, midPush, midPull, timed int
	timedOutcome                    [3]int // before any batch was acknowledged, mid-push, after the push
	// firstAck sums, over the aimed push trials, the time from the
	// process start to the first acknowledged batch: unlock, store open
	// and one batch. Timed kills draw from twice its mean.
	firstAck time.Duration
	aimed    int
}

func (c *crashTally) String() string {
	return fmt.Sprintf("%d trials: %d mid-push, %d mid-pull; of the %d timed kills %d landed before a batch was acknowledged (unlock, store open, the first batch), %d mid-push, %d after the push",
		c.trials, c.midPush, c.midPull, c.timed, c.timedOutcome[0], c.timedOutcome[1], c.timedOutcome[2])
}

func (c *crashTally) check(t *testing.T) {
	t.Helper()
	t.Log(c)
	if c.midPush*4 < c.trials || c.midPull*4 < c.trials {
		t.Errorf("kills must land mid-push and mid-pull in at least a quarter of the trials each: %v", c)
	}
}

// crashTrial runs trial i against the server at url. kill ends the victim
// (the device's sync or the server) and, for a server, restarts it;
// pushDevice holds the records being pushed; n counts the records made.
func crashTrial(t *testing.T, i int, rng *rand.Rand, tally *crashTally, url func() string, kill func(*syncProc),
	pushDevice, scratch string, n *int) (pulled string) {
	t.Helper()
	tally.trials++
	switch i % 3 {
	case 0, 2: // push, or timed
		importN(t, pushDevice, pushTrialRecords)
		*n += pushTrialRecords
		before := pending(t, pushDevice)
		p := startSync(t, pushDevice)
		if i%3 == 0 || tally.aimed == 0 {
			// A line reports the batches counted before its round trip,
			// and two batches are in flight: killing at "pushed 500k" for
			// k <= 2 leaves at least two of the six unacknowledged.
			k := 1 + rng.IntN(2)
			var first time.Duration
			if _, ok := p.waitFor(func(l progressLine) bool {
				if l.pushed > 0 && first == 0 {
					first = time.Since(p.start)
				}
				return l.pushed >= 500*k
			}); ok {
				kill(p)
				tally.firstAck += first
				tally.aimed++
			}
		} else {
			tally.timed++
			mean := tally.firstAck / time.Duration(tally.aimed)
			time.Sleep(time.Duration(rng.Int64N(2 * int64(mean))))
			kill(p)
		}
		p.finish()
		// The device's own count: the server's head would not move for a
		// batch it had already merged when an earlier kill cut the reply.
		after := pending(t, pushDevice)
		outcome := 2
		switch {
		case after == before:
			outcome = 0
		case after > 0:
			outcome = 1
			tally.midPush++
		}
		if i%3 == 2 && tally.aimed > 0 {
			tally.timedOutcome[outcome]++
		}
	case 1: // pull
		dir := filepath.Join(scratch, fmt.Sprintf("puller-%d", i))
		mustFieldapp(t, dir, "init", "--server", url())
		p := startSync(t, dir)
		pages := max(1, min(8, *n/1000-1))
		k := 1 + rng.IntN(pages)
		if _, ok := p.waitFor(func(l progressLine) bool { return l.pulled >= 1000*k }); ok {
			kill(p)
			if !p.finish() {
				tally.midPull++
			}
		} else {
			p.finish()
		}
		return dir
	}
	return ""
}

// crashRun is one crash test's setting: a server, a device with 12,000
// records already synced, and the victim's kill.
type crashRun struct {
	tmp, dev string
	url      func() string
	kill     func(*syncProc)
	n        int
}

func newCrashRun(t *testing.T, tmp string, srv *proc) *crashRun {
	t.Helper()
	c := &crashRun{tmp: tmp, dev: filepath.Join(tmp, "dev"), n: 12000}
	mustFieldapp(t, c.dev, "init", "--server", srv.URL)
	importN(t, c.dev, c.n)
	mustFieldapp(t, c.dev, "sync")
	return c
}

// run plays every trial, then lets the syncs finish: the server holds
// every record exactly once, the last device killed mid-pull resumes and
// gets them all, and the pushing device has nothing pending.
func (c *crashRun) run(t *testing.T, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	tally := &crashTally{}
	var lastPuller string
	for i := range crashTrials() {
		if d := crashTrial(t, i, rng, tally, c.url, c.kill, c.dev, c.tmp, &c.n); d != "" {
			if lastPuller != "" {
				os.RemoveAll(lastPuller)
			}
			lastPuller = d
		}
	}
	tally.check(t)
	mustFieldapp(t, c.dev, "sync")
	if head := health(t, c.url()); head != float64(c.n) {
		t.Fatalf("server log holds %v changes, want exactly %d", head, c.n)
	}
	if lastPuller != "" {
		mustFieldapp(t, lastPuller, "sync")
		if got := len(listRecords(t, lastPuller)); got != c.n {
			t.Fatalf("device killed mid-pull holds %d records after resuming, want %d", got, c.n)
		}
	}
	if n := pending(t, c.dev); n != 0 {
		t.Fatalf("device still has %v changes pending", n)
	}
}

// TestKillDeviceMidSync kills fieldapp with SIGKILL mid-push, mid-pull and
// at random moments (see above).
func TestKillDeviceMidSync(t *testing.T) {
	tmp := t.TempDir()
	srv := startSurveyd(t, filepath.Join(tmp, "srv"), "127.0.0.1:0")
	c := newCrashRun(t, tmp, srv)
	c.url = func() string { return srv.URL }
	c.kill = func(p *syncProc) { p.cmd.Process.Kill() }
	c.run(t, 11)
}

// TestKillServerMidSync kills surveyd with SIGKILL while a device pushes
// or a fresh device pulls (see above), restarting it on the same data each
// time: nothing the server acknowledged is lost and nothing is applied
// twice.
func TestKillServerMidSync(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "srv")
	srv := startSurveyd(t, data, "127.0.0.1:0")
	listen := strings.TrimPrefix(srv.URL, "http://")
	c := newCrashRun(t, tmp, srv)
	c.url = func() string { return srv.URL }
	c.kill = func(*syncProc) {
		srv.kill()
		srv = startSurveyd(t, data, listen)
	}
	c.run(t, 12)
}
