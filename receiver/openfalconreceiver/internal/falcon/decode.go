package falcon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit. Open-Falcon decodes with
// encoding/json, so input it refuses is refused here too.
const maxDepth = 10000

// internLimit bounds the strings a Decoder keeps for sharing between items:
// a push of many distinct endpoints must not grow it without end.
const internLimit = 4096

// Decoder reads pushes: a JSON array of Open-Falcon MetricValue objects,
// decoded with encoding/json's rules (field names matched case-insensitively,
// last duplicate field wins, null leaves a field alone, invalid UTF-8
// replaced), in one pass and without reflection. Where encoding/json would
// fail the whole push because one field has the wrong type, only that item
// is marked Malformed. A Decoder shares the endpoint and metric strings of
// the push it decodes between items; it is not safe for concurrent use.
type Decoder struct {
	data   []byte
	pos    int
	depth  int
	intern map[string]string
}

// Decode appends the items of data — a JSON array, or null for none — to
// items. On error (data is not JSON, or not an array) it returns items as it
// was and an error saying what was wrong where.
func (d *Decoder) Decode(data []byte, items []Item) ([]Item, error) {
	d.reset(data)
	out, err := d.top(items)
	d.data = nil // keep no reference to the caller's buffer
	if err != nil {
		return items, err
	}
	return out, nil
}

// reset readies the Decoder for data, one push (or one JSON-RPC request):
// strings are shared within it, not between them.
func (d *Decoder) reset(data []byte) {
	d.data, d.pos, d.depth = data, 0, 0
	if len(d.intern) > internLimit {
		d.intern = nil
	} else {
		clear(d.intern)
	}
}

func (d *Decoder) top(items []Item) ([]Item, error) {
	d.ws()
	if d.pos == len(d.data) {
		return items, d.errorf("no JSON value: send a JSON array of metric items")
	}
	var err error
	switch c := d.data[d.pos]; c {
	case '[':
		items, err = d.array(items)
	case 'n':
		err = d.literal("null")
	default:
		if err = d.skip(); err == nil {
			err = notAPush(c)
		}
	}
	if err != nil {
		return items, err
	}
	d.ws()
	if d.pos != len(d.data) {
		return items, d.errorf("invalid character %q after the JSON value", d.data[d.pos])
	}
	return items, nil
}

// notAPush is the error for a push that is JSON but not an array (nor
// null); c is its first byte. It is not a SyntaxError: the JSON-RPC codec
// answers it as the call's error and keeps the connection.
func notAPush(c byte) error {
	return fmt.Errorf("a push must be a JSON array of metric items, got %s", kindOf(c))
}

func (d *Decoder) array(items []Item) ([]Item, error) {
	d.pos++ // [
	if err := d.enter(); err != nil {
		return items, err
	}
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return items, nil
	}
	for {
		d.ws()
		if d.pos == len(d.data) {
			return items, d.unexpectedEnd()
		}
		var it Item
		var err error
		switch d.data[d.pos] {
		case '{':
			err = d.object(&it)
		case 'n':
			err = d.literal("null")
			it.Null = true
		default:
			err = d.skip()
			it.Malformed = true
		}
		if err != nil {
			return items, err
		}
		items = append(items, it)
		d.ws()
		if d.pos == len(d.data) {
			return items, d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return items, nil
		default:
			return items, d.errorf("invalid character %q after an array element", d.data[d.pos])
		}
	}
}

// The fields of MetricValue.
const (
	fieldUnknown = iota
	fieldEndpoint
	fieldMetric
	fieldValue
	fieldStep
	fieldCounterType
	fieldTags
	fieldTimestamp
)

var fieldNames = [...]string{
	fieldEndpoint:    "endpoint",
	fieldMetric:      "metric",
	fieldValue:       "value",
	fieldStep:        "step",
	fieldCounterType: "counterType",
	fieldTags:        "tags",
	fieldTimestamp:   "timestamp",
}

// fieldOf matches a key as encoding/json does: exactly, else ignoring case.
func fieldOf(key []byte) int {
	switch string(key) {
	case "endpoint":
		return fieldEndpoint
	case "metric":
		return fieldMetric
	case "value":
		return fieldValue
	case "step":
		return fieldStep
	case "counterType":
		return fieldCounterType
	case "tags":
		return fieldTags
	case "timestamp":
		return fieldTimestamp
	}
	for f := fieldEndpoint; f <= fieldTimestamp; f++ {
		if bytes.EqualFold(key, []byte(fieldNames[f])) {
			return f
		}
	}
	return fieldUnknown
}

func (d *Decoder) object(it *Item) error {
	d.pos++ // {
	if err := d.enter(); err != nil {
		return err
	}
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		key, err := d.key()
		if err != nil {
			return err
		}
		switch fieldOf(key) {
		case fieldEndpoint:
			err = d.stringField(&it.Endpoint, it, true)
		case fieldMetric:
			err = d.stringField(&it.Metric, it, true)
		case fieldCounterType:
			err = d.stringField(&it.CounterType, it, true)
		case fieldTags:
			err = d.stringField(&it.Tags, it, false)
		case fieldValue:
			err = d.valueField(it)
		case fieldStep:
			err = d.intField(&it.Step, it)
		case fieldTimestamp:
			err = d.intField(&it.Timestamp, it)
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
		d.ws()
		if d.pos == len(d.data) {
			return d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return d.errorf("invalid character %q after an object field", d.data[d.pos])
		}
	}
}

