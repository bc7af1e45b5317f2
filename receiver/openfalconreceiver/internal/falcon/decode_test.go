package falcon

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// agentPush is what falcon-agent sends every step: a host's items in one array.
const agentPush = `[
 {"endpoint":"web-01","metric":"cpu.idle","value":97.5,"step":60,"counterType":"GAUGE","tags":"","timestamp":1732000000},
 {"endpoint":"web-01","metric":"net.if.in.bytes","value":123456789,"step":60,"counterType":"COUNTER","tags":"iface=eth0","timestamp":1732000000},
 {"endpoint":"web-01","metric":"df.bytes.free.percent","value":"42.5","step":60,"counterType":"GAUGE","tags":"fstype=ext4,mount=/","timestamp":1732000000}
]`

func TestDecodeAgentPush(t *testing.T) {
	var d Decoder
	items, err := d.Decode([]byte(agentPush), nil)
	require.NoError(t, err)
	assert.Equal(t, []Item{
		{Endpoint: "web-01", Metric: "cpu.idle", CounterType: "GAUGE", Value: Value{Kind: ValueNumber, Num: 97.5}, Step: 60, Timestamp: 1732000000},
		{Endpoint: "web-01", Metric: "net.if.in.bytes", CounterType: "COUNTER", Tags: "iface=eth0", Value: Value{Kind: ValueNumber, Num: 123456789}, Step: 60, Timestamp: 1732000000},
		{Endpoint: "web-01", Metric: "df.bytes.free.percent", CounterType: "GAUGE", Tags: "fstype=ext4,mount=/", Value: Value{Kind: ValueString, Str: "42.5"}, Step: 60, Timestamp: 1732000000},
	}, items)
	require.NoError(t, compareWithStd([]byte(agentPush)))
}

// TestDecodeLikeEncodingJSON pins the encoding/json behaviours pushes rely
// on, each checked both against the expected items and against
// encoding/json itself.
func TestDecodeLikeEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Item
	}{
		{"null push", `null`, nil},
		{"empty push", ` [ ] `, nil},
		{"null item", `[null]`, []Item{{Null: true}}},
		{"empty object", `[{}]`, []Item{{}}},
		{"keys ignore case", `[{"EndPoint":"h","METRIC":"m","countertype":"GAUGE","Value":1,"STEP":60,"Tags":"a=b","TimeStamp":5}]`,
			[]Item{{Endpoint: "h", Metric: "m", CounterType: "GAUGE", Value: Value{Kind: ValueNumber, Num: 1}, Step: 60, Tags: "a=b", Timestamp: 5}}},
		{"last duplicate wins", `[{"metric":"a","metric":"b","Metric":"c"}]`, []Item{{Metric: "c"}}},
		{"null leaves a string alone", `[{"endpoint":"h","endpoint":null}]`, []Item{{Endpoint: "h"}}},
		{"null leaves an int alone", `[{"step":60,"step":null}]`, []Item{{Step: 60}}},
		{"null clears the value", `[{"value":1,"value":null}]`, []Item{{}}},
		{"unknown fields skipped", `[{"x":{"y":[1,{"z":null}],"w":"\u00e9"},"metric":"m","n":-1.5e-3,"t":true}]`, []Item{{Metric: "m"}}},
		{"value kinds", `[{"value":true},{"value":{}},{"value":[1]},{"value":"abc"},{"value":-0.25e2}]`, []Item{
			{Value: Value{Kind: ValueOther}}, {Value: Value{Kind: ValueOther}}, {Value: Value{Kind: ValueOther}},
			{Value: Value{Kind: ValueString, Str: "abc"}}, {Value: Value{Kind: ValueNumber, Num: -25}},
		}},
		{"escapes", `[{"metric":"a\"b\\c\/d\n\u4e2d\ud83d\ude00","tags":"k=\u0076"}]`, []Item{{Metric: "a\"b\\c/d\n中😀", Tags: "k=v"}}},
		{"lone surrogate replaced", `[{"metric":"x\ud800y"}]`, []Item{{Metric: "x\ufffdy"}}},
		{"invalid UTF-8 replaced", "[{\"metric\":\"a\xffb\"}]", []Item{{Metric: "a\ufffdb"}}},
		{"UTF-8 kept", `[{"endpoint":"主机-1","tags":"机房=北京"}]`, []Item{{Endpoint: "主机-1", Tags: "机房=北京"}}},
		{"escaped key", `[{"m\u0065tric":"m"}]`, []Item{{Metric: "m"}}},
		{"large ints", `[{"timestamp":9223372036854775807,"step":-9223372036854775808}]`, []Item{{Timestamp: 9223372036854775807, Step: -9223372036854775808}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			got, err := d.Decode([]byte(tt.in), nil)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			require.NoError(t, compareWithStd([]byte(tt.in)))
		})
	}
}

