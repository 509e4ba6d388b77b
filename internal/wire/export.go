package wire

import (
	"github.com/tessera-survey/tessera/dataset"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
	"github.com/tessera-survey/tessera/syncengine"
)

// ColumnTypeTo is the one mapping of an export column's type to its enum.
func ColumnTypeTo(t dataset.ColType) tesserav1.ColumnType {
	switch t {
	case dataset.TInt:
		return tesserav1.ColumnType_COLUMN_TYPE_INT
	case dataset.TDecimal:
		return tesserav1.ColumnType_COLUMN_TYPE_DECIMAL
	case dataset.TBool:
		return tesserav1.ColumnType_COLUMN_TYPE_BOOL
	}
	return tesserav1.ColumnType_COLUMN_TYPE_UNSPECIFIED // text
}

// SchemaTo converts an export's tables to its schema message.
func SchemaTo(tables []dataset.Table) *tesserav1.ExportSchema {
	schema := &tesserav1.ExportSchema{}
	for _, t := range tables {
		et := &tesserav1.ExportTable{Name: t.Name, Parent: t.Parent}
		for _, c := range t.Columns {
			et.Columns = append(et.Columns, &tesserav1.ExportColumn{Name: c.Name, Type: ColumnTypeTo(c.Type), Geopoint: c.Geopoint, Part: c.Part})
		}
		schema.Tables = append(schema.Tables, et)
	}
	return schema
}

// AppendRow adds a row to a columnar batch, its texts packed or not: the
// one mapping of a cell's value kind to its enum.
func AppendRow(b *tesserav1.ExportRows, cells []syncengine.Value, packed bool) {
	b.Count++
	for _, v := range cells {
		switch v.Kind {
		case syncengine.Text:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_TEXT)
			if packed {
				b.TextData = append(b.TextData, v.Str...)
				b.TextLens = append(b.TextLens, uint32(len(v.Str)))
			} else {
				b.Texts = append(b.Texts, v.Str)
			}
		case syncengine.Int:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_INT)
			b.Ints = append(b.Ints, v.Int)
		case syncengine.Decimal:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_DECIMAL)
			b.Decimals = append(b.Decimals, v.Num)
		case syncengine.Bool:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_BOOL)
			b.Bools = append(b.Bools, v.Bool)
		default:
			b.Kinds = append(b.Kinds, tesserav1.CellKind_CELL_KIND_UNSPECIFIED)
		}
	}
}
