//go:build wasip1

// Command configured is a test plugin for weft_configure: it answers every
// record with the config it was given and how many times it was given one,
// rejects a config that has a "reject" field (saying why on stderr), and
// panics on a span named "panic" so that tests can make the host start a
// new instance.
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"unsafe"
)

var (
	input      []byte
	output     []byte
	config     []byte
	configured int
)

//go:wasmexport weft_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport weft_alloc
func alloc(size int32) int32 {
	input = make([]byte, size)
	return int32(uintptr(unsafe.Pointer(&input[0])))
}

//go:wasmexport weft_configure
func configure(ptr, n int32) int32 {
	var c map[string]any
	if err := json.Unmarshal(input[:n], &c); err != nil {
		fmt.Fprintln(os.Stderr, "config is not a JSON object:", err)
		return 3
	}
	if _, ok := c["reject"]; ok {
		fmt.Fprintln(os.Stderr, "reject: this plugin takes no such option")
		return 1
	}
	config = append([]byte(nil), input[:n]...)
	configured++
	return 0
}

//go:wasmexport weft_extract
func extract(ptr, n int32) int64 {
	rec := input[:n]
	name := rec[4 : 4+binary.LittleEndian.Uint32(rec)]
	if string(name) == "panic" {
		panic("panics as asked")
	}
	output = binary.LittleEndian.AppendUint32(output[:0], 2)
	for _, kv := range [][2]string{{"config", string(config)}, {"configured", strconv.Itoa(configured)}} {
		output = binary.LittleEndian.AppendUint32(output, uint32(len(kv[0])))
		output = append(output, kv[0]...)
		output = binary.LittleEndian.AppendUint32(output, uint32(len(kv[1])))
		output = append(output, kv[1]...)
	}
	return int64(uint64(uintptr(unsafe.Pointer(&output[0])))<<32 | uint64(len(output)))
}

func main() {}
