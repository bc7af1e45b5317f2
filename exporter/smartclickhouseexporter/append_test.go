package smartclickhouseexporter

import (
	"testing"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// encoded is what clickhouse-go sends for t's columns holding values,
// appended by appendColumns or, with plain, by Column.Append.
func encoded(t *testing.T, tbl schema.Table, f schema.Features, values map[string]any, plain bool) []byte {
	cols := encodeColumns(t, tbl, f)
	if plain {
		for i, c := range tbl.Columns {
			_, err := cols[i].Append(values[c.Name])
			require.NoError(t, err, c.Name)
		}
	} else {
		require.NoError(t, appendColumns(cols, tbl, values))
	}
	for i, col := range cols {
		require.Equal(t, len(values["time"].([]int64)), col.Rows(), tbl.Columns[i].Name)
	}
	var buf proto.Buffer
	encodeBlock(t, cols, &buf)
	return buf.Buf
}

// The fast appends send exactly what Column.Append sends.
func TestFastAppendEncodesTheSame(t *testing.T) {
	td1, td2, md, ld := testTraces(), benchTracesN(1, 400), testMetrics(), testLogs()
	for _, f := range []schema.Features{legacy, modern} {
		t.Run(f.Version.String(), func(t *testing.T) {
			check := func(tbl schema.Table, values func() map[string]any) {
				// Column.Append and appendColumns each get their own
				// values: neither may see what the other did.
				require.Equal(t, encoded(t, tbl, f, values(), true), encoded(t, tbl, f, values(), false), tbl.Name)
			}
			check(schema.Spans, func() map[string]any {
				var r spanRows
				r.addTraces(td1, skipped{})
				// And a batch of many resources, with repeated and
				// empty attribute arrays.
				r.addTraces(td2, skipped{})
				return r.columns(f)
			})
			check(schema.Metrics, func() map[string]any {
				var r metricRows
				r.addMetrics(md, skipped{})
				return r.columns(f)
			})
			check(schema.Logs, func() map[string]any {
				var r logRows
				r.addLogs(ld, skipped{})
				return r.columns(f)
			})
		})
	}
}
