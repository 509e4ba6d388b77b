package ui

import "testing"

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
