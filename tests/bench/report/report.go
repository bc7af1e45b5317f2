package main

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The scenario benchmarks: names, packages and units are the contract with
// the scenario code; a benchmark that does not match stays in "All Go
// benchmarks" rather than disappearing.
const (
	storagePkg    = modulePath + "/exporter/smartclickhouseexporter"
	scenarioPkg   = modulePath + "/tests/bench"
	storageName   = "BenchmarkScenarioStorage"
	pipelineName  = "BenchmarkScenarioPipeline"
	pinpointName  = "BenchmarkScenarioPinpoint"
	scenarioFlags = "-benchtime 1x"
	goBenchFlags  = "-benchmem"

	// Targets from issue #8.
	targetVsContrib = 10.0 // weft disk-B/span at least 10x below contrib
	targetVsLowcard = 3.0  // and at least 3x below lowcard
	targetCPUPer10k = 20.0 // % of a core per 10k spans/s: the contrib testbed's pass-through limit
)

// Known values come first in this order; others follow sorted.
var (
	engineOrder   = []string{"clickhouse-18.16", "chdb-26.5"}
	layoutOrder   = []string{"contrib", "lowcard", "weft"}
	pipelineOrder = []string{"weft", "passthrough"}
)

// machine describes where the figures come from.
type machine struct {
	Date, CPU, Platform, NProc, Memory, Go, Kernel string
}

// readMachine takes the cpu and platform from the benchmark output (they
// describe the run) and the rest from the host, which `make bench` is.
func readMachine(in *input, date string) machine {
	m := machine{
		Date:     date,
		CPU:      strings.Join(in.CPUs, "; "),
		Platform: strings.Join(in.Platform, "; "),
		NProc:    strconv.Itoa(runtime.NumCPU()), // like nproc, honours the affinity mask
		Memory:   memTotal(),
		Go:       runtime.Version(),
		Kernel:   "unknown (/proc/sys/kernel/osrelease not readable)",
	}
	if m.CPU == "" {
		m.CPU = "unknown (no cpu: line in the benchmark output)"
	}
	if m.Platform == "" {
		m.Platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown (/proc/meminfo not readable)"
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				return fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	return "unknown (no MemTotal in /proc/meminfo)"
}

// sections splits the benchmarks between the scenario sections and the rest.
type sections struct {
	storage, pipeline, pinpoint, other []*bench
}

func classify(benches []*bench) sections {
	var s sections
	for _, b := range benches {
		parts := strings.Split(b.Name, "/")
		switch {
		case b.Pkg == storagePkg && parts[0] == storageName && len(parts) == 3:
			s.storage = append(s.storage, b)
		case b.Pkg == scenarioPkg && parts[0] == pipelineName && len(parts) == 3:
			s.pipeline = append(s.pipeline, b)
		case b.Pkg == scenarioPkg && parts[0] == pinpointName:
			s.pinpoint = append(s.pinpoint, b)
		default:
			s.other = append(s.other, b)
		}
	}
	return s
}

// writeReport writes report.md and the charts into dir.
func writeReport(dir string, in *input, m machine) error {
	benches := aggregate(in.Runs)
	s := classify(benches)
	var md bytes.Buffer
	writeHeader(&md, m, in)
	if len(s.storage) > 0 {
		if err := writeStorage(&md, dir, storageModel(s.storage)); err != nil {
			return err
		}
	}
	if len(s.pipeline) > 0 {
		if err := writePipeline(&md, dir, pipelineModel(s.pipeline)); err != nil {
			return err
		}
	}
	if len(s.pinpoint) > 0 {
		writePinpoint(&md, s.pinpoint)
	}
	if len(s.other) > 0 {
		writeGoBenchmarks(&md, s.other)
	}
	writeFailures(&md, in.Failures)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report.md: %w", err)
	}
	return nil
}

