package harness

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ClickHouse is a ClickHouse server of the test's own: the machine's Debian
// clickhouse-server binary run with a config file, data directory and ports
// of its own.
type ClickHouse struct {
	// TCPAddr is the native-protocol address (host:port) clickhouse-go uses.
	TCPAddr string
	// HTTPAddr is the HTTP interface's address.
	HTTPAddr string
	// Dir holds the config, data and logs.
	Dir string
	// DictionariesDir is where the server reads *_dictionary.xml files from
	// (its dictionaries_config).
	DictionariesDir string

	proc *Process
}

// StartClickHouse starts a ClickHouse server on free loopback ports, installs
// clickhouse-server from Debian first if it is missing, and stops it when the
// test ends.
func StartClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	ensureDebian(t, []string{"clickhouse-server", "clickhouse-client"}, "clickhouse-server", "clickhouse-client")

	dir := t.TempDir()
	ch := &ClickHouse{
		TCPAddr:         fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		HTTPAddr:        fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		Dir:             dir,
		DictionariesDir: filepath.Join(dir, "dictionaries"),
	}
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log", "dictionaries"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(ch.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(clickhouseUsers), 0o644); err != nil {
		t.Fatal(err)
	}
	ch.Start(t)
	t.Cleanup(func() { ch.Stop(t) })
	return ch
}

// Start starts the server (again, after Stop) with the same ports and data,
// and waits until it answers queries.
func (ch *ClickHouse) Start(t testing.TB) {
	t.Helper()
	if ch.proc != nil {
		if exited, _ := ch.proc.Exited(); !exited {
			t.Fatal("clickhouse: Start while running")
		}
	}
	ch.proc = StartProcess(t, ch.Dir, "clickhouse-server", nil,
		"clickhouse-server", "--config-file="+filepath.Join(ch.Dir, "config.xml"))
	WaitFor(t, 60*time.Second, "clickhouse-server", func() error {
		if exited, err := ch.proc.Exited(); exited {
			return fmt.Errorf("exited (%v); log:\n%s", err, tail(filepath.Join(ch.Dir, "log", "clickhouse-server.err.log"), 30))
		}
		_, err := ch.Query("SELECT 1")
		return err
	})
}

// Stop stops the server; its data stays for a later Start.
func (ch *ClickHouse) Stop(t testing.TB) {
	t.Helper()
	if ch.proc == nil {
		return
	}
	if err := ch.proc.Stop(30 * time.Second); err != nil {
		t.Logf("clickhouse: %v", err)
	}
}

// Endpoint is the native-protocol endpoint in the form Weft's config takes.
func (ch *ClickHouse) Endpoint() string { return "tcp://" + ch.TCPAddr }

// Query runs sql over the HTTP interface and returns the result in
// ClickHouse's default TabSeparated format.
func (ch *ClickHouse) Query(sql string) (string, error) {
	resp, err := http.Post("http://"+ch.HTTPAddr+"/?"+url.Values{"database": {"default"}}.Encode(),
		"text/plain", strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// MustQuery is Query that fails the test on error.
func (ch *ClickHouse) MustQuery(t testing.TB, sql string) string {
	t.Helper()
	out, err := ch.Query(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// Version is the server's version string, e.g. 18.16.1.
func (ch *ClickHouse) Version(t testing.TB) string {
	return strings.TrimSpace(ch.MustQuery(t, "SELECT version()"))
}

// Client runs clickhouse-client against the server with extra arguments.
func (ch *ClickHouse) Client(args ...string) *exec.Cmd {
	_, port, _ := strings.Cut(ch.TCPAddr, ":")
	return exec.Command("clickhouse-client", append([]string{"--host", "127.0.0.1", "--port", port}, args...)...)
}

// config is a complete server config: every path points into the instance's
// directory and only loopback ports of its own are opened, so that instances
// never collide with each other or with a system-wide server.
func (ch *ClickHouse) config() string {
	_, tcpPort, _ := strings.Cut(ch.TCPAddr, ":")
	_, httpPort, _ := strings.Cut(ch.HTTPAddr, ":")
	d := ch.Dir
	return `<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>` + d + `/log/clickhouse-server.log</log>
        <errorlog>` + d + `/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>` + tcpPort + `</tcp_port>
    <http_port>` + httpPort + `</http_port>
    <max_connections>512</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>` + d + `/data/</path>
    <tmp_path>` + d + `/tmp/</tmp_path>
    <user_files_path>` + d + `/user_files/</user_files_path>
    <format_schema_path>` + d + `/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <dictionaries_config>` + d + `/dictionaries/*_dictionary.xml</dictionaries_config>
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>1000</flush_interval_milliseconds>
    </query_log>
</yandex>
`
}

// clickhouseUsers lets the default user in from loopback without a password.
// LowCardinality is experimental on 18.16 and must be allowed explicitly.
const clickhouseUsers = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
            <log_queries>1</log_queries>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`
