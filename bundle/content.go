package bundle

import (
	"fmt"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// Content is what a device's (or a hub's) bundle holds.
type Content struct {
	Out      syncengine.Outgoing
	ReplyKey []byte   // X25519 public key the reply is sealed to
	Forms    []string // form versions the device holds ("id@version")
	// From a hub: the scopes of the records its pushes relay, and the
	// devices that wiped themselves at the hub.
	Scopes   []Scope
	Wiped    []string
	Reported []auth.Device // devices the hub enrolled itself
}

// Scope is the project and team of a record.
type Scope struct {
	Record        syncengine.RecordID
	Project, Team string
}

// Form is a form version with its files, as a reply carries it.
type Form struct {
	Info  forms.Info
	XLSX  []byte
	Files []forms.File
}

// Answer is what a reply holds.
type Answer struct {
	Reply syncengine.Reply
	Forms []Form
	// To a hub: the scopes of the pages' records, and the upstream's
	// devices of the hub's scope.
	Scopes  []Scope
	Devices []auth.Device
}

// Split cuts pushes into groups whose encoded size (size reports it) fits
// limit, in order: one group, maybe empty, when all fit (a reply still
// brings the server's changes).
func Split(pushes []syncengine.Push, limit int, size func([]syncengine.Push) (int, error)) ([][]syncengine.Push, error) {
	var groups [][]syncengine.Push
	rest := pushes
	for len(rest) > 0 || groups == nil {
		n := len(rest)
		for {
			got, err := size(rest[:n])
			if err != nil {
				return nil, err
			}
			if got <= limit {
				break
			}
			if n <= 1 {
				return nil, fmt.Errorf("bundle: one batch of changes is larger than the %d bytes a part may hold", limit)
			}
			n /= 2
		}
		groups = append(groups, rest[:n])
		rest = rest[n:]
	}
	return groups, nil
}
