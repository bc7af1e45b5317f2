package falcon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// metricValue is Open-Falcon's model.MetricValue, which transfer and the
// agent decode pushes into with encoding/json: the oracle for Decoder.
type metricValue struct {
	Endpoint  string `json:"endpoint"`
	Metric    string `json:"metric"`
	Value     any    `json:"value"`
	Step      int64  `json:"step"`
	Type      string `json:"counterType"`
	Tags      string `json:"tags"`
	Timestamp int64  `json:"timestamp"`
}

// stdDecode decodes data as Open-Falcon does and converts the result to
// Items.
func stdDecode(data []byte) ([]Item, error) {
	var mvs []*metricValue
	err := json.Unmarshal(data, &mvs)
	items := make([]Item, len(mvs))
	for i, mv := range mvs {
		if mv == nil {
			items[i].Null = true
			continue
		}
		it := Item{Endpoint: mv.Endpoint, Metric: mv.Metric, CounterType: mv.Type, Tags: mv.Tags, Step: mv.Step, Timestamp: mv.Timestamp}
		switch v := mv.Value.(type) {
		case nil:
		case float64:
			it.Value = Value{Kind: ValueNumber, Num: v}
		case string:
			it.Value = Value{Kind: ValueString, Str: v}
		default:
			it.Value = Value{Kind: ValueOther}
		}
		items[i] = it
	}
	return items, err
}

// compareWithStd checks Decoder against encoding/json on data:
//   - when encoding/json decodes it, Decoder gives the same items;
//   - when it is not JSON, or not an array, Decoder fails too;
//   - when encoding/json fails only for a field's type, Decoder keeps every
//     item, marks at least one Malformed, and agrees on the others.
func compareWithStd(data []byte) error {
	var d Decoder
	got, err := d.Decode(data, nil)
	want, stdErr := stdDecode(data)
	var typeErr *json.UnmarshalTypeError
	topIsArray := len(bytes.TrimLeft(data, " \t\r\n")) > 0 && bytes.TrimLeft(data, " \t\r\n")[0] == '['
	switch {
	case stdErr == nil:
		if err != nil {
			return fmt.Errorf("encoding/json decodes it, Decoder fails: %v", err)
		}
		if !itemsEqual(got, want) {
			return fmt.Errorf("items differ:\n got %+v\nwant %+v", got, want)
		}
		for _, it := range got {
			if it.Malformed {
				return fmt.Errorf("item %+v marked malformed though encoding/json decodes it", it)
			}
		}
	case errors.As(stdErr, &typeErr) && topIsArray:
		if err != nil {
			return fmt.Errorf("encoding/json reports a type error (%v), Decoder fails: %v", stdErr, err)
		}
		if len(got) != len(want) {
			return fmt.Errorf("%d items, encoding/json has %d", len(got), len(want))
		}
		malformed := 0
		for i := range got {
			if got[i].Malformed {
				malformed++
				continue
			}
			if !itemsEqual(got[i:i+1], want[i:i+1]) {
				return fmt.Errorf("item %d differs:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
		if malformed == 0 {
			return fmt.Errorf("encoding/json reports %v, Decoder marks no item malformed", stdErr)
		}
	default:
		if err == nil {
			return fmt.Errorf("encoding/json fails (%v), Decoder accepts it: %+v", stdErr, got)
		}
	}
	return nil
}

// itemsEqual compares items, NaN aside (JSON has none).
func itemsEqual(a, b []Item) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}
