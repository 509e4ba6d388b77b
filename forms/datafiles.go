package forms

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tessera-survey/tessera/forms/xpath"
)

// table is a CSV attachment read for pulldata(): its header and rows.
type table struct {
	cols []string
	rows [][]string
}

func readTable(data []byte) (*table, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("no header row: %w", err)
	}
	t := &table{}
	for _, h := range head {
		t.cols = append(t.cols, strings.TrimSpace(h))
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		t.rows = append(t.rows, rec)
	}
}

// lookup is pulldata(): the column of the first row whose key column
// holds key ("" when none).
func (t *table) lookup(col, keyCol, key string) string {
	ci, ki := -1, -1
	for i, c := range t.cols {
		if c == col {
			ci = i
		}
		if c == keyCol {
			ki = i
		}
	}
	if ci < 0 || ki < 0 {
		return ""
	}
	for _, r := range t.rows {
		if ki < len(r) && strings.TrimSpace(r[ki]) == key && ci < len(r) {
			return r[ci]
		}
	}
	return ""
}

// pulldata(file, column, key column, key) reads a CSV attachment.
func (in *Instance) pulldata(_ *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if len(args) != 4 {
		return xpath.Value{}, fmt.Errorf("%w: pulldata(file, column, key column, key)", xpath.ErrArgs)
	}
	t := in.Form.tables[strings.TrimSuffix(args[0].AsString(), ".csv")]
	if t == nil {
		return xpath.Str(""), nil
	}
	return xpath.Str(t.lookup(args[1].AsString(), args[2].AsString(), strings.TrimSpace(args[3].AsString()))), nil
}

// readChoicesFile reads a select_one_from_file attachment: CSV, XML (an
// ODK secondary instance: <root><item>...) or GeoJSON (features, their id
// and title; the geometry as ODK writes points).
func readChoicesFile(name string, data []byte, valueCol, labelCol string) ([]Choice, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".xml":
		return readChoicesXML(data, valueCol, labelCol)
	case ".geojson":
		return readChoicesGeoJSON(data, valueCol, labelCol)
	}
	return readChoicesCSV(data, valueCol, labelCol)
}

func readChoicesXML(data []byte, valueCol, labelCol string) ([]Choice, error) {
	if valueCol == "" {
		valueCol = "name"
	}
	if labelCol == "" {
		labelCol = "label"
	}
	root, err := parseXML(data)
	if err != nil {
		return nil, err
	}
	var out []Choice
	for _, item := range root.children("item") {
		c := Choice{Row: item.line, Label: Text{}, Extra: map[string]string{}}
		for _, f := range item.kids {
			v := strings.TrimSpace(f.text.String())
			switch f.local {
			case valueCol:
				c.Name = v
			case labelCol:
				c.Label[""] = v
			default:
				c.Extra[f.local] = v
			}
		}
		if c.Name == "" {
			return nil, fmt.Errorf("line %d: an item without %s", item.line, valueCol)
		}
		out = append(out, c)
	}
	return out, nil
}

type geoJSON struct {
	Type     string `json:"type"`
	Features []struct {
		ID         json.RawMessage `json:"id"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties map[string]any  `json:"properties"`
	} `json:"features"`
}

func readChoicesGeoJSON(data []byte, valueCol, labelCol string) ([]Choice, error) {
	if valueCol == "" {
		valueCol = "id"
	}
	if labelCol == "" {
		labelCol = "title"
	}
	var g geoJSON
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("not GeoJSON: %w", err)
	}
	if g.Type != "FeatureCollection" {
		return nil, fmt.Errorf("not a GeoJSON FeatureCollection (type %q)", g.Type)
	}
	var out []Choice
	for i, f := range g.Features {
		c := Choice{Row: i + 1, Label: Text{}, Extra: map[string]string{}}
		props := map[string]string{}
		for k, v := range f.Properties {
			props[k] = fmt.Sprint(v)
		}
		if len(f.ID) > 0 {
			var id any
			if json.Unmarshal(f.ID, &id) == nil && id != nil {
				props["id"] = fmt.Sprint(id)
			}
		}
		geo, err := odkGeometry(f.Geometry)
		if err != nil {
			return nil, fmt.Errorf("feature %d: %w", i+1, err)
		}
		props["geometry"] = geo
		c.Name = props[valueCol]
		c.Label[""] = props[labelCol]
		for k, v := range props {
			if k != valueCol && k != labelCol {
				c.Extra[k] = v
			}
		}
		if c.Name == "" {
			return nil, fmt.Errorf("feature %d has no %s", i+1, valueCol)
		}
		out = append(out, c)
	}
	return out, nil
}

// odkGeometry writes a GeoJSON point, line or polygon as ODK's
// "lat lon alt acc; ..." (GeoJSON holds lon, lat).
func odkGeometry(raw json.RawMessage) (string, error) {
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return "", fmt.Errorf("geometry: %w", err)
	}
	point := func(p []float64) string {
		if len(p) < 2 {
			return ""
		}
		alt := 0.0
		if len(p) > 2 {
			alt = p[2]
		}
		return strconv.FormatFloat(p[1], 'f', -1, 64) + " " + strconv.FormatFloat(p[0], 'f', -1, 64) + " " + strconv.FormatFloat(alt, 'f', -1, 64) + " 0"
	}
	join := func(ps [][]float64) string {
		parts := make([]string, len(ps))
		for i, p := range ps {
			parts[i] = point(p)
		}
		return strings.Join(parts, "; ")
	}
	switch g.Type {
	case "Point":
		var p []float64
		if err := json.Unmarshal(g.Coordinates, &p); err != nil {
			return "", fmt.Errorf("point: %w", err)
		}
		return point(p), nil
	case "LineString":
		var ps [][]float64
		if err := json.Unmarshal(g.Coordinates, &ps); err != nil {
			return "", fmt.Errorf("line: %w", err)
		}
		return join(ps), nil
	case "Polygon":
		var rings [][][]float64
		if err := json.Unmarshal(g.Coordinates, &rings); err != nil || len(rings) == 0 {
			return "", fmt.Errorf("polygon: %v", err)
		}
		return join(rings[0]), nil
	}
	return "", fmt.Errorf("geometry type %q (Point, LineString or Polygon)", g.Type)
}