func writeHeader(w io.Writer, m machine, in *input) {
	fmt.Fprintf(w, "# Weft benchmark report, %s\n\n", m.Date)
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	for _, kv := range [][2]string{
		{"date", m.Date},
		{"cpu", m.CPU},
		{"goos/goarch", m.Platform},
		{"nproc", m.NProc},
		{"memory", m.Memory},
		{"Go", m.Go},
		{"kernel", m.Kernel},
		{"raw input", strings.Join(in.Files, ", ")},
	} {
		fmt.Fprintf(w, "| %s | %s |\n", kv[0], cell(kv[1]))
	}
	fmt.Fprint(w, "\n## Reproduce\n\n")
	fmt.Fprint(w, "`make bench` runs every benchmark and regenerates this report. "+
		"Each figure below comes with the `go test` command, run from the repository root, that reproduces it alone. "+
		"Scenario benchmarks run once (`"+scenarioFlags+"`). "+
		"Where a benchmark ran several times (`-count`), the figure is the median and n is the number of runs.\n\n")
}

// storageEngine is one engine's table in the storage section.
type storageEngine struct {
	Engine  string
	Layouts []string
	Rows    map[string]*bench // by layout
	Targets []target
}

// target is one goal from issue #8 and whether the figures meet it.
type target struct {
	Goal   string
	Status string // MET, NOT MET, or NO DATA when a figure is missing
	Detail string
}

func storageModel(bs []*bench) []storageEngine {
	byEngine := map[string]*storageEngine{}
	var engines []string
	for _, b := range bs {
		parts := strings.Split(b.Name, "/")
		engine, layout := parts[1], parts[2]
		e := byEngine[engine]
		if e == nil {
			e = &storageEngine{Engine: engine, Rows: map[string]*bench{}}
			byEngine[engine] = e
			engines = append(engines, engine)
		}
		if e.Rows[layout] == nil { // a second GOMAXPROCS value adds nothing to a size
			e.Rows[layout] = b
			e.Layouts = append(e.Layouts, layout)
		}
	}
	var out []storageEngine
	for _, name := range knownFirst(engines, engineOrder) {
		e := byEngine[name]
		e.Layouts = knownFirst(e.Layouts, layoutOrder)
		e.Targets = []target{
			ratioTarget("a", "contrib", targetVsContrib, e.Rows),
			ratioTarget("b", "lowcard", targetVsLowcard, e.Rows),
		}
		out = append(out, *e)
	}
	return out
}

// ratioTarget checks that weft's disk-B/span is at least min times smaller
// than the base layout's.
func ratioTarget(label, base string, min float64, rows map[string]*bench) target {
	t := target{Goal: fmt.Sprintf("(%s) storage >= %gx smaller than %s", label, min, base)}
	b, okB := rows[base].value("disk-B/span")
	w, okW := rows["weft"].value("disk-B/span")
	if !okB || !okW || w <= 0 {
		t.Status, t.Detail = "NO DATA", fmt.Sprintf("needs disk-B/span of both %s and weft", base)
		return t
	}
	r := b / w
	t.Status = verdict(r >= min)
	t.Detail = fmt.Sprintf("%s/weft = %s", base, fmtRatio(r))
	return t
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

func writeStorage(w io.Writer, dir string, engines []storageEngine) error {
	fmt.Fprint(w, "\n## Storage\n\n")
	fmt.Fprint(w, "Bytes on disk per span after insert, for each table layout. "+
		"The x columns are layout/weft: how many times larger than Weft's layout.\n\n")
	fmt.Fprintf(w, "Whole section: `%s`\n\n", sectionCommand(storageName, storagePkg))
	for _, e := range engines {
		fmt.Fprintf(w, "### %s\n\n", e.Engine)
		fmt.Fprint(w, "| layout | disk B/span | x weft | tags B/span | x weft | insert CPU ns/span | x weft | spans |\n")
		fmt.Fprint(w, "|---|--:|--:|--:|--:|--:|--:|--:|\n")
		weft := e.Rows["weft"]
		for _, l := range e.Layouts {
			b := e.Rows[l]
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", cell(withN(l, b)),
				fig(b, "disk-B/span"), ratio(b, weft, "disk-B/span"),
				fig(b, "tags-B/span"), ratio(b, weft, "tags-B/span"),
				fig(b, "insert-cpu-ns/span"), ratio(b, weft, "insert-cpu-ns/span"),
				fig(b, "spans"))
		}
		fmt.Fprint(w, "\nTargets (issue #8):\n\n")
		for _, t := range e.Targets {
			fmt.Fprintf(w, "- %s: **%s** (%s)\n", t.Goal, t.Status, t.Detail)
		}
		fmt.Fprint(w, "\nReproduce:\n\n")
		for _, l := range e.Layouts {
			fmt.Fprintf(w, "- %s: `%s`\n", l, command(e.Rows[l], scenarioFlags))
		}
		fmt.Fprintln(w)
	}

	// One chart per metric: engines on the x axis, a bar per layout.
	var groups []string
	var layouts []string
	for _, e := range engines {
		groups = append(groups, e.Engine)
		for _, l := range e.Layouts {
			layouts = addDistinct(layouts, l)
		}
	}
	layouts = knownFirst(layouts, layoutOrder)
	for _, c := range []struct{ unit, file, title, axis string }{
		{"disk-B/span", "storage_disk.png", "Bytes on disk per span", "B/span"},
		{"insert-cpu-ns/span", "storage_insert_cpu.png", "Server insert CPU per span", "ns/span"},
	} {
		var ss []series
		for _, l := range layouts {
			s := series{Name: l}
			for _, e := range engines {
				s.add(e.Rows[l].value(c.unit))
			}
			ss = append(ss, s)
		}
		if !anyPresent(ss) {
			continue // e.g. no engine reports insert CPU
		}
		if err := barChart(filepath.Join(dir, c.file), c.title, c.axis, groups, ss, nil); err != nil {
			return err
		}
		fmt.Fprintf(w, "![%s](%s)\n\n", c.title, c.file)
	}
	return nil
}

