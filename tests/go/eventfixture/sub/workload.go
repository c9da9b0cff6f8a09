// Package sub holds a second file named workload.go, so that the location
// `workload.go:LINE` is ambiguous (two files end with it) while
// `sub/workload.go:LINE` and `eventfixture/workload.go:LINE` are not.
package sub

// Twice returns 2*x.
//
//go:noinline
func Twice(x int) int {
	return 2 * x // LINE:sub
}
