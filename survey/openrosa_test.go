package survey

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"io"
	"testing"
)

// TestCollectSettings: the QR payload is what Collect's scanner reads:
// base64 of zlib'd JSON with general (the server URL), admin and project.
func TestCollectSettings(t *testing.T) {
	s, err := CollectSettings("http://10.0.0.2:8080/key/abc.def", "camp", "Amina")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	z, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		General map[string]string `json:"general"`
		Admin   map[string]any    `json:"admin"`
		Project map[string]string `json:"project"`
	}
	if err := json.Unmarshal(js, &v); err != nil || v.General["server_url"] != "http://10.0.0.2:8080/key/abc.def" || v.Admin == nil ||
		v.Project["name"] != "camp (Amina)" || v.General["form_update_mode"] != "match_exactly" {
		t.Fatalf("%s: %v", js, err)
	}
	if _, err := CollectQR("http://10.0.0.2:8080/key/abc.def", "camp", ""); err != nil {
		t.Fatal(err)
	}
}
