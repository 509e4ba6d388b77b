//go:build windows

package fieldapp

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// lockAttempts holds an exclusive lock on dir's attempt file until the
// returned function is called (see pinlock_unix.go).
func lockAttempts(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "unlock.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	h := windows.Handle(f.Fd())
	var ov windows.Overlapped
	if err := windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ov); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		windows.UnlockFileEx(h, 0, 1, 0, &ov)
		f.Close()
	}, nil
}