// pipelineRow is one pipeline at one rate.
type pipelineRow struct {
	Pipeline, Rate string
	B              *bench
	Target         *target // only the full Weft pipeline at a fixed rate is judged
}

func pipelineModel(bs []*bench) []pipelineRow {
	seen := map[[2]string]bool{}
	var rows []pipelineRow
	for _, b := range bs {
		parts := strings.Split(b.Name, "/")
		k := [2]string{parts[1], parts[2]}
		if seen[k] {
			continue
		}
		seen[k] = true
		r := pipelineRow{Pipeline: parts[1], Rate: parts[2], B: b}
		if r.Pipeline == "weft" && r.Rate != "max" {
			t := cpuTarget(b)
			r.Target = &t
		}
		rows = append(rows, r)
	}
	pipelines := knownFirst(uniq(rows, func(r pipelineRow) string { return r.Pipeline }), pipelineOrder)
	sort.SliceStable(rows, func(i, j int) bool {
		pi, pj := slices.Index(pipelines, rows[i].Pipeline), slices.Index(pipelines, rows[j].Pipeline)
		if pi != pj {
			return pi < pj
		}
		return rateLess(rows[i].Rate, rows[j].Rate)
	})
	return rows
}

// cpuTarget checks the full pipeline's CPU per 10k spans/s against the contrib
// testbed's pass-through limit.
func cpuTarget(b *bench) target {
	t := target{Goal: fmt.Sprintf("weft CPU per 10k spans/s < %g%% of a core", targetCPUPer10k)}
	v, ok := b.value("cpu-%/10k-spans/s")
	if !ok {
		t.Status, t.Detail = "NO DATA", "no cpu-%/10k-spans/s reported"
		return t
	}
	t.Status = verdict(v < targetCPUPer10k)
	t.Detail = fmt.Sprintf("%s%%", fmtNum(v))
	return t
}

// rateLess orders rates numerically ("10k" < "100k") with "max" last.
func rateLess(a, b string) bool {
	ra, rb := rateValue(a), rateValue(b)
	if ra != rb {
		return ra < rb
	}
	return a < b
}

func rateValue(s string) float64 {
	if s == "max" {
		return math.Inf(1)
	}
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		mult, s = 1e6, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.MaxFloat64 // unknown spellings sort after numbers, before max
	}
	return v * mult
}

var pipelineUnits = []struct{ unit, head string }{
	{"spans/s", "spans/s"},
	{"cpu-%/10k-spans/s", "CPU %/10k spans/s"},
	{"cpu-%", "CPU %"},
	{"peak-RSS-MB", "peak RSS MB"},
	{"dropped-spans", "dropped spans"},
	{"p50-latency-ms", "p50 ms"},
	{"p99-latency-ms", "p99 ms"},
}

