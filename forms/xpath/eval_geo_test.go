package xpath

import (
	"math"
	"testing"
)

// TestGeoMeasures: area() (and its older name enclosed-area()) and
// distance() measure on a sphere of the WGS84 equatorial radius.
func TestGeoMeasures(t *testing.T) {
	// One degree of longitude on the equator, and a square of 0.01°.
	if v, _ := distance(nil, []Value{Str("0 0; 0 1")}); math.Abs(v.AsNumber()-111319.49) > 1 {
		t.Fatalf("distance of 1° on the equator: %v", v.AsNumber())
	}
	sq := Str("0 0; 0 0.01; 0.01 0.01; 0.01 0; 0 0")
	a, _ := area(nil, []Value{sq})
	if want := 1113.19 * 1113.19; math.Abs(a.AsNumber()-want)/want > 0.001 {
		t.Fatalf("area of a 0.01° square: %v, want about %v", a.AsNumber(), want)
	}
	if v, _ := area(nil, []Value{Str("0 0; 0 1")}); v.AsNumber() != 0 {
		t.Fatalf("area of a line: %v", v.AsNumber())
	}
}
