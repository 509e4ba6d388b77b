//go:build unix

package badgerstore

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// withDirLock runs fn holding the lock Badger takes on a store directory
// (flock of the directory itself), so no process opens the store
// meanwhile.
func withDirLock(dir string, fn func() error) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("%s: %w", dir, ErrLocked)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}