func writePipeline(w io.Writer, dir string, rows []pipelineRow) error {
	fmt.Fprint(w, "\n## Pipeline\n\n")
	fmt.Fprint(w, "Spans offered at a fixed rate (or as fast as possible: max) through the full Weft pipeline and through a pass-through pipeline. "+
		"CPU is in percent of one core.\n\n")
	fmt.Fprintf(w, "Whole section: `%s`\n\n", sectionCommand(pipelineName, scenarioPkg))
	fmt.Fprint(w, "| pipeline | rate |")
	for _, u := range pipelineUnits {
		fmt.Fprintf(w, " %s |", u.head)
	}
	fmt.Fprintf(w, " target < %g%% |\n|---|---|", targetCPUPer10k)
	fmt.Fprint(w, strings.Repeat("--:|", len(pipelineUnits)), "---|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s |", cell(withN(r.Pipeline, r.B)), cell(r.Rate))
		for _, u := range pipelineUnits {
			fmt.Fprintf(w, " %s |", fig(r.B, u.unit))
		}
		status := "—"
		if r.Target != nil {
			status = "**" + r.Target.Status + "**"
		}
		fmt.Fprintf(w, " %s |\n", status)
	}
	fmt.Fprintf(w, "\nTarget (issue #8): full Weft pipeline CPU per 10k spans/s below %g%% of a core, judged at fixed rates only:\n\n", targetCPUPer10k)
	judged := false
	for _, r := range rows {
		if r.Target != nil {
			fmt.Fprintf(w, "- %s: **%s** (%s)\n", r.Rate, r.Target.Status, r.Target.Detail)
			judged = true
		}
	}
	if !judged {
		fmt.Fprint(w, "- **NO DATA**: no weft run at a fixed rate\n")
	}
	fmt.Fprint(w, "\nReproduce:\n\n")
	for _, r := range rows {
		fmt.Fprintf(w, "- %s at %s: `%s`\n", r.Pipeline, r.Rate, command(r.B, scenarioFlags))
	}
	fmt.Fprintln(w)

	// Charts: rates on the x axis, a bar per pipeline.
	rates := uniq(rows, func(r pipelineRow) string { return r.Rate })
	sort.SliceStable(rates, func(i, j int) bool { return rateLess(rates[i], rates[j]) })
	pipelines := uniq(rows, func(r pipelineRow) string { return r.Pipeline })
	find := func(p, rate string) *bench {
		for _, r := range rows {
			if r.Pipeline == p && r.Rate == rate {
				return r.B
			}
		}
		return nil
	}
	limit := targetCPUPer10k
	for _, c := range []struct {
		unit, file, title, axis string
		ref                     *float64
	}{
		{"cpu-%/10k-spans/s", "pipeline_cpu.png", "Collector CPU per 10k spans/s", "% of a core", &limit},
		{"p99-latency-ms", "pipeline_p99.png", "p99 latency", "ms", nil},
	} {
		var ss []series
		for _, p := range pipelines {
			s := series{Name: p}
			for _, rate := range rates {
				s.add(find(p, rate).value(c.unit))
			}
			ss = append(ss, s)
		}
		if !anyPresent(ss) {
			continue
		}
		if err := barChart(filepath.Join(dir, c.file), c.title, c.axis, rates, ss, c.ref); err != nil {
			return err
		}
		fmt.Fprintf(w, "![%s](%s)\n\n", c.title, c.file)
	}
	return nil
}

func writePinpoint(w io.Writer, bs []*bench) {
	fmt.Fprint(w, "\n## Pinpoint\n\n")
	fmt.Fprint(w, "Pinpoint span events converted; per CPU-second is per core.\n\n")
	fmt.Fprintf(w, "Whole section: `%s`\n\n", sectionCommand(pinpointName, scenarioPkg))
	fmt.Fprint(w, "| case | span events/s | span events/CPU-s | reproduce |\n|---|--:|--:|---|\n")
	for _, b := range bs {
		name := strings.TrimPrefix(strings.TrimPrefix(b.Name, pinpointName), "/")
		if name == "" {
			name = pinpointName
		}
		fmt.Fprintf(w, "| %s | %s | %s | `%s` |\n", cell(withN(name, b)),
			fig(b, "span-events/s"), fig(b, "span-events/cpu-s"), cell(command(b, scenarioFlags)))
	}
}

// standardUnits get their own columns in every package table.
var standardUnits = []string{"ns/op", "B/op", "allocs/op"}

