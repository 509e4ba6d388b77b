package wire

import (
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/syncengine"
)

func TestChangeRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rep := syncengine.ReplicaID{1, byte(rapid.IntRange(1, 255).Draw(t, "r"))}
		c := syncengine.Change{
			Record: syncengine.NewRecordID(), Form: rapid.StringMatching(`[a-z]{1,8}(@[0-9])?`).Draw(t, "form"),
			Dot: syncengine.Dot{Replica: rep, Counter: rapid.Uint64Min(1).Draw(t, "counter")},
			HLC: syncengine.HLC(rapid.Uint64().Draw(t, "hlc")),
		}
		for i := range rapid.IntRange(0, 3).Draw(t, "ctx") {
			c.Context = c.Context.Add(syncengine.Dot{Replica: syncengine.ReplicaID{2, byte(i)}, Counter: uint64(i + 1)})
		}
		for i := range rapid.IntRange(1, 5).Draw(t, "fields") {
			var v syncengine.Value
			switch rapid.IntRange(0, 4).Draw(t, "kind") {
			case 1:
				v = syncengine.TextValue(rapid.String().Draw(t, "s"))
			case 2:
				v = syncengine.IntValue(rapid.Int64().Draw(t, "i"))
			case 3:
				v = syncengine.DecimalValue(rapid.Float64().Draw(t, "f"))
			case 4:
				v = syncengine.BoolValue(rapid.Bool().Draw(t, "b"))
			}
			c.Fields = append(c.Fields, syncengine.FieldWrite{Name: string(rune('a' + i)), Value: v})
		}
		got, err := ChangeFrom(ChangeTo(&c))
		if err != nil {
			t.Fatal(err)
		}
		if got.Record != c.Record || got.Form != c.Form || got.Dot != c.Dot || got.HLC != c.HLC || !slices.Equal(got.Context, c.Context) ||
			!slices.EqualFunc(got.Fields, c.Fields, func(a, b syncengine.FieldWrite) bool { return a.Name == b.Name && a.Value.Equal(b.Value) }) {
			t.Fatalf("round trip changed the change:\n%+v\n%+v", c, got)
		}
	})
}

func TestValueFromRejectsUnknownKind(t *testing.T) {
	if _, err := ValueFrom(&tesserav1.Field{Name: "q", Kind: 99}); err == nil {
		t.Fatal("an unknown kind was accepted")
	}
	v, err := ValueFrom(&tesserav1.Field{Name: "q", Kind: tesserav1.Kind_KIND_DECIMAL, Decimal: math.Inf(1)})
	if err != nil || !math.IsInf(v.Num, 1) {
		t.Fatalf("decimal: %v %v", v, err)
	}
}
