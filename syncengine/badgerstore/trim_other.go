//go:build !linux

package badgerstore

// trimMapped is Linux's (and Android's) only.
func trimMapped(string, []string, bool) {}
