package wire

import (
	"fmt"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/syncengine"
)

// EncodeBatch writes changes in columnar form.
func EncodeBatch(cs []syncengine.Change) *tesserav1.ChangeBatch {
	b := &tesserav1.ChangeBatch{
		Records:      make([]byte, 0, 16*len(cs)),
		Replica:      make([]uint32, len(cs)),
		CounterDelta: make([]int64, len(cs)),
		HlcDelta:     make([]int64, len(cs)),
		Form:         make([]uint32, len(cs)),
		ContextCount: make([]uint32, len(cs)),
		FieldCount:   make([]uint32, len(cs)),
	}
	replicas := map[syncengine.ReplicaID]uint32{}
	forms := map[string]uint32{}
	names := map[string]uint32{}
	rep := func(r syncengine.ReplicaID) uint32 {
		i, ok := replicas[r]
		if !ok {
			i = uint32(len(b.Replicas))
			replicas[r] = i
			b.Replicas = append(b.Replicas, append([]byte(nil), r[:]...))
		}
		return i
	}
	var prevCounter, prevHLC uint64
	for i := range cs {
		c := &cs[i]
		b.Records = append(b.Records, c.Record[:]...)
		b.Replica[i] = rep(c.Dot.Replica)
		b.CounterDelta[i] = int64(c.Dot.Counter - prevCounter)
		b.HlcDelta[i] = int64(uint64(c.HLC) - prevHLC)
		prevCounter, prevHLC = c.Dot.Counter, uint64(c.HLC)
		f, ok := forms[c.Form]
		if !ok {
			f = uint32(len(b.Forms))
			forms[c.Form] = f
			b.Forms = append(b.Forms, c.Form)
		}
		b.Form[i] = f
		b.ContextCount[i] = uint32(len(c.Context))
		for _, d := range c.Context {
			b.ContextReplica = append(b.ContextReplica, rep(d.Replica))
			b.ContextCounter = append(b.ContextCounter, d.Counter)
		}
		b.FieldCount[i] = uint32(len(c.Fields))
		for _, fw := range c.Fields {
			n, ok := names[fw.Name]
			if !ok {
				n = uint32(len(b.Names))
				names[fw.Name] = n
				b.Names = append(b.Names, fw.Name)
			}
			b.FieldName = append(b.FieldName, n)
			b.FieldKind = append(b.FieldKind, KindTo(fw.Value.Kind))
			switch fw.Value.Kind {
			case syncengine.Text:
				b.Texts = append(b.Texts, fw.Value.Str)
			case syncengine.Int:
				b.Ints = append(b.Ints, fw.Value.Int)
			case syncengine.Decimal:
				b.Decimals = append(b.Decimals, fw.Value.Num)
			case syncengine.Bool:
				b.Bools = append(b.Bools, fw.Value.Bool)
			}
		}
	}
	return b
}

// DecodeBatch reads a columnar batch. The batch is untrusted input: every
// index and count is checked, and a batch whose columns do not add up is
// rejected whole. It is long on purpose: one pass over the columns, each
// check next to the read it guards (the fuzz target drives it).
func DecodeBatch(b *tesserav1.ChangeBatch) ([]syncengine.Change, error) {
	n := len(b.GetReplica())
	bad := func(what string) error {
		return fmt.Errorf("%w: change batch: %s", syncengine.ErrInvalid, what)
	}
	if len(b.Records) != 16*n || len(b.CounterDelta) != n || len(b.HlcDelta) != n || len(b.Form) != n ||
		len(b.ContextCount) != n || len(b.FieldCount) != n {
		return nil, bad("per-change columns differ in length")
	}
	if n > syncengine.MaxBatchChanges {
		return nil, fmt.Errorf("%w: %d changes, at most %d", syncengine.ErrTooLarge, n, syncengine.MaxBatchChanges)
	}
	replicas := make([]syncengine.ReplicaID, len(b.Replicas))
	for i, r := range b.Replicas {
		id, err := replicaFrom(r, "change batch")
		if err != nil {
			return nil, err
		}
		replicas[i] = id
	}
	var sumCtx, sumFields uint64
	for i := range n {
		sumCtx += uint64(b.ContextCount[i])
		sumFields += uint64(b.FieldCount[i])
	}
	if sumCtx != uint64(len(b.ContextReplica)) || sumCtx != uint64(len(b.ContextCounter)) {
		return nil, bad("context columns do not match the counts")
	}
	if sumFields != uint64(len(b.FieldName)) || sumFields != uint64(len(b.FieldKind)) {
		return nil, bad("field columns do not match the counts")
	}
	out := make([]syncengine.Change, n)
	var counter, hlc uint64
	ci, fi, ti, ii, di, bi := 0, 0, 0, 0, 0, 0
	for i := range n {
		c := &out[i]
		copy(c.Record[:], b.Records[16*i:16*i+16])
		if int(b.Replica[i]) >= len(replicas) || int(b.Form[i]) >= len(b.Forms) {
			return nil, bad("index out of range")
		}
		counter += uint64(b.CounterDelta[i])
		hlc += uint64(b.HlcDelta[i])
		c.Dot = syncengine.Dot{Replica: replicas[b.Replica[i]], Counter: counter}
		c.HLC = syncengine.HLC(hlc)
		c.Form = b.Forms[b.Form[i]]
		if k := int(b.ContextCount[i]); k > 0 {
			c.Context = make(syncengine.DotSet, k)
			for j := range k {
				r := b.ContextReplica[ci]
				if int(r) >= len(replicas) {
					return nil, bad("context replica out of range")
				}
				c.Context[j] = syncengine.Dot{Replica: replicas[r], Counter: b.ContextCounter[ci]}
				ci++
			}
		}
		k := int(b.FieldCount[i])
		c.Fields = make([]syncengine.FieldWrite, k)
		for j := range k {
			name := b.FieldName[fi]
			if int(name) >= len(b.Names) {
				return nil, bad("field name out of range")
			}
			fw := syncengine.FieldWrite{Name: b.Names[name]}
			switch b.FieldKind[fi] {
			case tesserav1.Kind_KIND_UNSPECIFIED:
			case tesserav1.Kind_KIND_TEXT:
				if ti >= len(b.Texts) {
					return nil, bad("too few texts")
				}
				fw.Value = syncengine.TextValue(b.Texts[ti])
				ti++
			case tesserav1.Kind_KIND_INT:
				if ii >= len(b.Ints) {
					return nil, bad("too few integers")
				}
				fw.Value = syncengine.IntValue(b.Ints[ii])
				ii++
			case tesserav1.Kind_KIND_DECIMAL:
				if di >= len(b.Decimals) {
					return nil, bad("too few decimals")
				}
				fw.Value = syncengine.DecimalValue(b.Decimals[di])
				di++
			case tesserav1.Kind_KIND_BOOL:
				if bi >= len(b.Bools) {
					return nil, bad("too few booleans")
				}
				fw.Value = syncengine.BoolValue(b.Bools[bi])
				bi++
			default:
				return nil, bad("unknown value kind")
			}
			c.Fields[j] = fw
			fi++
		}
	}
	if ti != len(b.Texts) || ii != len(b.Ints) || di != len(b.Decimals) || bi != len(b.Bools) {
		return nil, bad("value columns hold more than the fields use")
	}
	return out, nil
}
