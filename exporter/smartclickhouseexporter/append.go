package smartclickhouseexporter

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// Appending to clickhouse-go's columns (v2.49) without its per-value
// reflection and allocations.
//
// Column.Append of a [][]string (Array columns) and of a []string
// (LowCardinality columns) goes through reflect value by value and boxes
// every string into an interface: one allocation per string, most of the
// insert's CPU. Instead:
//
//   - Array(T) rows go in one by one with AppendRow of a typed slice,
//     which clickhouse-go appends without reflection (Array.appendRowPlain).
//     Strings go in as []*string: a pointer needs no allocation to become
//     an interface, and the String column copies the bytes it points to.
//     An empty row is a shared, already boxed empty slice; a row that is
//     the same slice as the one before (the resource's attributes, for
//     every span of the resource) reuses its boxed slice.
//   - LowCardinality(String) values (also inside arrays) are appended as
//     interned *string: the column's dictionary is keyed by the value it is
//     given, and interning makes one pointer per distinct string, so the
//     dictionary, its order and the encoded bytes are those of strings.
//   - Everything else (numbers, times, IPs, plain String columns) already
//     has a typed bulk path in Column.Append.

// interner gives one *string per distinct string of a batch.
type interner map[string]*string

func (in interner) ptr(s *string) *string {
	if p, ok := in[*s]; ok {
		return p
	}
	in[*s] = s
	return s
}

var (
	emptyStringPtrs any = []*string{}
	emptyStringRows any = [][]string{}
)

// appendValues appends one column's values to col, of kind k.
func appendValues(col column.Interface, k schema.Kind, v any, in interner) error {
	switch v := v.(type) {
	case []string:
		if k == schema.LowString {
			for i := range v {
				if err := col.AppendRow(in.ptr(&v[i])); err != nil {
					return err
				}
			}
			return nil
		}
	case [][]string:
		if k == schema.ArrayString || k == schema.ArrayLowString {
			if k == schema.ArrayString {
				in = nil
			}
			return appendStringArrays(col, v, in)
		}
	case [][][]string:
		for _, row := range v {
			r := any(row)
			if len(row) == 0 {
				r = emptyStringRows
			}
			// Array(Array(String)) has no typed path: reflection, for
			// the few spans with events or links.
			if err := col.AppendRow(r); err != nil {
				return err
			}
		}
		return nil
	case [][]uint64:
		return appendArrays(col, v)
	case [][]float64:
		return appendArrays(col, v)
	case [][]time.Time:
		return appendArrays(col, v)
	}
	_, err := col.Append(v)
	return err
}

// appendStringArrays appends rows to an Array(String) column, or with in
// to an Array(LowCardinality(String)) column.
func appendStringArrays(col column.Interface, rows [][]string, in interner) error {
	n := 0
	for _, row := range rows {
		n += len(row)
	}
	ptrs := make([]*string, 0, n)
	var (
		prevData *string
		prevLen  int
		prev     any
	)
	for _, row := range rows {
		if len(row) == 0 {
			if err := col.AppendRow(emptyStringPtrs); err != nil {
				return err
			}
			continue
		}
		if data := unsafe.SliceData(row); data != prevData || len(row) != prevLen {
			start := len(ptrs)
			for i := range row {
				p := &row[i]
				if in != nil {
					p = in.ptr(p)
				}
				ptrs = append(ptrs, p)
			}
			prevData, prevLen, prev = data, len(row), ptrs[start:len(ptrs):len(ptrs)]
		}
		if err := col.AppendRow(prev); err != nil {
			return err
		}
	}
	return nil
}

// appendArrays appends rows of a typed Array column row by row: the typed
// path, without reflection.
func appendArrays[T any](col column.Interface, rows [][]T) error {
	var empty any = []T{}
	for _, row := range rows {
		r := empty
		if len(row) > 0 {
			r = row
		}
		if err := col.AppendRow(r); err != nil {
			return err
		}
	}
	return nil
}

// appendColumns appends values to cols, the columns of t in order.
func appendColumns(cols []column.Interface, t schema.Table, values map[string]any) error {
	if len(cols) != len(t.Columns) {
		return fmt.Errorf("bug: %d columns for the %d of %s", len(cols), len(t.Columns), t.Name)
	}
	in := interner{}
	for i, c := range t.Columns {
		v, ok := values[c.Name]
		if !ok {
			return fmt.Errorf("bug: no values for column %s.%s", t.Name, c.Name)
		}
		if err := appendValues(cols[i], c.Kind, v, in); err != nil {
			return fmt.Errorf("column %s: %w", c.Name, err)
		}
	}
	return nil
}
