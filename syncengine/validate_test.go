package syncengine_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tessera-survey/tessera/syncengine"
)

// A field written twice in one change is invalid, in a small change (names
// compared pairwise) and a large one (a set), wherever the two stand.
func TestValidateDuplicateFields(t *testing.T) {
	for _, n := range []int{2, 5, 32, 33, 200} {
		for _, pos := range [][2]int{{0, 1}, {0, n - 1}, {n - 2, n - 1}} {
			c := syncengine.Change{Record: syncengine.NewRecordID(), Form: "f@1", HLC: 1,
				Dot: syncengine.Dot{Replica: syncengine.NewReplicaID(), Counter: 1}}
			for i := range n {
				c.Fields = append(c.Fields, syncengine.FieldWrite{Name: fmt.Sprintf("q%d", i), Value: syncengine.IntValue(1)})
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("%d distinct fields: %v", n, err)
			}
			c.Fields[pos[1]].Name = c.Fields[pos[0]].Name
			if err := c.Validate(); !errors.Is(err, syncengine.ErrInvalid) {
				t.Errorf("%d fields, %v the same: %v, want invalid", n, pos, err)
			}
		}
	}
}
