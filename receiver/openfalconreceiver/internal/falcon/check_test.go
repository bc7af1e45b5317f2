package falcon

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const now = 1732000000

func good() Item {
	return Item{Endpoint: "web-01", Metric: "net.if.in.bytes", CounterType: "COUNTER", Tags: "iface=eth0",
		Value: Value{Kind: ValueNumber, Num: 42}, Step: 60, Timestamp: now - 60}
}

func TestCheckValid(t *testing.T) {
	it := good()
	p, tags, reason := Check(&it, now, nil)
	require.Equal(t, Valid, reason)
	assert.Equal(t, Point{Endpoint: "web-01", Metric: "net.if.in.bytes", Type: Counter, Value: 42, Step: 60,
		Timestamp: now - 60, Tags: []Tag{{"iface", "eth0"}}}, p)
	assert.Len(t, tags, 1)
}

// TestCheckReasons: every rule of transfer's RecvMetricValues, in its order.
func TestCheckReasons(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Item)
		want   Reason
	}{
		{"null", func(it *Item) { *it = Item{Null: true} }, ReasonNull},
		{"malformed", func(it *Item) { it.Malformed = true }, ReasonMalformed},
		{"kernel.hostname", func(it *Item) { it.Metric = "kernel.hostname" }, ReasonKernelHostname},
		{"no metric", func(it *Item) { it.Metric = "" }, ReasonNoMetric},
		{"no endpoint", func(it *Item) { it.Endpoint = "" }, ReasonNoEndpoint},
		{"lower-case type", func(it *Item) { it.CounterType = "gauge" }, ReasonCounterType},
		{"no type", func(it *Item) { it.CounterType = "" }, ReasonCounterType},
		{"unknown type", func(it *Item) { it.CounterType = "ABSOLUTE" }, ReasonCounterType},
		{"empty string value", func(it *Item) { it.Value = Value{Kind: ValueString} }, ReasonValue},
		{"zero step", func(it *Item) { it.Step = 0 }, ReasonStep},
		{"negative step", func(it *Item) { it.Step = -60 }, ReasonStep},
		{"too long", func(it *Item) { it.Metric, it.Tags = strings.Repeat("m", 255), strings.Repeat("t", 256) }, ReasonTooLong},
		{"non-numeric string", func(it *Item) { it.Value = Value{Kind: ValueString, Str: "12ms"} }, ReasonValue},
		{"out of range string", func(it *Item) { it.Value = Value{Kind: ValueString, Str: "1e400"} }, ReasonValue},
		{"no value", func(it *Item) { it.Value = Value{} }, ReasonValue},
		{"boolean value", func(it *Item) { it.Value = Value{Kind: ValueOther} }, ReasonValue},
		// Transfer checks the step before it parses the value.
		{"bad step before bad value", func(it *Item) { it.Step, it.Value = 0, Value{Kind: ValueString, Str: "x"} }, ReasonStep},
		{"kernel.hostname before no endpoint", func(it *Item) { it.Metric, it.Endpoint = "kernel.hostname", "" }, ReasonKernelHostname},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := good()
			tt.change(&it)
			_, tags, reason := Check(&it, now, nil)
			assert.Equal(t, tt.want, reason)
			assert.Empty(t, tags)
		})
	}
}

