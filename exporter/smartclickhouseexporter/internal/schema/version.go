// Package schema generates the smart_clickhouse exporter's ClickHouse DDL:
// tables, versioned migrations, dictionaries (as DDL or as XML files) and
// decoding views, for servers from 18.16 to 26.x, standalone or on a
// cluster. It only builds text; running it is the exporter's job.
package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a ClickHouse server version, major.minor: what SELECT version()
// starts with.
type Version struct {
	Major, Minor int
}

// ParseVersion reads "18.16.1", "26.5.1.1" or "23.8".
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("ClickHouse version %q is not major.minor[.patch]", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return Version{}, fmt.Errorf("ClickHouse version %q is not major.minor[.patch]", s)
	}
	return Version{major, minor}, nil
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// Features are what the DDL may use on a server. The thresholds come from
// ClickHouse's changelogs and are conservative: a feature is used only from
// the release where it is no longer experimental. Only 18.16 and 26.5 are
// tested on real engines.
type Features struct {
	Version Version
	// LowCardinalitySetting: LowCardinality columns need the session setting
	// allow_experimental_low_cardinality_type = 1 (before 20.1; the setting
	// is obsolete and ignored later).
	LowCardinalitySetting bool
	// TTL: table TTL expressions (19.6).
	TTL bool
	// Codecs: column compression codecs (Delta, ZSTD), and the
	// ttl_only_drop_parts setting (20.1).
	Codecs bool
	// SkipIndexes: data skipping indexes, bloom_filter among them (20.1).
	SkipIndexes bool
	// DateTime64: DateTime64(9) for precise times; before it, unix
	// nanoseconds in UInt64 (20.1).
	DateTime64 bool
	// IPTypes: the IPv4 and IPv6 types; before them UInt32 and
	// FixedString(16), which hold the same bytes (20.1).
	IPTypes bool
	// AddColumnIfNotExists: ALTER TABLE ... ADD COLUMN IF NOT EXISTS (19.1).
	AddColumnIfNotExists bool
	// CreateDictionary: CREATE DICTIONARY; before it, dictionaries are XML
	// files in the server's dictionaries_config directory (19.17).
	CreateDictionary bool
	// PostgreSQLSource: dictionaries with a POSTGRESQL source; before it
	// PostgreSQL was reachable only through ODBC (21.4).
	PostgreSQLSource bool
	// UpdateLag: the UPDATE_LAG dictionary source option (22.1).
	UpdateLag bool
}

// FeaturesOf returns what a server of version v supports.
func FeaturesOf(v Version) Features {
	modern := v.AtLeast(20, 1)
	return Features{
		Version:               v,
		LowCardinalitySetting: !modern,
		TTL:                   v.AtLeast(19, 6),
		Codecs:                modern,
		SkipIndexes:           modern,
		DateTime64:            modern,
		IPTypes:               modern,
		AddColumnIfNotExists:  v.AtLeast(19, 1),
		CreateDictionary:      v.AtLeast(19, 17),
		PostgreSQLSource:      v.AtLeast(21, 4),
		UpdateLag:             v.AtLeast(22, 1),
	}
}

// Settings are the session settings every DDL statement and insert needs
// on this server.
func (f Features) Settings() map[string]any {
	if f.LowCardinalitySetting {
		return map[string]any{"allow_experimental_low_cardinality_type": 1}
	}
	return nil
}

// InsertSettings are the settings of inserts: Settings, and on servers
// that limit it, no limit on the partitions one insert touches — a batch
// whose records span more than 100 days (replayed logs, a device with a bad
// clock) would otherwise be refused whole, and retried until dropped.
// Servers older than 20.1 have no such limit (nor the setting).
func (f Features) InsertSettings() map[string]any {
	if f.LowCardinalitySetting {
		return f.Settings()
	}
	return map[string]any{"max_partitions_per_insert_block": 0}
}
