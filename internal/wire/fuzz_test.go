package wire

import (
	"testing"

	"google.golang.org/protobuf/proto"

	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/syncengine"
)

// FuzzPushRequest feeds arbitrary bytes through what the server does with a
// push before merging: decode, convert, validate. Nothing may panic, and a
// request that converts must carry only valid changes after Validate.
func FuzzPushRequest(f *testing.F) {
	rep := syncengine.ReplicaID{1, 2, 3}
	c := syncengine.Change{Record: syncengine.NewRecordID(), Form: "f", Dot: syncengine.Dot{Replica: rep, Counter: 1},
		Fields: []syncengine.FieldWrite{{Name: "q", Value: syncengine.TextValue("x")}}}
	seed, _ := proto.Marshal(&tesserav1.PushRequest{Replica: rep[:], Through: 1, Changes: []*tesserav1.Change{ChangeTo(&c)}})
	f.Add(seed)
	seed2, _ := proto.Marshal(&tesserav1.PushRequest{Replica: rep[:], Through: 1, Batch: EncodeBatch([]syncengine.Change{c})})
	f.Add(seed2)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m tesserav1.PushRequest
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		p, err := PushFrom(&m)
		if err != nil {
			return
		}
		for i := range p.Changes {
			_ = p.Changes[i].Validate()
		}
	})
}

// FuzzPullResponse: what a device does with a server's page.
func FuzzPullResponse(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m tesserav1.PullResponse
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		if cs, err := changesFrom(m.Changes); err == nil {
			for i := range cs {
				_ = cs[i].Validate()
			}
		}
		_, _ = DotFrom(m.CursorDot, "cursor")
	})
}
