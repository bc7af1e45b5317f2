// Command report turns `go test -bench` output into the markdown report of
// `make bench` (issue #8): report.md plus one PNG per chart.
//
//	go run ./tests/bench/report -out bench/results/2026-11-21 raw1.txt raw2.txt
//
// It reads any number of files (or "-" for stdin), each holding the output of
// one or many packages. Lines that are not benchmark results are ignored, so
// concatenated `go test ./...` output with logs and failures is fine.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// run is main without the exit, so that tests drive the real command line.
func run(args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output directory for report.md and the PNG charts (created if missing)")
	date := fs.String("date", time.Now().Format("2006-01-02"), "date printed in the report header")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./tests/bench/report -out DIR [-date YYYY-MM-DD] bench-output.txt... (\"-\" reads stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		fs.Usage()
		return errors.New("need -out DIR and at least one file of `go test -bench` output")
	}

	in := &input{}
	for _, name := range fs.Args() {
		if err := parseFile(name, stdin, in); err != nil {
			return err
		}
		in.Files = append(in.Files, filepath.Base(name))
	}
	if len(in.Runs) == 0 {
		return fmt.Errorf("no benchmark result lines in %s; pass the stdout of `go test -run '^$' -bench ...`", strings.Join(fs.Args(), ", "))
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("create the output directory: %w", err)
	}
	return writeReport(*out, in, readMachine(in, *date))
}

func parseFile(name string, stdin io.Reader, in *input) error {
	if name == "-" {
		return parse(stdin, in)
	}
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("open benchmark output: %w", err)
	}
	defer f.Close()
	if err := parse(f, in); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// result is one benchmark result line.
type result struct {
	Pkg    string // import path from the preceding "pkg:" line
	Name   string // full name without the GOMAXPROCS suffix, e.g. BenchmarkFoo/sub
	Procs  int    // GOMAXPROCS suffix; 1 when there was none, as go test omits "-1"
	Iters  int64
	Units  []string // in printed order
	Values map[string]float64
}

// input is everything read from all files.
type input struct {
	Files    []string
	Runs     []result
	CPUs     []string // distinct "cpu:" lines
	Platform []string // distinct goos/goarch
	Failures []string // "--- FAIL" and "FAIL pkg" lines, so missing figures are explained
}

// procsSuffix is the "-N" go test appends when GOMAXPROCS != 1. A sub-benchmark
// whose own name ends in "-<digits>" and that ran with GOMAXPROCS=1 is
// indistinguishable from it; go test output cannot tell them apart.
var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// parse reads one file. Header state (pkg, goos) is per file: a file without
// a "pkg:" line must not inherit the package of the previous file.
func parse(r io.Reader, in *input) error {
	var pkg, goos, goarch string
	// pending is a benchmark name printed without results on its line: the
	// benchmark wrote to stdout between go test printing its name and its
	// figures, which then arrive on a later line without a name.
	var pending string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024) // log lines can be long
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimSpace(strings.TrimPrefix(line, "pkg: "))
			pending = ""
			continue
		case strings.HasPrefix(line, "cpu: "):
			in.CPUs = addDistinct(in.CPUs, strings.TrimSpace(strings.TrimPrefix(line, "cpu: ")))
			continue
		case strings.HasPrefix(line, "goos: "):
			goos = strings.TrimSpace(strings.TrimPrefix(line, "goos: "))
			continue
		case strings.HasPrefix(line, "goarch: "):
			goarch = strings.TrimSpace(strings.TrimPrefix(line, "goarch: "))
			in.Platform = addDistinct(in.Platform, goos+"/"+goarch)
			continue
		case strings.Contains(line, "--- FAIL: "):
			// Without -v, go test prints the name before running it, so
			// the failure lands on the name's line.
			in.Failures = append(in.Failures, relPkg(pkg)+": "+line[strings.Index(line, "--- FAIL: "):])
			pending = ""
			continue
		case (strings.HasPrefix(line, "FAIL\t") || strings.HasPrefix(line, "FAIL ")) && len(strings.Fields(line)) >= 2:
			f := strings.Fields(line) // FAIL <pkg> <duration or [build failed]>
			in.Failures = append(in.Failures, relPkg(f[1])+": package FAIL "+strings.Join(f[2:], " "))
			continue
		}

		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if strings.HasPrefix(fields[0], "Benchmark") {
			if res, ok := parseResult(fields[0], fields[1:]); ok {
				res.Pkg = pkg
				in.Runs = append(in.Runs, res)
				pending = ""
			} else {
				pending = fields[0]
			}
			continue
		}
		if pending != "" {
			if res, ok := parseResult(pending, fields); ok {
				res.Pkg = pkg
				in.Runs = append(in.Runs, res)
				pending = ""
			}
		}
	}
	return sc.Err()
}

