package store

import (
	"strconv"
	"strings"
)

// Driver names accepted by Open.
const (
	DriverPostgres = "postgres"
	DriverMySQL    = "mysql"
)

// colType is a column's role; each dialect maps it to its own SQL type so
// that both databases get the same tables and column names.
type colType int

const (
	tID       colType = iota // ids and relation ids (0 = none)
	tSmall                   // kinds, 0/1 flags
	tBig                     // counters, versions, hashes
	tUID                     // Kubernetes uid, cluster name, static:<kind>:<name>
	tName                    // names
	tShort                   // short strings: service type, host IP
	tKey                     // label, annotation and env keys
	tText                    // JSON lists of the resource row
	tLongText                // label, annotation and env values
	tTime                    // UTC wall-clock time, microseconds
	tTimeNull                // the same, NULL allowed
)

// Column sizes. Names: Kubernetes names are at most 253 bytes; 512 leaves
// room for cluster and static resource names. Keys: a Kubernetes label or
// annotation key is at most 253 (prefix) + 1 + 63 (name) = 317 bytes.
const (
	maxUIDBytes   = 255
	maxNameBytes  = 512
	maxShortBytes = 64
	maxKeyBytes   = 317
)

// dialect is what differs between PostgreSQL and MySQL/MariaDB. Everything
// else (tables, columns, statements) is shared.
type dialect struct {
	name  string
	types map[colType]string
	// tableOptions ends every CREATE TABLE.
	tableOptions string
	// inlineIndexes: MySQL 8 has no CREATE INDEX IF NOT EXISTS, so secondary
	// indexes go inside CREATE TABLE IF NOT EXISTS there; PostgreSQL has no
	// inline index syntax.
	inlineIndexes bool
	// keyCol is the key/value tables' "key" column: a reserved word in MySQL.
	keyCol string
	// utcNow is the database clock as a UTC wall-clock timestamp with
	// microseconds (an SQL expression), the value every updated_at is
	// derived from.
	utcNow string
	// numbered: PostgreSQL parameters are $1, $2, ...; MySQL's are all ?.
	numbered bool
}

var pgDialect = &dialect{
	name: DriverPostgres,
	types: map[colType]string{
		tID:       "BIGINT NOT NULL",
		tSmall:    "SMALLINT NOT NULL",
		tBig:      "BIGINT NOT NULL",
		tUID:      "VARCHAR(255) NOT NULL",
		tName:     "VARCHAR(512) NOT NULL",
		tShort:    "VARCHAR(64) NOT NULL",
		tKey:      "VARCHAR(317) NOT NULL",
		tText:     "TEXT NOT NULL",
		tLongText: "TEXT NOT NULL",
		tTime:     "TIMESTAMP(6) NOT NULL",
		tTimeNull: "TIMESTAMP(6) NULL",
	},
	keyCol:   "key",
	utcNow:   "(clock_timestamp() AT TIME ZONE 'UTC')::timestamp(6)",
	numbered: true,
}

// MySQL/MariaDB. uid and key are VARBINARY: compared byte for byte (utf8mb4
// collations fold case or, like utf8mb4_bin, ignore trailing spaces, which
// would make distinct Kubernetes keys collide in the primary key), and a
// 317-byte key stays far below InnoDB's 3072-byte index limit (a utf8mb4
// VARCHAR(317) would count 4 bytes a character). Values are MEDIUMTEXT:
// annotations reach 256 KiB, more than TEXT's 64 KiB. DATETIME, not
// TIMESTAMP: no session time zone conversion and no 2038 limit.
var myDialect = &dialect{
	name: DriverMySQL,
	types: map[colType]string{
		tID:       "BIGINT NOT NULL",
		tSmall:    "SMALLINT NOT NULL",
		tBig:      "BIGINT NOT NULL",
		tUID:      "VARBINARY(255) NOT NULL",
		tName:     "VARCHAR(512) NOT NULL",
		tShort:    "VARCHAR(64) NOT NULL",
		tKey:      "VARBINARY(317) NOT NULL",
		tText:     "TEXT NOT NULL",
		tLongText: "MEDIUMTEXT NOT NULL",
		tTime:     "DATETIME(6) NOT NULL",
		tTimeNull: "DATETIME(6) NULL",
	},
	tableOptions:  " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	inlineIndexes: true,
	keyCol:        "`key`",
	utcNow:        "UTC_TIMESTAMP(6)",
}

// ph is the n-th (1-based) parameter.
func (d *dialect) ph(n int) string {
	if d.numbered {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// phs is a comma-separated list of parameters first..first+count-1, for IN
// lists.
func (d *dialect) phs(first, count int) string {
	var b strings.Builder
	for i := 0; i < count; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.ph(first + i))
	}
	return b.String()
}

// col is how a column name is written in statements.
func (d *dialect) col(name string) string {
	if name == "key" {
		return d.keyCol
	}
	return name
}

// upsertTail is the clause that turns a multi-row INSERT into an upsert on
// the table's primary key: every column in update is overwritten.
func (d *dialect) upsertTail(key []string, update []string) string {
	var b strings.Builder
	if d.numbered {
		b.WriteString(" ON CONFLICT (")
		for i, k := range key {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(d.col(k))
		}
		b.WriteString(") DO UPDATE SET ")
		for i, c := range update {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(d.col(c) + "=EXCLUDED." + d.col(c))
		}
		return b.String()
	}
	// VALUES(col) rather than MySQL 8.0.19's row alias: MariaDB knows only
	// the former.
	b.WriteString(" ON DUPLICATE KEY UPDATE ")
	for i, c := range update {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.col(c) + "=VALUES(" + d.col(c) + ")")
	}
	return b.String()
}

// insertIfMissing is an INSERT of one row (values: SQL constants or
// parameters) that does nothing when a row with the same key exists. Not
// INSERT IGNORE: that would also hide other errors.
func (d *dialect) insertIfMissing(table string, cols []string, values, key string) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ",") + ") VALUES (" + values + ")")
	if d.numbered {
		b.WriteString(" ON CONFLICT (" + key + ") DO NOTHING")
	} else {
		b.WriteString(" ON DUPLICATE KEY UPDATE " + key + "=" + key)
	}
	return b.String()
}