// maxUnitColumns: beyond this many custom units a package's table joins them
// into one column instead of growing a mostly empty column per unit.
const maxUnitColumns = 3

func writeGoBenchmarks(w io.Writer, bs []*bench) {
	fmt.Fprint(w, "\n## All Go benchmarks\n\n")
	byPkg := map[string][]*bench{}
	for _, b := range bs {
		byPkg[b.Pkg] = append(byPkg[b.Pkg], b)
	}
	pkgs := make([]string, 0, len(byPkg))
	for p := range byPkg {
		pkgs = append(pkgs, p)
	}
	sort.Slice(pkgs, func(i, j int) bool { return relPkg(pkgs[i]) < relPkg(pkgs[j]) })
	for _, p := range pkgs {
		writePackage(w, p, byPkg[p])
	}
}

func writePackage(w io.Writer, pkg string, bs []*bench) {
	fmt.Fprintf(w, "### %s\n\n", relPkg(pkg))
	fmt.Fprintf(w, "Whole package: `go test -run '^$' -bench . %s %s`\n\n", goBenchFlags, shellQuote(relPkg(pkg)))
	var custom []string
	for _, b := range bs {
		for _, u := range b.Units {
			if !slices.Contains(standardUnits, u) {
				custom = addDistinct(custom, u)
			}
		}
	}
	cols := custom
	joined := len(custom) > maxUnitColumns
	if joined {
		cols = []string{"metrics"}
	}
	fmt.Fprint(w, "| benchmark | ns/op | B/op | allocs/op |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", cell(c))
	}
	fmt.Fprint(w, " reproduce |\n|---|--:|--:|--:|", strings.Repeat("--:|", len(cols)), "---|\n")
	for _, b := range bs {
		fmt.Fprintf(w, "| %s |", cell(withN(b.Name, b)))
		for _, u := range standardUnits {
			fmt.Fprintf(w, " %s |", fig(b, u))
		}
		if joined {
			var parts []string
			for _, u := range b.Units {
				if !slices.Contains(standardUnits, u) {
					parts = append(parts, fmtNum(b.Median[u])+" "+u)
				}
			}
			fmt.Fprintf(w, " %s |", cell(strings.Join(parts, ", ")))
		} else {
			for _, u := range cols {
				fmt.Fprintf(w, " %s |", fig(b, u))
			}
		}
		fmt.Fprintf(w, " `%s` |\n", cell(command(b, goBenchFlags)))
	}
	fmt.Fprintln(w)
}

// writeFailures lists failures so that a missing section or row has its
// explanation in the report rather than only in the raw output.
func writeFailures(w io.Writer, failures []string) {
	var uniqFail []string
	for _, f := range failures {
		uniqFail = addDistinct(uniqFail, f)
	}
	if len(uniqFail) == 0 {
		return
	}
	fmt.Fprint(w, "\n## Failures\n\nThese benchmarks or packages failed; their figures are missing or partial. See the raw output for details.\n\n")
	for _, f := range uniqFail {
		fmt.Fprintf(w, "- `%s`\n", f)
	}
}

func sectionCommand(name, pkg string) string {
	return command(&bench{Pkg: pkg, Name: name}, scenarioFlags)
}

// fig formats one figure of b, or a dash when b did not report the unit.
func fig(b *bench, unit string) string {
	v, ok := b.value(unit)
	if !ok {
		return "—"
	}
	return fmtNum(v)
}

// ratio formats b/base for unit, the "x weft" columns.
func ratio(b, base *bench, unit string) string {
	v, ok := b.value(unit)
	bv, okB := base.value(unit)
	if !ok || !okB || bv == 0 {
		return "—"
	}
	return fmtRatio(v / bv)
}

// withN appends what a reader needs to tell rows apart or weigh them: the
// GOMAXPROCS when the benchmark ran at several, and the number of runs.
func withN(label string, b *bench) string {
	var notes []string
	if b != nil && b.CPUFlag {
		notes = append(notes, fmt.Sprintf("GOMAXPROCS=%d", b.Procs))
	}
	if b != nil && b.N > 1 {
		notes = append(notes, fmt.Sprintf("n=%d", b.N))
	}
	if len(notes) == 0 {
		return label
	}
	return label + " (" + strings.Join(notes, ", ") + ")"
}

