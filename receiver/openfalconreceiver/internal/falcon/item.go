// Package falcon reads Open-Falcon's metric items (the JSON falcon-agent and
// push scripts send) and validates them the way transfer does.
package falcon

// Item is one element of a push: Open-Falcon's MetricValue as it arrived,
// before validation.
type Item struct {
	Endpoint    string
	Metric      string
	CounterType string
	Tags        string
	Value       Value
	Step        int64
	Timestamp   int64

	// Null is set for a JSON null element; transfer counts it as invalid.
	Null bool
	// Malformed is set when the element is not an object or one of its
	// fields has a JSON type Open-Falcon's structs cannot hold (a step in
	// quotes, a tag list as an array). Transfer would refuse the whole
	// request; here only the item is invalid.
	Malformed bool
}

// ValueKind says what JSON the value field held.
type ValueKind uint8

const (
	// ValueNone is a missing or null value.
	ValueNone ValueKind = iota
	// ValueNumber is a JSON number, in Value.Num.
	ValueNumber
	// ValueString is a JSON string, in Value.Str; it must parse as a number.
	ValueString
	// ValueOther is a boolean, object or array: never a valid value.
	ValueOther
)

// Value is the value field: Open-Falcon accepts a number or a numeric string.
type Value struct {
	Kind ValueKind
	Num  float64
	Str  string
}

// CounterType is Open-Falcon's counterType, the RRD data source type.
type CounterType uint8

// The counter types transfer accepts, spelled exactly so.
const (
	Gauge CounterType = iota + 1
	Counter
	Derive
)

func (t CounterType) String() string {
	switch t {
	case Gauge:
		return "GAUGE"
	case Counter:
		return "COUNTER"
	case Derive:
		return "DERIVE"
	}
	return "invalid"
}

// Tag is one key=value pair of an item's tags.
type Tag struct {
	Key, Value string
}

// Point is a valid item, ready to map: its tags parsed and in canonical
// order, its timestamp fixed, its value a number.
type Point struct {
	Endpoint  string
	Metric    string
	Type      CounterType
	Value     float64
	Step      int64 // seconds, > 0
	Timestamp int64 // Unix seconds, > 0
	// Tags are sorted by key, one per key (the last one sent wins).
	Tags []Tag
}
