package stat

import (
	"os"
	"strings"
	"testing"
)

// instrument is how METRICS.md and doc.go spell each kind.
var instrument = map[kind][2]string{
	gauge:          {"gauge", "gauge"},
	cumulativeSum:  {"sum, cumulative, monotonic", "sum cumulative monotonic"},
	deltaSum:       {"sum, delta, monotonic", "sum delta monotonic"},
	deltaHistogram: {"histogram, delta", "histogram delta"},
}

// TestDocsMatchDefs keeps the two written tables in step with defs: every
// metric once, with its instrument and unit, and no metric that defs lacks.
func TestDocsMatchDefs(t *testing.T) {
	md, err := os.ReadFile("METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	goDoc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(md), "\n") {
		if !strings.HasPrefix(line, "| `pinpoint.") {
			continue
		}
		cells := strings.Split(line, "|")
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if rows[name] != nil {
			t.Errorf("METRICS.md: %s twice", name)
		}
		rows[name] = cells
	}
	docRows := map[string][]string{}
	for _, line := range strings.Split(string(goDoc), "\n") {
		if f := strings.Fields(strings.TrimPrefix(line, "//\t")); len(f) > 0 && strings.HasPrefix(f[0], "pinpoint.") {
			docRows[f[0]] = f
		}
	}
	for _, d := range defs {
		cells := rows[d.name]
		if cells == nil {
			t.Errorf("METRICS.md lacks %s", d.name)
		} else {
			if got := strings.TrimSpace(cells[2]); !strings.HasPrefix(got, instrument[d.kind][0]) {
				t.Errorf("METRICS.md: %s is %q, want %s", d.name, got, instrument[d.kind][0])
			}
			if got := strings.TrimSpace(cells[3]); got != "`"+d.unit+"`" {
				t.Errorf("METRICS.md: %s unit %s, want %s", d.name, got, d.unit)
			}
		}
		f := docRows[d.name]
		if f == nil {
			t.Errorf("doc.go lacks %s", d.name)
			continue
		}
		if got := strings.Join(f[1:], " "); !strings.HasPrefix(got, instrument[d.kind][1]+" ") || !strings.Contains(got, " "+d.unit) {
			t.Errorf("doc.go: %s reads %q, want %s and unit %s", d.name, got, instrument[d.kind][1], d.unit)
		}
		delete(rows, d.name)
		delete(docRows, d.name)
	}
	for name := range rows {
		t.Errorf("METRICS.md documents %s, which is not defined", name)
	}
	for name := range docRows {
		t.Errorf("doc.go documents %s, which is not defined", name)
	}
}
