package smartclickhouseexporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// hosts are the host:port pairs of a comma-separated endpoint list
// (validated by Config.Validate).
func hosts(endpoint string) []string {
	_, rest, _ := strings.Cut(endpoint, "://")
	var out []string
	for _, h := range strings.Split(rest, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// openConn opens a native-protocol connection pool to the configured
// servers, trying them in order. It connects without a default database:
// Weft's database may not exist yet, and every statement names it.
func openConn(ctx context.Context, cfg *Config, maxConns int) (driver.Conn, error) {
	tlsCfg, err := cfg.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	opts := &clickhouse.Options{
		Addr: hosts(cfg.Endpoint),
		Auth: clickhouse.Auth{Username: cfg.Username, Password: string(cfg.Password)},
		TLS:  tlsCfg,
		// A server that does not answer within the insert timeout is as
		// good as down: try the next one.
		DialTimeout:      dialTimeout(cfg),
		MaxOpenConns:     maxConns,
		MaxIdleConns:     maxConns,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		ClientInfo:       clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{Name: "weftcol-smart_clickhouse", Version: "1"}}},
	}
	switch cfg.Compression {
	case "lz4", "":
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	case "zstd":
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionZSTD}
	}
	return clickhouse.Open(opts)
}

func dialTimeout(cfg *Config) time.Duration {
	if cfg.Timeout > 0 && cfg.Timeout < 10*time.Second {
		return cfg.Timeout
	}
	return 10 * time.Second
}

// db is what the schema runner needs from a connection; the tests give it
// chDB as well.
type db interface {
	Exec(ctx context.Context, query string, args ...any) error
	// QueryStrings returns every row of a query whose columns are Strings.
	QueryStrings(ctx context.Context, query string, args ...any) ([][]string, error)
}

// chConn adapts a clickhouse-go connection, adding the session settings the
// server needs (LowCardinality on old servers) to every statement.
type chConn struct {
	conn     driver.Conn
	settings clickhouse.Settings
}

func (c *chConn) ctx(ctx context.Context) context.Context {
	if len(c.settings) == 0 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(c.settings))
}

func (c *chConn) Exec(ctx context.Context, query string, args ...any) error {
	return c.conn.Exec(c.ctx(ctx), query, args...)
}

func (c *chConn) QueryStrings(ctx context.Context, query string, args ...any) ([][]string, error) {
	rows, err := c.conn.Query(c.ctx(ctx), query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	n := len(rows.Columns())
	var out [][]string
	for rows.Next() {
		row := make([]string, n)
		ptrs := make([]any, n)
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// serverFeatures asks the server its version and what the DDL may use.
func serverFeatures(ctx context.Context, d db) (schema.Features, error) {
	rows, err := d.QueryStrings(ctx, "SELECT version()")
	if err != nil {
		return schema.Features{}, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return schema.Features{}, errors.New("SELECT version() returned no version")
	}
	v, err := schema.ParseVersion(rows[0][0])
	if err != nil {
		return schema.Features{}, err
	}
	return schema.FeaturesOf(v), nil
}

// permanentCodes are ClickHouse error codes that the same insert would get
// again: the schema or the data does not fit, or the credentials are
// wrong. Retrying them only delays the loss and holds up the queue.
var permanentCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	8:   "THERE_IS_NO_COLUMN",
	10:  "NOT_FOUND_COLUMN_IN_BLOCK",
	16:  "NO_SUCH_COLUMN_IN_TABLE",
	20:  "NUMBER_OF_COLUMNS_DOESNT_MATCH",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	36:  "BAD_ARGUMENTS",
	41:  "CANNOT_PARSE_DATETIME",
	43:  "ILLEGAL_TYPE_OF_ARGUMENT",
	44:  "ILLEGAL_COLUMN",
	47:  "UNKNOWN_IDENTIFIER",
	53:  "TYPE_MISMATCH",
	60:  "UNKNOWN_TABLE",
	62:  "SYNTAX_ERROR",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	81:  "UNKNOWN_DATABASE",
	117: "INCORRECT_DATA",
	192: "UNKNOWN_USER",
	193: "WRONG_PASSWORD",
	194: "REQUIRED_PASSWORD",
	497: "ACCESS_DENIED",
	516: "AUTHENTICATION_FAILED",
}

// isPermanent reports whether err will not go away by retrying.
func isPermanent(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		_, ok := permanentCodes[ex.Code]
		return ok
	}
	// A value clickhouse-go cannot convert to the column's type: the
	// table is not what this exporter wrote it for.
	var conv *column.ColumnConverterError
	if errors.As(err, &conv) {
		return true
	}
	var colErr *column.Error
	return errors.As(err, &colErr)
}

// schemaGone reports whether an insert failed because the database is not
// there (on the server that answered — another host of the endpoint list —
// or after it was dropped) or the table was made for another server version
// (a converter error). Setting the schema up again on the server that
// answers fixes it, so it is retried, not dropped.
func schemaGone(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		// No such database: setup creates it with everything in it. (A
		// missing table or column in a database whose schema_version says
		// it is there is not: migrations do not put back what was dropped.)
		return ex.Code == 81
	}
	var conv *column.ColumnConverterError
	var colErr *column.Error
	return errors.As(err, &conv) || errors.As(err, &colErr)
}

