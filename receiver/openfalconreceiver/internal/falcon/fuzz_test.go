package falcon

import (
	"sort"
	"testing"
)

// FuzzDecode runs arbitrary bytes through Decoder and checks it against
// encoding/json (compareWithStd), then validates every item: Check must not
// panic, and a valid point must meet transfer's rules.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		agentPush,
		`null`, `[]`, `[null,{}]`, `{"metric":"m"}`,
		`[{"endpoint":"10.0.0.1","metric":"m","value":"1e3","step":60,"counterType":"DERIVE","tags":" b=2 ,a=1,a=3,x","timestamp":0}]`,
		`[{"Endpoint":"h","METRIC":"m","value":1,"value":null,"step":"60","counterType":"GAUGE"}]`,
		`[{"metric":"a\"b\u00e9\ud800","x":[{"y":[1,2,{"z":true}]}],"value":-1.5e-7}]`,
		"[{\"metric\":\"\xff\xfe\"}]",
		`[1,"x",[],true,{"step":1.5},{"value":1e999}]`,
		`[{"metric":"m"}`, `[{"metric" "m"}]`, `[01]`, `[{"value":nul}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := compareWithStd(data); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		var d Decoder
		items, err := d.Decode(data, nil)
		if err != nil {
			return
		}
		var tags []Tag
		for i := range items {
			p, t2, reason := Check(&items[i], now, tags)
			tags = t2
			if reason != Valid {
				continue
			}
			switch {
			case p.Metric == "" || p.Endpoint == "" || p.Metric == "kernel.hostname":
				t.Fatalf("valid point without metric or endpoint: %+v", p)
			case p.Step <= 0 || p.Timestamp <= 0 || p.Timestamp > 2*now:
				t.Fatalf("valid point with step %d, timestamp %d", p.Step, p.Timestamp)
			case p.Type != Gauge && p.Type != Counter && p.Type != Derive:
				t.Fatalf("valid point of type %d", p.Type)
			case len(p.Metric)+len(items[i].Tags) > MaxNameLength:
				t.Fatalf("valid point longer than %d", MaxNameLength)
			case !sort.SliceIsSorted(p.Tags, func(a, b int) bool { return p.Tags[a].Key < p.Tags[b].Key }):
				t.Fatalf("tags out of order: %v", p.Tags)
			}
			for j := 1; j < len(p.Tags); j++ {
				if p.Tags[j].Key == p.Tags[j-1].Key {
					t.Fatalf("duplicate tag key %q", p.Tags[j].Key)
				}
			}
		}
	})
}

// FuzzServerCodec puts arbitrary bytes on a connection, arriving in reads
// of chunk bytes, through ServerCodec and through net/rpc/jsonrpc's codec
// under net/rpc's server: the codec must not panic, must end the
// connection when the bytes end (serve fails a run still going after 10 s),
// and must answer exactly as net/rpc/jsonrpc does — the same reply lines,
// byte for byte, and the same items handed to Transfer.Update (the replies
// carry a digest of them).
func FuzzServerCodec(f *testing.F) {
	for _, s := range []string{
		updateReq + "\n" + pingReq,
		`{"method":"Transfer.Ping","params":[null],"id":1}{"method":"Transfer.Update","params":[[]],"id":"x"}`,
		`{"params":[[{"metric":"m","value":"1e3"}]],"ID":1,"Method":"Transfer.Update","params":[{"x":1}]}`,
		`{"method":"Transfer\u002eUpdate","params":[[{"endpoint":"h\u00e9\ud800"}]],"id":{"a": [1, "<&>"]}}`,
		`{"method":"Transfer.Nothing","params":[],"id":1} null {"method":"NoDot"}`,
		`{"method":"Transfer.Update","params":[[{"metric":"m",}]],"id":1}`,
		"{\"method\":\"Transfer.Update\",\"params\":[[{\"metric\":\"\xff\"}]],\"id\":\"\xe2\x80\xa8\"}",
		`{"method":"Transfer.Update","params":[[1,"x",[],true,{"step":1.5},{"value":1e999}]],"id":1}`,
		pingReq + `[1]`, pingReq + `{"method":1}`, pingReq + `nu`, "update web-01 cpu.idle 1 2\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		compareWithJSONRPC(t, data, int(chunk%17))
	})
}