// fmtNum prints figures with the precision benchmark noise allows: whole
// numbers from 100 up, three significant digits below.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100 || v == math.Trunc(v):
		return thousands(int64(math.Round(v)))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func fmtRatio(r float64) string {
	if r >= 10 {
		return strconv.FormatFloat(r, 'f', 1, 64) + "x"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "x"
}

// cell makes s safe inside a markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// knownFirst orders names by their place in known, then the rest sorted.
func knownFirst(names, known []string) []string {
	out := slices.Clone(names)
	sort.SliceStable(out, func(i, j int) bool {
		ki, kj := slices.Index(known, out[i]), slices.Index(known, out[j])
		switch {
		case ki >= 0 && kj >= 0:
			return ki < kj
		case ki >= 0 || kj >= 0:
			return ki >= 0
		}
		return out[i] < out[j]
	})
	return out
}

func uniq[T any](xs []T, key func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = addDistinct(out, key(x))
	}
	return out
}

// series is one bar colour of a grouped bar chart.
type series struct {
	Name    string
	Values  []float64
	Present []bool
}

func (s *series) add(v float64, ok bool) {
	s.Values = append(s.Values, v)
	s.Present = append(s.Present, ok)
}

func anyPresent(ss []series) bool {
	for _, s := range ss {
		if slices.Contains(s.Present, true) {
			return true
		}
	}
	return false
}

var palette = []color.Color{
	color.RGBA{0x4c, 0x72, 0xb0, 0xff},
	color.RGBA{0xdd, 0x84, 0x52, 0xff},
	color.RGBA{0x55, 0xa8, 0x68, 0xff},
	color.RGBA{0xc4, 0x4e, 0x52, 0xff},
	color.RGBA{0x81, 0x72, 0xb3, 0xff},
	color.RGBA{0x93, 0x78, 0x60, 0xff},
}

// barChart draws a grouped bar chart (a group per x label, a bar per series)
// with each value written above its bar, and an optional dashed target line.
func barChart(path, title, yLabel string, groups []string, ss []series, ref *float64) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Legend.Top = true

	// Each group gets an equal cell of the x axis; its bars fill most of it.
	const width = 8 * vg.Inch
	barW := min(width*0.65/vg.Length(len(groups)*len(ss)), vg.Points(60))
	top := 0.0
	for i, s := range ss {
		vals := make(plotter.Values, len(s.Values))
		labels := plotter.XYLabels{XYs: make(plotter.XYs, len(s.Values)), Labels: make([]string, len(s.Values))}
		for j, v := range s.Values {
			labels.XYs[j] = plotter.XY{X: float64(j)}
			labels.Labels[j] = "n/a"
			if s.Present[j] {
				vals[j], labels.XYs[j].Y, labels.Labels[j] = v, v, fmtNum(v)
				top = max(top, v)
			}
		}
		bars, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return fmt.Errorf("chart %s: %w", title, err)
		}
		bars.Color = palette[i%len(palette)]
		bars.LineStyle.Width = 0
		bars.Offset = barW * vg.Length(float64(i)-float64(len(ss)-1)/2)
		p.Add(bars)
		p.Legend.Add(s.Name, bars)

		text, err := plotter.NewLabels(labels)
		if err != nil {
			return fmt.Errorf("chart %s: %w", title, err)
		}
		for k := range text.TextStyle {
			text.TextStyle[k].XAlign = draw.XCenter
			text.TextStyle[k].Font.Size = vg.Points(8)
		}
		text.Offset = vg.Point{X: bars.Offset, Y: vg.Points(2)}
		p.Add(text)
	}
	if ref != nil {
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: *ref}, {X: float64(len(groups)) - 0.5, Y: *ref}})
		if err != nil {
			return fmt.Errorf("chart %s: %w", title, err)
		}
		line.Color = color.RGBA{0xc0, 0, 0, 0xff}
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("target < %s", fmtNum(*ref)), line)
		top = max(top, *ref)
	}
	p.NominalX(groups...)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	p.Y.Min = 0
	p.Y.Max = top * 1.35 // room for the value labels and the legend
	p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ticks := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = fmtNum(ticks[i].Value) // "500", not "500.00"
			}
		}
		return ticks
	})
	if top == 0 {
		p.Y.Max = 1
	}
	if err := p.Save(width, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("save chart %s (is the output directory writable?): %w", path, err)
	}
	return nil
}
