package forms

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tessera-survey/tessera/syncengine"
	"github.com/tessera-survey/tessera/syncengine/memstore"
)

const placesXML = `<?xml version="1.0"?>
<root>
  <item><name>camp_a</name><label>Camp A</label><zone>north</zone></item>
  <item><name>camp_b</name><label>Camp B</label><zone>south</zone></item>
</root>`

const areasGeoJSON = `{"type": "FeatureCollection", "features": [
  {"type": "Feature", "id": "w1", "geometry": {"type": "Point", "coordinates": [36.8, -1.3]}, "properties": {"title": "Well 1"}},
  {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[36.8, -1.3], [36.9, -1.3], [36.9, -1.2], [36.8, -1.3]]]},
   "properties": {"id": "b2", "title": "Block 2"}}]}`

const pricesCSV = "name,price\nmaize,12\nbeans,30\n"

// TestAttachmentsRun (issue 15): choices from XML and GeoJSON files are
// the choices the engine checks, and pulldata() reads a CSV attachment;
// a file that does not parse is a problem at the row naming it.
func TestAttachmentsRun(t *testing.T) {
	book := xlsx(t, map[string][][]string{
		"survey": {
			{"type", "name", "label", "calculation", "appearance"},
			{"select_one_from_file places.xml", "place", "Place", "", ""},
			{"select_multiple_from_file areas.geojson", "areas", "Areas", "", ""},
			{"text", "crop", "Crop", "", ""},
			{"calculate", "price", "", "pulldata('prices', 'price', 'name', ${crop})", ""},
			{"select_one fruits", "fruit", "Fruit", "", "search('fruits')"},
		},
		"choices":  {{"list_name", "name", "label"}, {"fruits", "name_key", "name"}},
		"settings": {{"form_id", "version"}, {"files", "1"}},
	}, "survey", "choices", "settings")
	files := []File{{Name: "places.xml", Data: []byte(placesXML)}, {Name: "areas.geojson", Data: []byte(areasGeoJSON)},
		{Name: "prices.csv", Data: []byte(pricesCSV)}, {Name: "fruits.csv", Data: []byte("name_key,name\nmango,Mango\napple,Apple\n")}}
	ctx := context.Background()
	reg := NewRegistry(memstore.New())
	info, _, err := reg.PublishWith(ctx, book, files, "files", "", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewRegistry(reg.store).Form(ctx, info.Key())
	if err != nil {
		t.Fatal(err)
	}
	if cs := f.ChoicesFor(f.QuestionAt("place")); len(cs) != 2 || cs[1].Label[""] != "Camp B" || cs[1].Extra["zone"] != "south" {
		t.Fatalf("XML choices: %+v", cs)
	}
	cs := f.ChoicesFor(f.QuestionAt("areas"))
	if len(cs) != 2 || cs[0].Name != "w1" || cs[1].Name != "b2" || cs[1].Label[""] != "Block 2" ||
		!strings.HasPrefix(cs[0].Extra["geometry"], "-1.3 36.8 ") || strings.Count(cs[1].Extra["geometry"], ";") != 3 {
		t.Fatalf("GeoJSON choices: %+v", cs)
	}
	for _, c := range []struct {
		ans  Answers
		want []string
	}{
		{vals("place", "camp_a", "areas", "w1 b2"), nil},
		{vals("place", "camp_c"), []string{"place:choice"}},
		{vals("areas", "w1 nowhere"), []string{"areas:choice"}},
		{vals("fruit", "apple"), nil},
		{vals("fruit", "name_key"), []string{"fruit:choice"}},
	} {
		if got := codes(NewInstance(f, c.ans, nil).Validate("")); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%v: %v, want %v", c.ans, got, c.want)
		}
	}
	calc, err := NewInstance(f, vals("crop", "beans"), nil).Calculate()
	if err != nil || calc["price"] != syncengine.TextValue("30") {
		t.Fatalf("pulldata: %v %v", calc, err)
	}
	calc, err = NewInstance(f, vals("crop", "rice"), nil).Calculate()
	if err != nil || calc["price"] != syncengine.TextValue("") {
		t.Fatalf("pulldata of a key not in the file: %v %v", calc, err)
	}

	if _, _, err := reg.PublishWith(ctx, book, files[:3], "files", "", time.Now(), nil); err == nil || !strings.Contains(err.Error(), "fruits.csv") {
		t.Fatalf("the search() file may not be left out: %v", err)
	}
	bad := append([]File{}, files...)
	bad[0] = File{Name: "places.xml", Data: []byte("<root><item><name>x</name>")}
	_, _, err = reg.PublishWith(ctx, book, bad, "files", "", time.Now(), nil)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Row != 2 || !strings.Contains(ps[0].Msg, "places.xml") || !strings.Contains(ps[0].Msg, "line") {
		t.Fatalf("a broken XML choices file: %v", err)
	}
}

// TestMediaLabelsArePublished (issue 15): the images and audio a form's
// labels name (questions and choices, every language) are its attachments:
// publishing without one is a problem at its row.
func TestMediaLabelsArePublished(t *testing.T) {
	book := xlsx(t, map[string][][]string{
		"survey": {
			{"type", "name", "label", "image", "audio::French (fr)"},
			{"select_one yn", "ok", "OK?", "ok.png", "ok-fr.mp3"},
		},
		"choices":  {{"list_name", "name", "label", "image"}, {"yn", "yes", "Yes", "yes.png"}, {"yn", "no", "No", ""}},
		"settings": {{"form_id", "version"}, {"media", "1"}},
	}, "survey", "choices", "settings")
	ctx := context.Background()
	reg := NewRegistry(memstore.New())
	all := []File{{Name: "ok.png", Data: []byte("png")}, {Name: "ok-fr.mp3", Data: []byte("mp3")}, {Name: "yes.png", Data: []byte("png")}}
	_, _, err := reg.PublishWith(ctx, book, all[:2], "media", "", time.Now(), nil)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(ps[0].Msg, "yes.png") || ps[0].Row != 2 {
		t.Fatalf("a choice's image left out: %v", err)
	}
	info, _, err := reg.PublishWith(ctx, book, all, "media", "", time.Now(), nil)
	if err != nil || len(info.Files) != 3 {
		t.Fatalf("publish with its media: %v %+v", err, info.Files)
	}
}
