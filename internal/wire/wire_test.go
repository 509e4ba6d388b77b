package wire

import (
	"fmt"
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

func TestBatchRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var cs []syncengine.Change
		for i := range rapid.IntRange(0, 20).Draw(t, "n") {
			rep := syncengine.ReplicaID{1, byte(rapid.IntRange(1, 3).Draw(t, "r"))}
			c := syncengine.Change{Record: syncengine.NewRecordID(), Form: rapid.SampledFrom([]string{"a@1", "b@2"}).Draw(t, "form"),
				Dot: syncengine.Dot{Replica: rep, Counter: rapid.Uint64Range(1, 1<<40).Draw(t, "counter")},
				HLC: syncengine.HLC(rapid.Uint64().Draw(t, "hlc"))}
			for j := range rapid.IntRange(0, 3).Draw(t, "ctx") {
				c.Context = c.Context.Add(syncengine.Dot{Replica: syncengine.ReplicaID{2, byte(j)}, Counter: uint64(j + 1)})
			}
			for j := range rapid.IntRange(1, 6).Draw(t, "fields") {
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
				c.Fields = append(c.Fields, syncengine.FieldWrite{Name: fmt.Sprintf("f%d", (i+j)%4), Value: v})
			}
			cs = append(cs, c)
		}
		got, err := DecodeBatch(EncodeBatch(cs))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(cs) {
			t.Fatalf("%d changes back, want %d", len(got), len(cs))
		}
		for i := range cs {
			a, b := cs[i], got[i]
			if a.Record != b.Record || a.Form != b.Form || a.Dot != b.Dot || a.HLC != b.HLC || !slices.Equal(a.Context, b.Context) ||
				!slices.EqualFunc(a.Fields, b.Fields, func(x, y syncengine.FieldWrite) bool { return x.Name == y.Name && x.Value.Equal(y.Value) }) {
				t.Fatalf("change %d differs:\n%+v\n%+v", i, a, b)
			}
		}
	})
}

func TestDecodeBatchRejectsInconsistentColumns(t *testing.T) {
	c := syncengine.Change{Record: syncengine.NewRecordID(), Form: "f", Dot: syncengine.Dot{Replica: syncengine.ReplicaID{1}, Counter: 1},
		Fields: []syncengine.FieldWrite{{Name: "a", Value: syncengine.IntValue(1)}}}
	for name, mut := range map[string]func(b *tesserav1.ChangeBatch){
		"short records":   func(b *tesserav1.ChangeBatch) { b.Records = b.Records[:15] },
		"replica index":   func(b *tesserav1.ChangeBatch) { b.Replica[0] = 9 },
		"name index":      func(b *tesserav1.ChangeBatch) { b.FieldName[0] = 9 },
		"missing int":     func(b *tesserav1.ChangeBatch) { b.Ints = nil },
		"extra text":      func(b *tesserav1.ChangeBatch) { b.Texts = []string{"x"} },
		"field count":     func(b *tesserav1.ChangeBatch) { b.FieldCount[0] = 5 },
		"bad replica len": func(b *tesserav1.ChangeBatch) { b.Replicas[0] = []byte{1} },
	} {
		b := EncodeBatch([]syncengine.Change{c})
		mut(b)
		if _, err := DecodeBatch(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
