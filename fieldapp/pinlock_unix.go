//go:build unix

package fieldapp

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockAttempts holds an exclusive lock on dir's attempt file until the
// returned function is called: PIN attempts of every process on this
// store (the UI and the command line) run one at a time, so each reads
// the failure count the previous one wrote.
func lockAttempts(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "unlock.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
