package fieldapp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect/v2"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/internal/wire"
	"github.com/tessera-survey/tessera/syncengine"
)

// What a device keeps of what it sent is its project's decision (delete
// after send, retention), sent with every pull. It is applied at the end
// of a sync, once records and files are acknowledged: a record with a
// write or a file the server does not hold yet is never touched, so the
// policy can only take away what the server has.

// settingHoldings is the holdings last reported, so an unchanged device
// does not report again.
const settingHoldings = "holdings.reported"

// KeepResult says what the project's policy did at the end of a sync.
type KeepResult struct {
	Removed int `json:"removed"` // records whose answers left the device now
	Holding int `json:"holding"` // records that still hold answers here
	Unsent  int `json:"unsent"`  // of those, with something the server does not hold yet
	// RemovedTotal: records on the device that hold no answer (removed
	// now or before, and drafts not yet answered).
	RemovedTotal int `json:"removed_total"`
}

// keep applies the project's policy (st, from the sync's last page) and
// tells the server what is left. now is the server's time from that page:
// a phone's clock is often wrong, and one dated years ahead must not age
// every record out. With no policy it does nothing (and costs nothing).
func (d *Device) keep(ctx context.Context, c *wire.Client, st syncengine.ServerState, now time.Time) (*KeepResult, error) {
	dev, err := d.DeviceID(ctx)
	if err != nil {
		return nil, err
	}
	_, team, err := d.Enrollment(ctx)
	if err != nil {
		return nil, err
	}
	mine := func(rec *syncengine.Record) bool {
		return syncengine.ParseAssignment(rec.Assigned()).Names(dev, team)
	}
	unassigned := 0
	if !st.TeamRecords {
		if unassigned, err = d.dropUnassigned(ctx, mine); err != nil {
			return nil, err
		}
	}
	if !st.DeleteAfterSend && st.RetentionDays <= 0 {
		if unassigned > 0 {
			return &KeepResult{Removed: unassigned}, nil
		}
		return nil, nil
	}
	queued := map[syncengine.RecordID]bool{}
	err = d.store.View(ctx, func(tx syncengine.ReadTx) error {
		return tx.ScanMeta(metaOutbox, func(key string, _ []byte) error {
			rid, _, _ := strings.Cut(strings.TrimPrefix(key, metaOutbox), "/")
			if id, err := syncengine.ParseRecordID(rid); err == nil {
				queued[id] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	me := d.rep.ID()
	cutoff := int64(-1)
	if st.RetentionDays > 0 && !now.IsZero() {
		cutoff = now.Add(-time.Duration(st.RetentionDays) * 24 * time.Hour).UnixMilli()
	}
	waiting := 0 // records sent whose files are not all uploaded
	pick := func(rec *syncengine.Record) bool {
		switch {
		case queued[rec.ID]:
			waiting++
			return false
		case mine(rec):
			return false // assigned here for a follow-up
		case cutoff >= 0 && syncengine.LastWrite(rec).Millis() < cutoff:
			return true
		case st.DeleteAfterSend && rec.Status() == "finalized":
			// An interview this device sent; a record pulled back for a
			// follow-up (answers all written elsewhere) stays until the
			// enumerator sends it again.
			return wrote(rec, me)
		}
		return false
	}
	fs, err := d.rep.Forget(ctx, pick)
	if err != nil {
		return nil, err
	}
	res := &KeepResult{Removed: fs.Forgotten + unassigned, Holding: fs.Holding, Unsent: fs.Unsent + waiting, RemovedTotal: fs.Stubs}
	return res, d.reportHoldings(ctx, c, res)
}

// dropUnassigned lets go of the records this device received only by an
// assignment that no longer names it or its team (a lead moved the
// follow-up elsewhere, or closed it): it never wrote to them, so they were
// never its own. Only the records an assignment ever reached are read.
func (d *Device) dropUnassigned(ctx context.Context, mine func(*syncengine.Record) bool) (int, error) {
	ids, err := d.rep.AssignedRecords(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	me := d.rep.ID()
	return d.rep.ForgetRecords(ctx, ids, func(rec *syncengine.Record) bool {
		return !mine(rec) && !rec.WroteBy(me)
	})
}

// wrote reports whether one of rec's answers is a write of replica me.
func wrote(rec *syncengine.Record, me syncengine.ReplicaID) bool {
	for name, reg := range rec.Fields {
		if syncengine.Reserved(name) {
			continue
		}
		for _, e := range reg.Entries {
			if e.Dot.Replica == me {
				return true
			}
		}
	}
	return false
}

// reportHoldings tells the server what is left, when it changed. A server
// too old to take the report is not an error.
func (d *Device) reportHoldings(ctx context.Context, c *wire.Client, k *KeepResult) error {
	if c == nil {
		return nil // sync by file: nobody to tell
	}
	note := fmt.Sprintf("%d/%d/%d", k.Holding, k.Unsent, k.RemovedTotal)
	last, err := d.rep.Setting(ctx, settingHoldings)
	if err != nil || last == note {
		return err
	}
	_, err = c.Auth().ReportHoldings(ctx, &tesserav1.ReportHoldingsRequest{
		Records: uint32(k.Holding), Unsent: uint32(k.Unsent), Removed: uint32(k.RemovedTotal)})
	if connect.CodeOf(err) == connect.CodeUnimplemented {
		return nil
	}
	if err != nil {
		return fmt.Errorf("report holdings: %w", err)
	}
	return d.rep.SetSetting(ctx, settingHoldings, note)
}
