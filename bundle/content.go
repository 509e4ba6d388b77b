package bundle

import (
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/syncengine"
)

// Content is what a device's bundle holds.
type Content struct {
	Out      syncengine.Outgoing
	ReplyKey []byte   // X25519 public key the reply is sealed to
	Forms    []string // form versions the device holds ("id@version")
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
}