// parseResult parses "N value unit value unit ..." for the named benchmark.
func parseResult(name string, fields []string) (result, bool) {
	if len(fields) < 3 || len(fields)%2 != 1 {
		return result{}, false
	}
	iters, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || iters <= 0 {
		return result{}, false
	}
	res := result{Name: name, Procs: 1, Iters: iters, Values: map[string]float64{}}
	if m := procsSuffix.FindStringSubmatch(name); m != nil {
		res.Procs, _ = strconv.Atoi(m[1])
		res.Name = strings.TrimSuffix(name, m[0])
	}
	for i := 1; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return result{}, false
		}
		unit := fields[i+1]
		if _, dup := res.Values[unit]; !dup {
			res.Units = append(res.Units, unit)
		}
		res.Values[unit] = v
	}
	return res, true
}

func addDistinct(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// bench is one benchmark after merging its repeated runs (-count N).
type bench struct {
	Pkg    string
	Name   string
	Procs  int
	N      int      // number of runs merged
	Units  []string // union, in first-seen order
	Median map[string]float64
	// CPUFlag is set when the package ran this benchmark at several
	// GOMAXPROCS values, so the reproducing command needs -cpu.
	CPUFlag bool
}

// value returns the median of unit and whether any run reported it.
func (b *bench) value(unit string) (float64, bool) {
	if b == nil {
		return 0, false
	}
	v, ok := b.Median[unit]
	return v, ok
}

// aggregate merges runs of the same benchmark into medians: the median, not
// the mean, so that one run disturbed by a neighbour on the shared machine
// does not move the figure.
func aggregate(runs []result) []*bench {
	type key struct {
		pkg, name string
		procs     int
	}
	var order []key
	samples := map[key]map[string][]float64{}
	units := map[key][]string{}
	counts := map[key]int{}
	procsSeen := map[[2]string]map[int]bool{}
	for _, r := range runs {
		k := key{r.Pkg, r.Name, r.Procs}
		if samples[k] == nil {
			order = append(order, k)
			samples[k] = map[string][]float64{}
		}
		counts[k]++
		for _, u := range r.Units {
			units[k] = addDistinct(units[k], u)
			samples[k][u] = append(samples[k][u], r.Values[u])
		}
		pn := [2]string{r.Pkg, r.Name}
		if procsSeen[pn] == nil {
			procsSeen[pn] = map[int]bool{}
		}
		procsSeen[pn][r.Procs] = true
	}
	out := make([]*bench, 0, len(order))
	for _, k := range order {
		b := &bench{Pkg: k.pkg, Name: k.name, Procs: k.procs, N: counts[k], Units: units[k],
			Median: map[string]float64{}, CPUFlag: len(procsSeen[[2]string{k.pkg, k.name}]) > 1}
		for u, vs := range samples[k] {
			b.Median[u] = median(vs)
		}
		out = append(out, b)
	}
	return out
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// modulePath is stripped from package paths so that commands run from the
// repository root.
const modulePath = "github.com/weftobs/weft"

// relPkg turns an import path into the ./relative/ form go test accepts from
// the module root.
func relPkg(pkg string) string {
	switch {
	case pkg == "":
		return "(unknown package)"
	case pkg == modulePath:
		return "./"
	case strings.HasPrefix(pkg, modulePath+"/"):
		return "./" + strings.TrimPrefix(pkg, modulePath+"/") + "/"
	}
	return pkg // outside the module: go test takes the import path as is
}

// benchPattern builds the -bench regexp that selects exactly name: go test
// splits the pattern at "/" and matches each level separately.
func benchPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// command is the go test invocation that reproduces one benchmark; flags are
// the extra flags the benchmark needs (-benchmem, -benchtime 1x).
func command(b *bench, flags string) string {
	cmd := "go test -run '^$' -bench " + shellQuote(benchPattern(b.Name))
	if flags != "" {
		cmd += " " + flags
	}
	if b.CPUFlag {
		cmd += " -cpu " + strconv.Itoa(b.Procs)
	}
	return cmd + " " + shellQuote(relPkg(b.Pkg))
}

// shellQuote single-quotes s when the shell would otherwise interpret it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
