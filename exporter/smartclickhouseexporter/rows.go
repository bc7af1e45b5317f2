package smartclickhouseexporter

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// Rows are gathered column by column, in the Go types clickhouse-go
// appends without per-value reflection, and sent as one INSERT per table
// and request.

// timeOK reports whether t fits the DateTime column `time` (up to
// 2106-02-07), which every row has. DateTime64(9) reaches 2262, so a time
// that passes fits the precise columns too. Anything later cannot be
// stored: the record is skipped and counted.
func timeOK(t pcommon.Timestamp) bool { return uint64(t)/1e9 <= math.MaxUint32 }

// seconds is t in whole seconds, for the `time` column.
func seconds(t pcommon.Timestamp) int64 { return int64(uint64(t) / 1e9) }

// time64 is a column of precise times: DateTime64(9), or unix nanoseconds
// in UInt64 on servers before 20.1.
func time64(f schema.Features, ns []uint64) any {
	if !f.DateTime64 {
		return ns
	}
	ts := make([]time.Time, len(ns))
	for i, n := range ns {
		ts[i] = time.Unix(0, int64(n)).UTC()
	}
	return ts
}

func arrayTime64(f schema.Features, ns [][]uint64) any {
	if !f.DateTime64 {
		return ns
	}
	out := make([][]time.Time, len(ns))
	for i, row := range ns {
		out[i] = make([]time.Time, len(row))
		for j, n := range row {
			out[i][j] = time.Unix(0, int64(n)).UTC()
		}
	}
	return out
}

// tagRows are the id and IP columns of one side.
type tagRows struct {
	ids [numIDs][]uint32
	ip4 []uint32
	ip6 [][16]byte
}

func (t *tagRows) reserve(n int) {
	for i := range t.ids {
		t.ids[i] = slices.Grow(t.ids[i], n)
	}
	t.ip4, t.ip6 = slices.Grow(t.ip4, n), slices.Grow(t.ip6, n)
}

func (t *tagRows) add(d *ids, a ip) {
	for i := range d {
		t.ids[i] = append(t.ids[i], d[i])
	}
	t.ip4 = append(t.ip4, a.v4)
	t.ip6 = append(t.ip6, a.v6)
}

// columns converts the ids to their columns' exact integer types.
func (t *tagRows) columns(f schema.Features, suffix string, out map[string]any) {
	for i, c := range schema.IDColumns {
		v := t.ids[i]
		switch c.Kind {
		case schema.UInt8:
			n := make([]uint8, len(v))
			for j, x := range v {
				n[j] = uint8(x)
			}
			out[c.Name+suffix] = n
		case schema.UInt16:
			n := make([]uint16, len(v))
			for j, x := range v {
				n[j] = uint16(x)
			}
			out[c.Name+suffix] = n
		default:
			out[c.Name+suffix] = v
		}
	}
	out["ip4"+suffix] = t.ip4
	if f.IPTypes {
		out["ip6"+suffix] = t.ip6
	} else {
		b := make([][]byte, len(t.ip6))
		for i := range t.ip6 {
			b[i] = t.ip6[i][:]
		}
		out["ip6"+suffix] = b
	}
}

// commonRows are the columns every data table has.
type commonRows struct {
	serviceName, scopeName, scopeVersion []string
	attrNames, attrValues                [][]string
	resNames, resValues                  [][]string
}

func (c *commonRows) reserve(n int) {
	for _, s := range []*[]string{&c.serviceName, &c.scopeName, &c.scopeVersion} {
		*s = slices.Grow(*s, n)
	}
	for _, s := range []*[][]string{&c.attrNames, &c.attrValues, &c.resNames, &c.resValues} {
		*s = slices.Grow(*s, n)
	}
}

func (c *commonRows) add(ri *resourceInfo, scopeName, scopeVersion string, names, values []string) {
	c.serviceName = append(c.serviceName, ri.serviceName)
	c.scopeName = append(c.scopeName, scopeName)
	c.scopeVersion = append(c.scopeVersion, scopeVersion)
	c.attrNames = append(c.attrNames, names)
	c.attrValues = append(c.attrValues, values)
	c.resNames = append(c.resNames, ri.names)
	c.resValues = append(c.resValues, ri.values)
}

func (c *commonRows) columns(out map[string]any) {
	out["service_name"] = c.serviceName
	out["scope_name"] = c.scopeName
	out["scope_version"] = c.scopeVersion
	out["attr_names"] = c.attrNames
	out["attr_values"] = c.attrValues
	out["resource_names"] = c.resNames
	out["resource_values"] = c.resValues
}

// emptyIfNil makes nil slices empty ones: an Array column row must be a
// slice, and a nil one is fine for clickhouse-go, but a nil inner element
// of a [][]string is not everywhere.
func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// insert sends one table's rows in one INSERT with the explicit column
// list. values holds every column of the table by name.
func insert(ctx context.Context, conn driver.Conn, database string, t schema.Table, values map[string]any) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+database+"."+t.Name+" ("+t.InsertColumns()+")")
	if err != nil {
		return err
	}
	// The batch's columns in the order of the column list: appended to
	// directly, as batch.Column(i).Append would.
	if err := appendColumns(batch.Columns(), t, values); err != nil {
		_ = batch.Abort()
		return err
	}
	return batch.Send()
}
