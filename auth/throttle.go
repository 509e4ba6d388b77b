package auth

import (
	"sync"
	"time"
)

// Sign-in throttling. After freeFailures wrong passwords for one user name,
// each further attempt waits out a lock that doubles with every failure
// (from a second to maxLock), checked before any password is hashed: a
// guesser gets a handful of tries an hour instead of twelve a second, and
// the user signs in again once the lock has passed. The state is in
// memory: a restart forgives, which costs an attacker a restart each time.
const (
	freeFailures = 5
	maxLock      = 15 * time.Minute
	forgetAfter  = time.Hour
)

type failures struct {
	n     int
	until time.Time // no attempt before
	last  time.Time
}

type throttle struct {
	mu sync.Mutex
	m  map[string]*failures
}

// wait reports how long user must wait before an attempt (0: go ahead).
func (t *throttle) wait(user string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[user]
	if f == nil || now.Sub(f.last) > forgetAfter {
		return 0
	}
	return max(0, f.until.Sub(now))
}

// failed counts a wrong password.
func (t *throttle) failed(user string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*failures{}
	}
	if len(t.m) > 100000 { // bounded: forget the old ones
		for k, f := range t.m {
			if now.Sub(f.last) > forgetAfter {
				delete(t.m, k)
			}
		}
	}
	f := t.m[user]
	if f == nil || now.Sub(f.last) > forgetAfter {
		f = &failures{}
		t.m[user] = f
	}
	f.n++
	f.last = now
	if f.n >= freeFailures {
		lock := min(time.Second<<min(f.n-freeFailures, 20), maxLock)
		f.until = now.Add(lock)
	}
}

// succeeded forgets a user's failures.
func (t *throttle) succeeded(user string) {
	t.mu.Lock()
	delete(t.m, user)
	t.mu.Unlock()
}
