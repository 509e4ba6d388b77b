package syncengine_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tessera-survey/tessera/syncengine"
)

// Oracle for MarshalNewRecord: on random valid changes (contexts before,
// around and after the change's own dot, deletes, statuses, every kind of
// value) it decodes to exactly the record Apply builds from empty.
func TestMarshalNewRecordOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 14))
	replicas := []syncengine.ReplicaID{{1}, {2}, {3}, {0xff}}
	values := []syncengine.Value{syncengine.IntValue(-7), syncengine.TextValue("héllo"), syncengine.DecimalValue(2.5),
		syncengine.BoolValue(true), syncengine.BoolValue(false), {}, syncengine.TextValue("")}
	for i := range 5000 {
		c := syncengine.Change{Record: syncengine.NewRecordID(), Form: fmt.Sprintf("f%d@1", rng.IntN(3)),
			HLC: syncengine.HLC(rng.Uint64N(1 << 50)),
			Dot: syncengine.Dot{Replica: replicas[rng.IntN(len(replicas))], Counter: 1 + rng.Uint64N(6)}}
		var ctx []syncengine.Dot
		for range rng.IntN(5) {
			d := syncengine.Dot{Replica: replicas[rng.IntN(len(replicas))], Counter: 1 + rng.Uint64N(6)}
			if d != c.Dot {
				ctx = append(ctx, d)
			}
		}
		c.Context = syncengine.NewDotSet(ctx...)
		for j := range 1 + rng.IntN(8) {
			c.Fields = append(c.Fields, syncengine.FieldWrite{Name: fmt.Sprintf("q%d", j), Value: values[rng.IntN(len(values))]})
		}
		switch rng.IntN(4) {
		case 0:
			c.Fields = append(c.Fields, syncengine.FieldWrite{Name: syncengine.DeletedField, Value: syncengine.BoolValue(rng.IntN(2) == 0)})
		case 1:
			c.Fields = append(c.Fields, syncengine.FieldWrite{Name: syncengine.StatusField, Value: syncengine.TextValue("finalized")})
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("case %d: the generator made an invalid change: %v", i, err)
		}
		want := syncengine.EmptyRecord(c.Record)
		want.Apply(&c)
		got, err := syncengine.UnmarshalRecord(c.Record, syncengine.MarshalNewRecord(nil, &c))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !got.Equal(want) {
			t.Fatalf("case %d: change %+v\nfast %+v\nApply %+v", i, c, got, want)
		}
	}
}