// isNetwork reports whether err is a connection problem: the server is
// down, restarting or unreachable.
func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout)
}

// redactor removes secrets from error text. ClickHouse echoes statements in
// some errors (a syntax error quotes the DDL around it), and DDL of
// dictionaries carries the source's password.
//
// Every configured secret (an empty one is none) is redacted whatever its
// length, in three ways:
//   - where the exporter itself puts a password: the PASSWORD '...' literal
//     of dictionary DDL, the <password> element of XML dictionaries and the
//     user:password@ of a URL. These are redacted by position, whatever
//     they hold, so even a password that is no longer configured is hidden;
//   - every occurrence of the secret as a ClickHouse string literal ('pw',
//     as the DDL quotes it: what a syntax error echoes from the failing
//     token on);
//   - every bare occurrence of secrets of minBare characters or more.
//
// A shorter secret is not replaced bare: replacing every "a" of a message
// would garble it and, by what is missing, give the password away.
type redactor struct {
	rep *strings.Replacer // nil: no secrets
}

// minBare is the shortest secret redacted wherever it occurs.
const minBare = 3

// placeholder replaces secrets.
const placeholder = "[REDACTED]"

var secretContexts = []*regexp.Regexp{
	// PASSWORD 'literal' of dictionary sources, possibly cut short.
	regexp.MustCompile(`(?is)(\bPASSWORD\s+')((?:[^'\\]|\\.)*\\?)`),
	// <password>...</password> of XML dictionaries.
	regexp.MustCompile(`(?is)(<password>)(.*?)(?:</password>|\z)`),
	// scheme://user:password@host.
	regexp.MustCompile(`(://[^/\s:@]*:)([^/\s@]+)(?:@)`),
}

func newRedactor(secrets ...string) redactor {
	var pairs []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			pairs = append(pairs, s)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		add(schema.QuoteString(s))
		if len(s) >= minBare {
			add(s)
		}
	}
	if len(pairs) == 0 {
		return redactor{}
	}
	// Longest first: the quoted form wins over the bare one.
	sort.Slice(pairs, func(i, j int) bool { return len(pairs[i]) > len(pairs[j]) })
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p, placeholder)
	}
	return redactor{rep: strings.NewReplacer(args...)}
}

// redactContexts hides whatever sits where a password goes.
func redactContexts(s string) string {
	for _, re := range secretContexts {
		if !re.MatchString(s) {
			continue
		}
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			sub := re.FindStringSubmatchIndex(m)
			// Keep the lead (group 1) and what follows the secret
			// (after group 2).
			return m[:sub[3]] + placeholder + m[sub[5]:]
		})
	}
	return s
}

func (r redactor) String(s string) string {
	if r.rep != nil {
		s = r.rep.Replace(s)
	}
	return redactContexts(s)
}

// Error returns err with secrets removed from its text. The result does not
// wrap err: nothing can reach the original text through it.
func (r redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(r.String(err.Error()))
}

// insertError turns a failed insert into what exporterhelper expects:
// permanent (dropped, counted by exporterhelper) or retryable, with secrets
// removed.
func (r redactor) insertError(table string, err error) error {
	msg := fmt.Errorf("insert into %s: %s", table, r.String(err.Error()))
	if isPermanent(err) && !isNetwork(err) {
		return consumererror.NewPermanent(msg)
	}
	return msg
}
