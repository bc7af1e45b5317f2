//go:build wasip1

// Command hog is a test plugin whose weft_extract allocates without bound.
package main

import "unsafe"

var (
	input []byte
	kept  [][]byte
)

//go:wasmexport weft_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport weft_alloc
func alloc(size int32) int32 {
	input = make([]byte, size)
	return int32(uintptr(unsafe.Pointer(&input[0])))
}

//go:wasmexport weft_extract
func extract(ptr, n int32) int64 {
	for {
		b := make([]byte, 1<<20)
		b[0] = 1
		kept = append(kept, b)
	}
}

func main() {}