// TestDecodeMalformedItems: a field of the wrong JSON type fails only its
// item, where encoding/json (and so transfer) fails the whole push.
func TestDecodeMalformedItems(t *testing.T) {
	for _, bad := range []string{
		`{"step":"60"}`, `{"timestamp":1.5}`, `{"timestamp":1e9}`, `{"step":99999999999999999999}`,
		`{"metric":5}`, `{"endpoint":["a"]}`, `{"tags":{"a":"b"}}`, `{"counterType":true}`,
		`{"value":1e400}`, `5`, `"item"`, `[1,2]`, `true`,
	} {
		t.Run(bad, func(t *testing.T) {
			in := `[{"metric":"ok"},` + bad + `,{"metric":"ok2"}]`
			var d Decoder
			got, err := d.Decode([]byte(in), nil)
			require.NoError(t, err)
			require.Len(t, got, 3)
			assert.Equal(t, Item{Metric: "ok"}, got[0])
			assert.True(t, got[1].Malformed)
			assert.Equal(t, Item{Metric: "ok2"}, got[2])
			require.NoError(t, compareWithStd([]byte(in)))
		})
	}
}

func TestDecodeRefusesWhatIsNotAPush(t *testing.T) {
	for _, tt := range []struct{ in, err string }{
		{``, "no JSON value"},
		{`   `, "no JSON value"},
		{`{"metric":"m"}`, "must be a JSON array of metric items, got an object"},
		{`"x"`, "got a string"},
		{`42`, "got a number"},
		{`[{"metric":"m"}`, "ends at byte"},
		{`[{"metric":"m"},]`, "looking for the beginning of a value"},
		{`[{"metric" "m"}]`, "after a field name"},
		{`[{metric:"m"}]`, "beginning of a field name"},
		{`[{"metric":"m"}] x`, "after the JSON value"},
		{`[{"value":01}]`, "after an object field"},
		{`[{"value":1.}]`, "in a number"},
		{`[{"value":-}]`, "in a number"},
		{`[{"value":nul}]`, "expected null"},
		{"[{\"metric\":\"a\tb\"}]", "control character"},
		{`[{"metric":"\x"}]`, "invalid escape"},
		{`[{"metric":"\u12g4"}]`, "in a \\u escape"},
		{`[{"x":[1 2]}]`, "after an element"},
		{strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), "nesting deeper than 10000"},
	} {
		t.Run(tt.in[:min(len(tt.in), 30)], func(t *testing.T) {
			var d Decoder
			prior := []Item{{Metric: "before"}}
			got, err := d.Decode([]byte(tt.in), prior)
			require.ErrorContains(t, err, tt.err)
			assert.Equal(t, prior, got, "items as they were")
			require.NoError(t, compareWithStd([]byte(tt.in)))
		})
	}
}

// TestDecodeDeepUnknownField: nesting up to encoding/json's limit is
// accepted in an ignored field, without recursion.
func TestDecodeDeepUnknownField(t *testing.T) {
	depth := maxDepth - 2 // the push's array and the item's object
	in := `[{"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `,"metric":"m"}]`
	var d Decoder
	got, err := d.Decode([]byte(in), nil)
	require.NoError(t, err)
	assert.Equal(t, []Item{{Metric: "m"}}, got)
	require.NoError(t, compareWithStd([]byte(in)))
	_, err = d.Decode([]byte(`[{"x":[`+in+`]}]`), nil)
	require.ErrorContains(t, err, "nesting deeper")
}

// TestDecodeSharesStrings: items of one endpoint share its string, and
// nothing is kept between pushes beyond the intern limit.
func TestDecodeSharesStrings(t *testing.T) {
	var d Decoder
	items, err := d.Decode([]byte(agentPush), nil)
	require.NoError(t, err)
	assert.Same(t, unsafe.StringData(items[0].Endpoint), unsafe.StringData(items[2].Endpoint))

	var b strings.Builder
	b.WriteString("[")
	for i := range internLimit + 10 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"endpoint":"h` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strconv.Itoa(i) + `"}`)
	}
	b.WriteString("]")
	items, err = d.Decode([]byte(b.String()), nil)
	require.NoError(t, err)
	assert.Len(t, items, internLimit+10)
	assert.LessOrEqual(t, len(d.intern), internLimit)
}
