//go:build wasip1

// Command trap is a test plugin that traps: on a record whose span name is
// "panic" it panics (Go exits the module), otherwise it reads outside its
// memory (a wasm trap).
package main

import "unsafe"

var input []byte

//go:wasmexport weft_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport weft_alloc
func alloc(size int32) int32 {
	input = make([]byte, size)
	return int32(uintptr(unsafe.Pointer(&input[0])))
}

//go:wasmexport weft_extract
func extract(ptr, n int32) int64 {
	rec := input[:n] // the host wrote the record at the start of input
	// The record starts with the span name: u32 length, bytes.
	if n >= 9 && string(rec[4:9]) == "panic" {
		panic("test plugin panics as asked")
	}
	// Deliberately outside memory (go vet flags it): the wasm load traps.
	far := (*byte)(unsafe.Pointer(uintptr(0xfffffff0)))
	return int64(*far)
}

func main() {}
