//go:build wasip1

// Command garbage is a test plugin that answers garbage, chosen by the span
// name: "oob" points outside its memory, "count" claims more pairs than it
// has, "trailing" leaves bytes after its pairs, "utf8" returns an invalid
// value; anything else is a valid answer, so tests can check the instance
// still works after garbage.
package main

import (
	"encoding/binary"
	"unsafe"
)

var (
	input  []byte
	output []byte
)

//go:wasmexport weft_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport weft_alloc
func alloc(size int32) int32 {
	input = make([]byte, size)
	return int32(uintptr(unsafe.Pointer(&input[0])))
}

func pair(out []byte, k, v string) []byte {
	out = binary.LittleEndian.AppendUint32(out, uint32(len(k)))
	out = append(out, k...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(v)))
	return append(out, v...)
}

//go:wasmexport weft_extract
func extract(ptr, n int32) int64 {
	rec := input[:n] // the host wrote the record at the start of input
	name := string(rec[4 : 4+binary.LittleEndian.Uint32(rec)])
	out := output[:0]
	switch name {
	case "oob":
		return 0x7ff00000<<32 | 100
	case "count":
		out = binary.LittleEndian.AppendUint32(out, 5)
		out = pair(out, "k", "v")
	case "trailing":
		out = binary.LittleEndian.AppendUint32(out, 1)
		out = pair(out, "k", "v")
		out = append(out, 1, 2, 3)
	case "utf8":
		out = binary.LittleEndian.AppendUint32(out, 1)
		out = pair(out, "k", "\xff\xfe")
	default:
		out = binary.LittleEndian.AppendUint32(out, 1)
		out = pair(out, "k", "v")
	}
	output = out
	return int64(uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out)))
}

func main() {}
