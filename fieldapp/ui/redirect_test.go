package ui

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLocalPath (issue 13, finding 14): /language's next= may only send
// back to a page of this UI; "/\evil" was an open redirect.
func TestLocalPath(t *testing.T) {
	for next, want := range map[string]bool{
		"/forms": true, "/interview/x?notice=ok": true, "/": true,
		"": false, "forms": false, "//evil.example": false, `/\evil.example`: false, `/a\b`: false,
		"https://evil.example": false, "/\tx": false, "/x\r\nLocation: y": false,
	} {
		if got := localPath(next); got != want {
			t.Errorf("localPath(%q) = %v, want %v", next, got, want)
		}
	}
}

// TestUnlockRefusesOtherPages (issue 13, finding 11): a page of another
// site open in the phone's browser cannot post PIN guesses to /unlock.
func TestUnlockRefusesOtherPages(t *testing.T) {
	u := &UI{hosts: map[string]bool{"127.0.0.1:8081": true}}
	for _, tc := range []struct {
		origin, site string
		want         bool
	}{
		{"", "", true}, {"http://127.0.0.1:8081", "same-origin", true}, {"http://127.0.0.1:8081", "", true},
		{"https://evil.example", "cross-site", false}, {"https://evil.example", "", false}, {"", "cross-site", false},
		{"null", "", false}, {"null", "same-origin", true}, {"http://127.0.0.1:9999", "same-site", false}, {"http://127.0.0.1:9999", "", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8081/unlock", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		if got := u.sameOrigin(r); got != tc.want {
			t.Errorf("Origin %q, Sec-Fetch-Site %q: %v, want %v", tc.origin, tc.site, got, tc.want)
		}
	}
}
