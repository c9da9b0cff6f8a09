// etcd v3.6.16 as a real service to measure sideeye-tui against: a 36 MB gRPC server
// with cgo that nobody on this project wrote (bench/realsvc/build.sh builds it).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
