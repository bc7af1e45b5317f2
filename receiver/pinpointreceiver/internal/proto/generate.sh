#!/usr/bin/env bash
# Regenerates the Go code in v1/ from the .proto files next to this script.
# Needs protoc (Debian: protobuf-compiler). The two protoc plugins are pinned
# in internal/tools and built into .tools/ when missing or older than the
# pins.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../../.." && pwd)
tools="$root/.tools"
GO=${GO:-go}

if ! command -v protoc >/dev/null; then
	echo "generate.sh: protoc not found (apt-get install -y protobuf-compiler)" >&2
	exit 1
fi

for plugin in protoc-gen-go protoc-gen-go-grpc; do
	if [[ ! -x "$tools/$plugin" || "$root/internal/tools/go.mod" -nt "$tools/$plugin" ]]; then
		mkdir -p "$tools"
		(cd "$root/internal/tools" && "$GO" build -o "$tools/" \
			google.golang.org/protobuf/cmd/protoc-gen-go \
			google.golang.org/grpc/cmd/protoc-gen-go-grpc)
		break
	fi
done

# module= strips the Go import path prefix, so the go_package
# .../internal/proto/v1 lands in $here/v1.
prefix=github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto
rm -f "$here"/v1/*.pb.go
cd "$here"
protoc -I . \
	--plugin=protoc-gen-go="$tools/protoc-gen-go" \
	--plugin=protoc-gen-go-grpc="$tools/protoc-gen-go-grpc" \
	--go_out="$here" --go_opt=module="$prefix" \
	--go-grpc_out="$here" --go-grpc_opt=module="$prefix" \
	*.proto
