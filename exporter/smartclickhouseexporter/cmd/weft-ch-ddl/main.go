// Command weft-ch-ddl prints the ClickHouse DDL of the smart_clickhouse
// exporter, for a DBA to apply where the collector runs with
// create_schema: false:
//
//	go run ./exporter/smartclickhouseexporter/cmd/weft-ch-ddl --version 23.8 --database weft \
//	    --dict-driver postgres --dict-host metadata-db --dict-port 5432 --dict-user clickhouse --dict-database weft
//
// The dictionaries' password comes from the environment variable
// WEFT_DICT_PASSWORD, not a flag, so that it stays out of shell history and
// process lists. For servers before 19.17 (no CREATE DICTIONARY) the
// dictionaries are XML files: written into --xml-dir, or printed after the
// DDL when it is not set.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "weft-ch-ddl:", err)
		os.Exit(2)
	}
}

func run(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("weft-ch-ddl", flag.ContinueOnError)
	fs.SetOutput(out)
	version := fs.String("version", "23.8", "ClickHouse server version (SELECT version()), major.minor")
	var o schema.Options
	fs.StringVar(&o.Database, "database", "weft", "database of tables, dictionaries and views")
	fs.StringVar(&o.Cluster, "cluster", "", "create Replicated local tables and Distributed tables ON CLUSTER this cluster")
	fs.DurationVar(&o.TTL, "ttl", 0, "row retention, e.g. 720h; 0 keeps rows")
	fs.StringVar(&o.Source.Driver, "dict-driver", "", "dictionaries' metadata database: postgres or mysql; empty: no dictionaries and views")
	fs.StringVar(&o.Source.Host, "dict-host", "", "metadata database host, as the ClickHouse server reaches it")
	fs.IntVar(&o.Source.Port, "dict-port", 0, "metadata database port")
	fs.StringVar(&o.Source.User, "dict-user", "", "metadata database user (password: WEFT_DICT_PASSWORD)")
	fs.StringVar(&o.Source.Database, "dict-database", "", "metadata database name")
	fs.DurationVar(&o.Lifetime, "dict-lifetime", 60*time.Second, "longest a dictionary goes without checking for changes")
	xmlDir := fs.String("xml-dir", "", "servers before 19.17: write the XML dictionaries here instead of printing them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := schema.ParseVersion(*version)
	if err != nil {
		return err
	}
	o.Source.Password = getenv("WEFT_DICT_PASSWORD")
	f := schema.FeaturesOf(v)
	stmts, err := schema.Script(f, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "-- Weft smart_clickhouse schema version %d for ClickHouse %s\n\n", schema.Latest(), v)
	for k, val := range f.Settings() {
		fmt.Fprintf(out, "SET %s = %v;\n\n", k, val)
	}
	files, err := schema.XMLFiles(f, o)
	if err != nil {
		return err
	}
	// The views read the dictionaries: with XML dictionaries, the files go
	// in place before the views are created.
	views := map[string]bool{}
	for _, obj := range schema.ViewObjects(f, o) {
		for _, s := range obj.Create {
			views[s] = true
		}
	}
	for _, s := range stmts {
		if len(files) > 0 && views[s] {
			continue
		}
		fmt.Fprintf(out, "%s;\n\n", s)
	}
	if len(files) == 0 {
		return nil
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if *xmlDir != "" {
			if err := os.WriteFile(filepath.Join(*xmlDir, n), files[n], 0o640); err != nil {
				return err
			}
			fmt.Fprintf(out, "-- wrote %s\n", filepath.Join(*xmlDir, n))
			continue
		}
		fmt.Fprintf(out, "-- file %s (into the server's dictionaries_config directory):\n%s\n", n, files[n])
	}
	fmt.Fprintln(out, "\n-- once the server has loaded the dictionaries (SELECT name FROM system.dictionaries):")
	for _, obj := range schema.ViewObjects(f, o) {
		for _, s := range obj.Create {
			fmt.Fprintf(out, "%s;\n\n", s)
		}
	}
	return nil
}
