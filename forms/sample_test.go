package forms

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tessera-survey/tessera/syncengine"
)

// TestSampleForm: the shipped questionnaire imports, in five languages, and
// its logic works on a realistic interview.
func TestSampleForm(t *testing.T) {
	b, err := os.ReadFile("../examples/forms/community-security.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b, "sample")
	if err != nil {
		t.Fatal(err)
	}
	if f.Key() != "community_security@2026.11.1" || len(f.Languages) != 5 {
		t.Fatalf("form %s languages %v", f.Key(), f.Languages)
	}
	for _, l := range []string{"Français (fr)", "Español (es)", "日本語 (ja)", "العربية (ar)"} {
		if f.Question("consent").Label.In(l, f.DefaultLanguage) == f.Question("consent").Label.In("English (en)", "") {
			t.Errorf("consent has no %s label", l)
		}
	}
	if r := f.Question("roster"); r == nil || r.Kind != KRepeat || r.RepeatCount != "${hh_size}" {
		t.Fatalf("roster: %+v", r)
	}
	if !f.Question("gbv_risk").Sensitive || f.Question("safe_day").Sensitive {
		t.Fatal("sensitive marks")
	}
	ans := Answers{
		"intro/consent": syncengine.TextValue("yes"), "household/site": syncengine.TextValue("camp_a"),
		"household/hh_size": syncengine.IntValue(2), "household/roster[a1]": syncengine.IntValue(1),
		"household/roster[a1]/member_name": syncengine.TextValue("Amina"), "household/roster[a1]/age": syncengine.IntValue(34),
		"household/roster[b2]": syncengine.IntValue(2), "household/roster[b2]/member_name": syncengine.TextValue("Yusuf"),
		"household/roster[b2]/age": syncengine.IntValue(150),
		"threats/safe_day":         syncengine.TextValue("safe"), "threats/safe_night": syncengine.TextValue("unsafe"),
		"threats/threats_faced": syncengine.TextValue("theft other"),
		"gbv/gbv_private":       syncengine.TextValue("no"),
	}
	in := NewInstance(f, ans, nil)
	calc, err := in.Calculate()
	if err != nil || calc["household/members"].String() != "2" {
		t.Fatalf("members: %v %v", calc, err)
	}
	vs := in.Validate("Français (fr)")
	got := codes(vs)
	want := []string{"household/roster[b2]/age:constraint", "threats/threat_other:required"}
	if !slices.Equal(got, want) {
		t.Fatalf("violations %v, want %v", got, want)
	}
	if !strings.Contains(vs[0].Message+vs[1].Message, "Entre 0 et 119.") {
		t.Fatalf("messages not in French: %+v", vs)
	}
}
