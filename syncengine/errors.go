package syncengine

import "errors"

// Sentinel errors. Adapters map them to protocol codes in one table.
var (
	// ErrNotFound: no record (or meta entry) with that key.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: input that breaks the model's rules (bad id, field name...).
	ErrInvalid = errors.New("invalid input")
	// ErrTooLarge: a batch over the count or byte limit.
	ErrTooLarge = errors.New("too large")
	// ErrNotInitialized: a store without a replica id.
	ErrNotInitialized = errors.New("store not initialized")
	// ErrExists: initializing a store that already has a replica id.
	ErrExists = errors.New("already exists")
	// ErrNoConflict: resolving a field or record that is not in conflict.
	ErrNoConflict = errors.New("no conflict")
	// ErrDeleted: editing a record that is deleted.
	ErrDeleted = errors.New("record is deleted")
	// ErrCorrupt: stored bytes that do not decode.
	ErrCorrupt = errors.New("corrupt data")
)
