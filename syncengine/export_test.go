package syncengine

// The property tests compact logs of a few dozen entries.
func init() { compactMinEntries = 0 }
