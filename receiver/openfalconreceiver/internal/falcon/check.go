package falcon

import (
	"strconv"
	"strings"
)

// Reason says why an item is invalid. The checks run in transfer's order, so
// an item with several faults is counted under the one transfer meets first.
type Reason uint8

const (
	// Valid is no reason: the item is valid.
	Valid Reason = iota
	// ReasonNull is a null element.
	ReasonNull
	// ReasonMalformed is an element that is not an object, or a field of the
	// wrong JSON type (transfer would fail the whole request).
	ReasonMalformed
	// ReasonKernelHostname is the metric kernel.hostname, whose string value
	// old agents sent; transfer drops it by name.
	ReasonKernelHostname
	// ReasonNoMetric is an empty or missing metric.
	ReasonNoMetric
	// ReasonNoEndpoint is an empty or missing endpoint.
	ReasonNoEndpoint
	// ReasonCounterType is a counterType other than GAUGE, COUNTER, DERIVE.
	ReasonCounterType
	// ReasonValue is a value that is missing, empty, or not a number or a
	// numeric string.
	ReasonValue
	// ReasonStep is a step that is missing, zero or negative.
	ReasonStep
	// ReasonTooLong is a metric and tags longer than MaxNameLength together.
	ReasonTooLong

	numReasons
)

// NumReasons is the number of reasons, Valid included, for tables indexed by
// Reason.
const NumReasons = int(numReasons)

var reasonNames = [numReasons]string{
	Valid:                "",
	ReasonNull:           "null",
	ReasonMalformed:      "malformed",
	ReasonKernelHostname: "kernel_hostname",
	ReasonNoMetric:       "no_metric",
	ReasonNoEndpoint:     "no_endpoint",
	ReasonCounterType:    "counter_type",
	ReasonValue:          "value",
	ReasonStep:           "step",
	ReasonTooLong:        "too_long",
}

// String is the reason's name in the invalid-items metric.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// MaxNameLength is transfer's bound on len(metric)+len(tags), in bytes: the
// two make graph's counter name.
const MaxNameLength = 510

// Check validates an item as transfer's RecvMetricValues does. For a valid
// item it returns the point, whose tags are appended to tags (one buffer for
// a whole push), and the grown buffer. now is the Unix time in seconds
// that replaces a timestamp <= 0 or > 2*now.
func Check(it *Item, now int64, tags []Tag) (Point, []Tag, Reason) {
	switch {
	case it.Null:
		return Point{}, tags, ReasonNull
	case it.Malformed:
		return Point{}, tags, ReasonMalformed
	case it.Metric == "kernel.hostname":
		return Point{}, tags, ReasonKernelHostname
	case it.Metric == "":
		return Point{}, tags, ReasonNoMetric
	case it.Endpoint == "":
		return Point{}, tags, ReasonNoEndpoint
	}
	var typ CounterType
	switch it.CounterType {
	case "GAUGE":
		typ = Gauge
	case "COUNTER":
		typ = Counter
	case "DERIVE":
		typ = Derive
	default:
		return Point{}, tags, ReasonCounterType
	}
	if it.Value.Kind == ValueString && it.Value.Str == "" {
		return Point{}, tags, ReasonValue
	}
	if it.Step <= 0 {
		return Point{}, tags, ReasonStep
	}
	if len(it.Metric)+len(it.Tags) > MaxNameLength {
		return Point{}, tags, ReasonTooLong
	}
	ts := it.Timestamp
	if ts <= 0 || ts > 2*now {
		ts = now
	}
	var v float64
	switch it.Value.Kind {
	case ValueNumber:
		v = it.Value.Num
	case ValueString:
		// The same parser as transfer: "1e3", "NaN" and "Inf" are numbers.
		f, err := strconv.ParseFloat(it.Value.Str, 64)
		if err != nil {
			return Point{}, tags, ReasonValue
		}
		v = f
	default:
		return Point{}, tags, ReasonValue
	}
	start := len(tags)
	tags = ParseTags(it.Tags, tags)
	return Point{
		Endpoint:  it.Endpoint,
		Metric:    it.Metric,
		Type:      typ,
		Value:     v,
		Step:      it.Step,
		Timestamp: ts,
		Tags:      tags[start:len(tags):len(tags)],
	}, tags, Valid
}

// ParseTags appends the tags of s, "k=v,k2=v2", to dst in canonical order,
// as transfer reads them: spaces removed, pieces split at the first '=',
// pieces without '=' dropped, the last of duplicate keys kept, sorted by key.
func ParseTags(s string, dst []Tag) []Tag {
	if s == "" {
		return dst
	}
	if strings.IndexByte(s, ' ') >= 0 {
		s = strings.ReplaceAll(s, " ", "")
	}
	start := len(dst)
	for s != "" {
		piece := s
		if i := strings.IndexByte(s, ','); i >= 0 {
			piece, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		if j := strings.IndexByte(piece, '='); j >= 0 {
			dst = append(dst, Tag{Key: piece[:j], Value: piece[j+1:]})
		}
	}
	tags := dst[start:]
	// Insertion sort: tag lists are short, and it is stable, which keeps
	// duplicates in the order sent so that the last can win.
	for i := 1; i < len(tags); i++ {
		for j := i; j > 0 && tags[j].Key < tags[j-1].Key; j-- {
			tags[j], tags[j-1] = tags[j-1], tags[j]
		}
	}
	out := 0
	for i := range tags {
		if i+1 < len(tags) && tags[i+1].Key == tags[i].Key {
			continue
		}
		tags[out] = tags[i]
		out++
	}
	return dst[:start+out]
}
