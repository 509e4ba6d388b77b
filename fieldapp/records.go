package fieldapp

import (
	"context"
	"errors"

	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// The records API: what a shell (the command line, the web UI, a native
// app) does with records, without reaching into the replica.

// ID is the device's replica id.
func (d *Device) ID() string { return d.rep.ID().String() }

// Create starts a record of form (a bare form id means its latest version
// here) with the given answers.
func (d *Device) Create(ctx context.Context, form string, fields []syncengine.FieldWrite) (syncengine.RecordID, error) {
	return d.rep.Create(ctx, d.FormKey(ctx, form), fields)
}

// Import creates records in bulk, in halves when one transaction of all of
// them is larger than the device store takes at once (its memtables are
// small to keep a phone's memory low).
func (d *Device) Import(ctx context.Context, recs []syncengine.NewRecord) error {
	_, err := d.rep.CreateMany(ctx, recs)
	if errors.Is(err, syncengine.ErrTooLarge) && len(recs) > 1 {
		if err := d.Import(ctx, recs[:len(recs)/2]); err != nil {
			return err
		}
		return d.Import(ctx, recs[len(recs)/2:])
	}
	return err
}

// Set writes answers to a record (and, when its form keeps an audit,
// the audit's "question" events).
func (d *Device) Set(ctx context.Context, id syncengine.RecordID, fields []syncengine.FieldWrite) error {
	return d.audited(ctx, id, fields)
}

// Delete deletes a record (a causal write: it syncs like any other).
func (d *Device) Delete(ctx context.Context, id syncengine.RecordID) error {
	return d.rep.Delete(ctx, id)
}

// Resolve settles conflicting answers with the values given.
func (d *Device) Resolve(ctx context.Context, id syncengine.RecordID, fields []syncengine.FieldWrite) error {
	return d.rep.Resolve(ctx, id, fields)
}

// ResolveDelete settles a delete conflict: restore keeps the record.
func (d *Device) ResolveDelete(ctx context.Context, id syncengine.RecordID, restore bool) error {
	return d.rep.ResolveDelete(ctx, id, restore)
}

// Record returns a record as stored.
func (d *Device) Record(ctx context.Context, id syncengine.RecordID) (*syncengine.Record, error) {
	return d.rep.Record(ctx, id)
}

// Records calls fn for every record, in id order (syncengine.ErrStop
// from fn ends early).
// Removed returns the records whose answers left this device after they
// were sent (the project's delete-after-send or retention); one may hold
// answers written elsewhere since.
func (d *Device) Removed(ctx context.Context) (map[syncengine.RecordID]bool, error) {
	return d.rep.Forgotten(ctx)
}

func (d *Device) Records(ctx context.Context, fn func(*syncengine.Record) error) error {
	return d.rep.Records(ctx, fn)
}

// Pending is how many changes await a push to the server.
func (d *Device) Pending(ctx context.Context) (int, error) { return d.rep.Pending(ctx) }

// FormList lists the form versions on the device.
func (d *Device) FormList(ctx context.Context) ([]forms.Info, error) { return d.forms.List(ctx) }