// key reads `"name" :` and returns the name, unescaped.
func (d *Decoder) key() ([]byte, error) {
	d.ws()
	if d.pos == len(d.data) {
		return nil, d.unexpectedEnd()
	}
	if d.data[d.pos] != '"' {
		return nil, d.errorf("invalid character %q looking for the beginning of a field name", d.data[d.pos])
	}
	raw, err := d.unquoted()
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.pos == len(d.data) {
		return nil, d.unexpectedEnd()
	}
	if d.data[d.pos] != ':' {
		return nil, d.errorf("invalid character %q after a field name", d.data[d.pos])
	}
	d.pos++
	d.ws()
	if d.pos == len(d.data) {
		return nil, d.unexpectedEnd()
	}
	return raw, nil
}

// stringField stores a JSON string; null leaves the field alone, anything
// else makes the item Malformed.
func (d *Decoder) stringField(dst *string, it *Item, intern bool) error {
	switch d.data[d.pos] {
	case '"':
		s, err := d.str(intern)
		if err != nil {
			return err
		}
		*dst = s
		return nil
	case 'n':
		return d.literal("null")
	}
	it.Malformed = true
	return d.skip()
}

// intField stores a JSON integer that fits in int64, as encoding/json does;
// null leaves the field alone.
func (d *Decoder) intField(dst *int64, it *Item) error {
	switch c := d.data[d.pos]; {
	case c == '-' || isDigit(c):
		raw, err := d.scanNumber()
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil { // a fraction, an exponent, or out of range
			it.Malformed = true
			return nil
		}
		*dst = n
		return nil
	case c == 'n':
		return d.literal("null")
	}
	it.Malformed = true
	return d.skip()
}

// valueField stores the value as encoding/json stores it in an interface{}:
// a number becomes a float64 (out of float64 range is an error), null
// clears it.
func (d *Decoder) valueField(it *Item) error {
	switch c := d.data[d.pos]; {
	case c == '"':
		s, err := d.str(false)
		if err != nil {
			return err
		}
		it.Value = Value{Kind: ValueString, Str: s}
		return nil
	case c == '-' || isDigit(c):
		raw, err := d.scanNumber()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			it.Malformed = true
			return nil
		}
		it.Value = Value{Kind: ValueNumber, Num: f}
		return nil
	case c == 'n':
		it.Value = Value{}
		return d.literal("null")
	}
	if err := d.skip(); err != nil {
		return err
	}
	it.Value = Value{Kind: ValueOther}
	return nil
}

// str reads a JSON string at d.pos.
func (d *Decoder) str(intern bool) (string, error) {
	start := d.pos
	raw, simple, err := d.scanString()
	if err != nil {
		return "", err
	}
	if !simple {
		return unquoteSlow(d.data[start:d.pos])
	}
	if !intern {
		return string(raw), nil
	}
	if s, ok := d.intern[string(raw)]; ok {
		return s, nil
	}
	s := string(raw)
	if d.intern == nil {
		d.intern = make(map[string]string)
	}
	if len(d.intern) < internLimit {
		d.intern[s] = s
	}
	return s, nil
}

// unquoted reads a JSON string at d.pos and returns its bytes, unescaped.
func (d *Decoder) unquoted() ([]byte, error) {
	start := d.pos
	raw, simple, err := d.scanString()
	if err != nil || simple {
		return raw, err
	}
	s, err := unquoteSlow(d.data[start:d.pos])
	return []byte(s), err
}

// unquoteSlow decodes a quoted string with escapes or non-UTF-8 bytes. It is
// rare, so encoding/json does it: its replacement of bad surrogates and
// bytes is what Open-Falcon sees.
func unquoteSlow(quoted []byte) (string, error) {
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		// scanString checked the escapes already: not expected.
		return "", &SyntaxError{msg: fmt.Sprintf("invalid JSON string %.40q: %v", quoted, err)}
	}
	return s, nil
}

// scanString moves past the string at d.pos and returns its bytes between
// the quotes; simple says they need no unescaping and are valid UTF-8.
func (d *Decoder) scanString() (raw []byte, simple bool, err error) {
	d.pos++ // opening quote
	start := d.pos
	escaped, wide := false, false
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			raw = d.data[start:d.pos]
			d.pos++
			simple = !escaped && (!wide || utf8.Valid(raw))
			return raw, simple, nil
		case c == '\\':
			escaped = true
			if d.pos+1 == len(d.data) {
				return nil, false, d.unexpectedEnd()
			}
			switch d.data[d.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos += 2
			case 'u':
				if d.pos+6 > len(d.data) {
					return nil, false, d.unexpectedEnd()
				}
				for _, h := range d.data[d.pos+2 : d.pos+6] {
					if !isHex(h) {
						return nil, false, d.errorf("invalid character %q in a \\u escape", h)
					}
				}
				d.pos += 6
			default:
				return nil, false, d.errorf("invalid escape \\%c in a string", d.data[d.pos+1])
			}
		case c < ' ':
			return nil, false, d.errorf("control character %#x in a string: escape it", c)
		default:
			if c >= utf8.RuneSelf {
				wide = true
			}
			d.pos++
		}
	}
	return nil, false, d.unexpectedEnd()
}