func TestCheckAccepts(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Item)
		check  func(*testing.T, Point)
	}{
		{"510 bytes exactly", func(it *Item) { it.Metric, it.Tags = strings.Repeat("m", 255), "k="+strings.Repeat("t", 253) }, nil},
		{"numeric string", func(it *Item) { it.Value = Value{Kind: ValueString, Str: "1e3"} },
			func(t *testing.T, p Point) { assert.Equal(t, 1000.0, p.Value) }},
		{"NaN string, as transfer's ParseFloat reads it", func(it *Item) { it.Value = Value{Kind: ValueString, Str: "NaN"} },
			func(t *testing.T, p Point) { assert.True(t, math.IsNaN(p.Value)) }},
		{"GAUGE", func(it *Item) { it.CounterType = "GAUGE" }, func(t *testing.T, p Point) { assert.Equal(t, Gauge, p.Type) }},
		{"DERIVE", func(it *Item) { it.CounterType = "DERIVE" }, func(t *testing.T, p Point) { assert.Equal(t, Derive, p.Type) }},
		{"step 1 kept (min_step is the mapping's)", func(it *Item) { it.Step = 1 }, func(t *testing.T, p Point) { assert.Equal(t, int64(1), p.Step) }},
		{"no timestamp -> now", func(it *Item) { it.Timestamp = 0 }, func(t *testing.T, p Point) { assert.Equal(t, int64(now), p.Timestamp) }},
		{"negative timestamp -> now", func(it *Item) { it.Timestamp = -5 }, func(t *testing.T, p Point) { assert.Equal(t, int64(now), p.Timestamp) }},
		{"timestamp 2x now kept", func(it *Item) { it.Timestamp = 2 * now }, func(t *testing.T, p Point) { assert.Equal(t, int64(2*now), p.Timestamp) }},
		{"timestamp past 2x now -> now", func(it *Item) { it.Timestamp = 2*now + 1 }, func(t *testing.T, p Point) { assert.Equal(t, int64(now), p.Timestamp) }},
		{"milliseconds -> now", func(it *Item) { it.Timestamp = now * 1000 }, func(t *testing.T, p Point) { assert.Equal(t, int64(now), p.Timestamp) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := good()
			tt.change(&it)
			p, _, reason := Check(&it, now, nil)
			require.Equal(t, Valid, reason)
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	tests := []struct {
		in   string
		want []Tag
	}{
		{"", nil},
		{"iface=eth0", []Tag{{"iface", "eth0"}}},
		{"mount=/,fstype=ext4", []Tag{{"fstype", "ext4"}, {"mount", "/"}}},
		{" a = 1 , b=2 ", []Tag{{"a", "1"}, {"b", "2"}}},
		{"a=1,b,c=3", []Tag{{"a", "1"}, {"c", "3"}}},
		{"a=1,,a=2,a=3", []Tag{{"a", "3"}}},
		{"b=1,a=x,b=2,a=y", []Tag{{"a", "y"}, {"b", "2"}}},
		{"url=http://h/?q=1", []Tag{{"url", "http://h/?q=1"}}},
		{"a=,=v", []Tag{{"", "v"}, {"a", ""}}},
		{",,,", nil},
		{"k=v,", []Tag{{"k", "v"}}},
		{"机房=北京,app=web", []Tag{{"app", "web"}, {"机房", "北京"}}},
		{"\ta=1", []Tag{{"\ta", "1"}}}, // only spaces are removed, as in transfer
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			prior := []Tag{{"other", "push"}}
			got := ParseTags(tt.in, prior)
			assert.Equal(t, prior, got[:1], "appends")
			if tt.want == nil {
				assert.Len(t, got, 1)
				return
			}
			assert.Equal(t, tt.want, got[1:])
		})
	}
}

// TestCheckSharesOneTagBuffer: the points of a push keep their own tags as
// the buffer grows.
func TestCheckSharesOneTagBuffer(t *testing.T) {
	var tags []Tag
	var points []Point
	for i, s := range []string{"a=1", "b=2,c=3", "", "d=4,e=5,f=6"} {
		it := good()
		it.Tags = s
		p, t2, reason := Check(&it, now, tags)
		require.Equal(t, Valid, reason, i)
		tags = t2
		points = append(points, p)
	}
	assert.Equal(t, []Tag{{"a", "1"}}, points[0].Tags)
	assert.Equal(t, []Tag{{"b", "2"}, {"c", "3"}}, points[1].Tags)
	assert.Empty(t, points[2].Tags)
	assert.Equal(t, []Tag{{"d", "4"}, {"e", "5"}, {"f", "6"}}, points[3].Tags)
	assert.Equal(t, 1, cap(points[0].Tags), "a point's tags cannot be appended over the next point's")
}
