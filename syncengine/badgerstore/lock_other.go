//go:build !unix

package badgerstore

// withDirLock runs fn. Badger's directory lock is flock-based on Unix
// only; elsewhere the caller must make sure the store is not open.
func withDirLock(dir string, fn func() error) error { return fn() }