// scanNumber moves past a number of JSON's grammar and returns it.
func (d *Decoder) scanNumber() ([]byte, error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos == len(d.data):
		return nil, d.unexpectedEnd()
	case d.data[d.pos] == '0':
		d.pos++
	case isDigit(d.data[d.pos]):
		d.digits()
	default:
		return nil, d.errorf("invalid character %q in a number", d.data[d.pos])
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if d.pos == len(d.data) || !isDigit(d.data[d.pos]) {
			return nil, d.badNumberEnd()
		}
		d.digits()
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if d.pos == len(d.data) || !isDigit(d.data[d.pos]) {
			return nil, d.badNumberEnd()
		}
		d.digits()
	}
	return d.data[start:d.pos], nil
}

func (d *Decoder) digits() {
	for d.pos < len(d.data) && isDigit(d.data[d.pos]) {
		d.pos++
	}
}

func (d *Decoder) badNumberEnd() error {
	if d.pos == len(d.data) {
		return d.unexpectedEnd()
	}
	return d.errorf("invalid character %q in a number", d.data[d.pos])
}

func (d *Decoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) {
		if string(d.data[d.pos:]) == word[:len(d.data)-d.pos] {
			return d.unexpectedEnd()
		}
		return d.errorf("invalid literal, expected %s", word)
	}
	if string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.errorf("invalid literal, expected %s", word)
	}
	d.pos += len(word)
	return nil
}

// skip moves past one JSON value of any shape, checking its syntax. It keeps
// its own stack rather than recursing, so deep nesting cannot exhaust the
// goroutine's stack before maxDepth refuses it.
func (d *Decoder) skip() error {
	var buf [32]byte
	stack := buf[:0]
	for {
		// A value starts here.
		d.ws()
		if d.pos == len(d.data) {
			return d.unexpectedEnd()
		}
		switch c := d.data[d.pos]; {
		case c == '{' || c == '[':
			d.pos++
			if d.depth+len(stack)+1 > maxDepth {
				return d.errorf("nesting deeper than %d", maxDepth)
			}
			stack = append(stack, c)
			d.ws()
			if d.pos < len(d.data) && d.data[d.pos] == closer(c) {
				d.pos++
				stack = stack[:len(stack)-1]
				break // an empty container is a whole value
			}
			if c == '{' {
				if _, err := d.key(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if _, _, err := d.scanString(); err != nil {
				return err
			}
		case c == 't':
			if err := d.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := d.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := d.literal("null"); err != nil {
				return err
			}
		case c == '-' || isDigit(c):
			if _, err := d.scanNumber(); err != nil {
				return err
			}
		default:
			return d.errorf("invalid character %q looking for the beginning of a value", c)
		}
		// A value ended: close what it ends, or go on to the next element.
	next:
		for {
			if len(stack) == 0 {
				return nil
			}
			d.ws()
			if d.pos == len(d.data) {
				return d.unexpectedEnd()
			}
			top := stack[len(stack)-1]
			switch c := d.data[d.pos]; {
			case c == ',':
				d.pos++
				if top == '{' {
					if _, err := d.key(); err != nil {
						return err
					}
				}
				break next
			case c == closer(top):
				d.pos++
				stack = stack[:len(stack)-1]
			default:
				return d.errorf("invalid character %q after an element", c)
			}
		}
	}
}

func (d *Decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return d.errorf("nesting deeper than %d", maxDepth)
	}
	return nil
}

func (d *Decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// SyntaxError is input that is not JSON, as opposed to JSON of the wrong
// shape: the JSON-RPC codec closes the connection on it, as net/rpc's JSON
// codec does, where it answers a wrong shape as the call's error.
type SyntaxError struct {
	msg string
	// Truncated says the input ended in the middle of a value, valid so far.
	Truncated bool
}

func (e *SyntaxError) Error() string { return e.msg }

func (d *Decoder) errorf(format string, args ...any) error {
	return &SyntaxError{msg: fmt.Sprintf("invalid JSON at byte %d: %s", d.pos, fmt.Sprintf(format, args...))}
}

func (d *Decoder) unexpectedEnd() error {
	return &SyntaxError{msg: fmt.Sprintf("invalid JSON: it ends at byte %d in the middle of a value", len(d.data)), Truncated: true}
}

func closer(open byte) byte {
	if open == '{' {
		return '}'
	}
	return ']'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func kindOf(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	default:
		return "a number"
	}
}
