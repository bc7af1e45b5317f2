package main

import (
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The samples: make-bench.txt is concatenated `go test ./...` output (scenarios,
// log lines between a name and its figures, a failing package); count3.txt is
// one package run with -count 3 -cpu 1,2.
var samples = []string{"testdata/make-bench.txt", "testdata/count3.txt"}

func parseSamples(t *testing.T) *input {
	t.Helper()
	in := &input{}
	for _, name := range samples {
		if err := parseFile(name, nil, in); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

func findRun(t *testing.T, in *input, pkg, name string, procs int) result {
	t.Helper()
	for _, r := range in.Runs {
		if r.Pkg == modulePath+pkg && r.Name == name && r.Procs == procs {
			return r
		}
	}
	t.Fatalf("no run of %s in %s with GOMAXPROCS=%d", name, pkg, procs)
	return result{}
}

func TestParse(t *testing.T) {
	in := parseSamples(t)

	// 18 result lines in make-bench.txt, 6 in count3.txt; log, PASS, ok,
	// FAIL and --- BENCH lines are not results.
	if got := len(in.Runs); got != 24 {
		t.Errorf("parsed %d results, want 24", got)
	}

	// The figures arrived two lines after the name, behind the harness log.
	r := findRun(t, in, "/exporter/smartclickhouseexporter", "BenchmarkScenarioStorage/clickhouse-18.16/contrib", 2)
	want := map[string]float64{"disk-B/span": 412.5, "tags-B/span": 96.25, "insert-cpu-ns/span": 1840, "spans": 100000}
	for unit, v := range want {
		if r.Values[unit] != v {
			t.Errorf("contrib %s = %v, want %v", unit, r.Values[unit], v)
		}
	}
	if r.Iters != 1 {
		t.Errorf("contrib iterations = %d, want 1", r.Iters)
	}

	r = findRun(t, in, "/exporter/smartclickhouseexporter", "BenchmarkEncodeBatch/rows=1000", 2)
	if r.Values["ns/op"] != 271040 || r.Values["MB/s"] != 3.69 || r.Values["allocs/op"] != 1204 {
		t.Errorf("EncodeBatch values = %v", r.Values)
	}
	if strings.Join(r.Units, ",") != "ns/op,B/op,allocs/op,MB/s" {
		t.Errorf("EncodeBatch units = %v, want printed order", r.Units)
	}

	r = findRun(t, in, "/tests/bench", "BenchmarkScenarioPipeline/weft/100k", 2)
	if r.Values["cpu-%/10k-spans/s"] != 23.4 || r.Values["p99-latency-ms"] != 48.2 {
		t.Errorf("pipeline weft/100k values = %v", r.Values)
	}

	// No suffix means GOMAXPROCS=1.
	r = findRun(t, in, "/internal/ring", "BenchmarkPush", 1)
	if r.Values["items/op"] != 9.5 {
		t.Errorf("first BenchmarkPush items/op = %v, want 9.5", r.Values["items/op"])
	}

	// The failed package's good benchmark is kept, its failures are listed.
	findRun(t, in, "/processor/spanprocessor", "BenchmarkRename", 2)
	wantFail := []string{
		"./processor/spanprocessor/: --- FAIL: BenchmarkTransform-2",
		"./processor/spanprocessor/: package FAIL 0.412s",
	}
	if strings.Join(in.Failures, "\n") != strings.Join(wantFail, "\n") {
		t.Errorf("failures = %q, want %q", in.Failures, wantFail)
	}
	if len(in.CPUs) != 1 || in.CPUs[0] != "AMD EPYC 7763 64-Core Processor" {
		t.Errorf("cpus = %q", in.CPUs)
	}
	if len(in.Platform) != 1 || in.Platform[0] != "linux/amd64" {
		t.Errorf("platforms = %q", in.Platform)
	}
}

func TestParseResult(t *testing.T) {
	for _, tc := range []struct {
		line  string
		ok    bool
		name  string
		procs int
	}{
		{"BenchmarkFoo-16 \t 100\t 12.5 ns/op", true, "BenchmarkFoo", 16},
		{"BenchmarkFoo/a-b/c=1 \t 100\t 12.5 ns/op\t 3 x/op", true, "BenchmarkFoo/a-b/c=1", 1},
		{"BenchmarkFoo-2 \t--- FAIL: BenchmarkFoo-2", false, "", 0},
		{"BenchmarkFoo-2 \t 100\t 12.5", false, "", 0},                   // value without unit
		{"BenchmarkFoo-2 \t 100\t twelve ns/op", false, "", 0},           // not a number
		{"BenchmarkFoo-2 \t 2026/11/21 10:00:01 starting", false, "", 0}, // log output
	} {
		f := strings.Fields(tc.line)
		r, ok := parseResult(f[0], f[1:])
		if ok != tc.ok || r.Name != tc.name || r.Procs != tc.procs {
			t.Errorf("parseResult(%q) = %q, GOMAXPROCS %d, %v; want %q, %d, %v", tc.line, r.Name, r.Procs, ok, tc.name, tc.procs, tc.ok)
		}
	}
}

func TestAggregateTakesMedian(t *testing.T) {
	benches := aggregate(parseSamples(t).Runs)
	var push []*bench
	for _, b := range benches {
		if b.Name == "BenchmarkPush" {
			push = append(push, b)
		}
	}
	if len(push) != 2 {
		t.Fatalf("got %d BenchmarkPush entries, want one per GOMAXPROCS", len(push))
	}
	for _, tc := range []struct {
		procs          int
		ns, itemsPerOp float64
	}{{1, 110, 10}, {2, 64, 10}} {
		b := push[tc.procs-1]
		if b.Procs != tc.procs || b.N != 3 || !b.CPUFlag {
			t.Errorf("BenchmarkPush-%d: procs %d, n %d, cpu flag %v; want %d, 3, true", tc.procs, b.Procs, b.N, b.CPUFlag, tc.procs)
		}
		if b.Median["ns/op"] != tc.ns || b.Median["items/op"] != tc.itemsPerOp {
			t.Errorf("BenchmarkPush-%d medians = %v, want ns/op %v items/op %v", tc.procs, b.Median, tc.ns, tc.itemsPerOp)
		}
	}
	if got := median([]float64{10, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of an even count = %v, want 2.5", got)
	}
}

func TestStorageTargets(t *testing.T) {
	engines := storageModel(classify(aggregate(parseSamples(t).Runs)).storage)
	got := map[string]string{}
	var order []string
	for _, e := range engines {
		order = append(order, e.Engine+":"+strings.Join(e.Layouts, ","))
		for _, tg := range e.Targets {
			got[e.Engine+" "+tg.Goal[:3]] = tg.Status
		}
	}
	// Known engines and layouts in the order, not the input's.
	if want := "clickhouse-18.16:contrib,lowcard,weft chdb-26.5:contrib,lowcard,weft"; strings.Join(order, " ") != want {
		t.Errorf("engines/layouts = %q, want %q", strings.Join(order, " "), want)
	}
	want := map[string]string{
		"clickhouse-18.16 (a)": "MET",     // 412.5/31.8 = 13.0x >= 10x
		"clickhouse-18.16 (b)": "MET",     // 130.2/31.8 = 4.09x >= 3x
		"chdb-26.5 (a)":        "MET",     // 450/40 = 11.25x
		"chdb-26.5 (b)":        "NOT MET", // 100/40 = 2.5x < 3x
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	disk := func(v float64) *bench { return &bench{Median: map[string]float64{"disk-B/span": v}} }
	for _, tc := range []struct {
		name string
		rows map[string]*bench
		want string
	}{
		{"exactly 10x", map[string]*bench{"contrib": disk(100), "weft": disk(10)}, "MET"},
		{"just below", map[string]*bench{"contrib": disk(99.9), "weft": disk(10)}, "NOT MET"},
		{"no weft row", map[string]*bench{"contrib": disk(100)}, "NO DATA"},
		{"weft without the unit", map[string]*bench{"contrib": disk(100), "weft": {Median: map[string]float64{}}}, "NO DATA"},
	} {
		if got := ratioTarget("a", "contrib", targetVsContrib, tc.rows).Status; got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPipelineTargets(t *testing.T) {
	rows := pipelineModel(classify(aggregate(parseSamples(t).Runs)).pipeline)
	var got []string
	for _, r := range rows {
		status := "-"
		if r.Target != nil {
			status = r.Target.Status
		}
		got = append(got, r.Pipeline+"/"+r.Rate+"="+status)
	}
	// Rates sorted numerically (input had 100k first), max last and not judged.
	want := "weft/10k=MET weft/50k=MET weft/100k=NOT MET weft/max=- passthrough/10k=- passthrough/100k=-"
	if strings.Join(got, " ") != want {
		t.Errorf("pipeline rows:\n got %s\nwant %s", strings.Join(got, " "), want)
	}

	cpu := func(v float64) *bench { return &bench{Median: map[string]float64{"cpu-%/10k-spans/s": v}} }
	for v, want := range map[float64]string{19.99: "MET", 20: "NOT MET"} {
		if got := cpuTarget(cpu(v)).Status; got != want {
			t.Errorf("cpuTarget(%v) = %q, want %q (the target is strictly below 20%%)", v, got, want)
		}
	}
	if got := cpuTarget(&bench{Median: map[string]float64{}}).Status; got != "NO DATA" {
		t.Errorf("cpuTarget without the unit = %q, want NO DATA", got)
	}
}

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		b     *bench
		flags string
		want  string
	}{
		{&bench{Pkg: storagePkg, Name: "BenchmarkScenarioStorage/clickhouse-18.16/weft"}, scenarioFlags,
			`go test -run '^$' -bench '^BenchmarkScenarioStorage$/^clickhouse-18\.16$/^weft$' -benchtime 1x ./exporter/smartclickhouseexporter/`},
		{&bench{Pkg: modulePath, Name: "BenchmarkRoot", Procs: 4, CPUFlag: true}, goBenchFlags,
			`go test -run '^$' -bench '^BenchmarkRoot$' -benchmem -cpu 4 ./`},
		{&bench{Pkg: modulePath + "/internal/x", Name: "BenchmarkQ/it's_(a)+b"}, goBenchFlags,
			`go test -run '^$' -bench '^BenchmarkQ$/^it'\''s_\(a\)\+b$' -benchmem ./internal/x/`},
	} {
		if got := command(tc.b, tc.flags); got != tc.want {
			t.Errorf("command(%s):\n got %s\nwant %s", tc.b.Name, got, tc.want)
		}
	}
	// The pattern must select the benchmark it names at every level.
	pat := strings.Split(benchPattern("BenchmarkQ/it's_(a)+b"), "/")
	for i, elem := range []string{"BenchmarkQ", "it's_(a)+b"} {
		if !regexp.MustCompile(pat[i]).MatchString(elem) {
			t.Errorf("pattern %q does not match %q", pat[i], elem)
		}
	}
}

func TestRunWritesReportAndCharts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "2026-11-21") // run creates it
	if err := run(append([]string{"-out", dir, "-date", "2026-11-21"}, samples...), nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	report := string(md)
	for _, want := range []string{
		"# Weft benchmark report, 2026-11-21",
		"| cpu | AMD EPYC 7763 64-Core Processor |",
		"`make bench`",
		"## Storage",
		"- (b) storage >= 3x smaller than lowcard: **NOT MET** (lowcard/weft = 2.50x)",
		"| contrib | 413 | 13.0x | 96.2 | 77.0x | 1,840 | 4.04x | 100,000 |",
		"## Pipeline",
		"- 100k: **NOT MET** (23.4%)",
		"`go test -run '^$' -bench '^BenchmarkScenarioPipeline$/^weft$/^10k$' -benchtime 1x ./tests/bench/`",
		"## Pinpoint",
		"| raw | 2,210,000 | 2,205,000 |",
		"## All Go benchmarks",
		"### ./internal/ring/",
		"| BenchmarkPush (GOMAXPROCS=1, n=3) | 110 | 16 | 1 | 10 |",
		"`go test -run '^$' -bench '^BenchmarkEncodeBatch$/^rows=1000$' -benchmem ./exporter/smartclickhouseexporter/`",
		"## Failures",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// Scenario benchmarks are not repeated among the plain Go benchmarks.
	if all := report[strings.Index(report, "## All Go benchmarks"):]; strings.Contains(all, "BenchmarkScenario") {
		t.Error("scenario benchmarks listed again under All Go benchmarks")
	}

	charts := regexp.MustCompile(`!\[[^\]]*\]\(([^)]+)\)`).FindAllStringSubmatch(report, -1)
	if len(charts) != 4 {
		t.Errorf("report links %d charts, want 4 (storage disk and insert CPU, pipeline CPU and p99)", len(charts))
	}
	for _, m := range charts {
		checkPNG(t, filepath.Join(dir, m[1]))
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 100 {
		t.Errorf("%s is %dx%d, too small to read", path, b.Dx(), b.Dy())
	}
}

func TestRunWithoutScenarios(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"-out", dir, "testdata/count3.txt"}, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"## Storage", "## Pipeline", "## Pinpoint", "## Failures"} {
		if strings.Contains(string(md), absent) {
			t.Errorf("report.md has %q without such benchmarks in the input", absent)
		}
	}
	if pngs, _ := filepath.Glob(filepath.Join(dir, "*.png")); len(pngs) != 0 {
		t.Errorf("charts written without scenario benchmarks: %v", pngs)
	}
}

func TestRunErrors(t *testing.T) {
	noise := filepath.Join(t.TempDir(), "noise.txt")
	if err := os.WriteFile(noise, []byte("PASS\nok  \tgithub.com/weftobs/weft/x\t0.1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"testdata/count3.txt"}, "need -out DIR"},
		{[]string{"-out", t.TempDir()}, "need -out DIR"},
		{[]string{"-out", t.TempDir(), "testdata/missing.txt"}, "open benchmark output"},
		{[]string{"-out", t.TempDir(), noise}, "no benchmark result lines"},
	} {
		err := run(tc.args, nil, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
