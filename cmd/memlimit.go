package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"
)

// memoryLimitEnv names the variable the Deployment fills with the
// container's memory limit in bytes (the downward API's
// resourceFieldRef limits.memory, config/manager and the chart).
const memoryLimitEnv = "MEMORY_LIMIT"

// minContainerLimit is the smallest container limit taken for a byte count.
// Anything below cannot hold the operator's binary and caches anyway; a
// value that small is most likely a resourceFieldRef with a divisor (512
// for 512Mi), which would otherwise give a soft limit of a few hundred
// bytes and a garbage collector that never stops.
const minContainerLimit = 32 << 20

// softMemoryLimit is the soft memory limit (debug.SetMemoryLimit) the
// operator gives itself: 90% of containerLimit, the value of MEMORY_LIMIT
// (a byte count, or any Kubernetes quantity for a person setting it by
// hand). It is 0, meaning leave the runtime as it is, when gomemlimit is
// set (the runtime has applied it already, and the user's choice wins) or
// containerLimit is empty.
//
// Why 90%: the runtime counts only the memory it maps itself (heap,
// stacks, its own metadata), while the container's limit also counts the
// pages of the binary that are resident and the page cache of the files
// builds write; and the limit is soft, so an allocation burst can pass it
// before the collector catches up. The remaining tenth (51 MiB of 512 MiB)
// covers both; a smaller share would leave the collector idle until the
// heap is near the kernel's hard limit, a larger one would make it work
// harder than the container needs.
func softMemoryLimit(gomemlimit, containerLimit string) (int64, error) {
	if gomemlimit != "" || containerLimit == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(containerLimit)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a byte count: %w", memoryLimitEnv, containerLimit, err)
	}
	n := q.Value()
	if n < minContainerLimit {
		return 0, fmt.Errorf("%s=%q: below %d MiB, not a plausible limit in bytes (a resourceFieldRef divisor other than 1?)",
			memoryLimitEnv, containerLimit, minContainerLimit>>20)
	}
	return n - n/10, nil
}

// applyMemoryLimit sets the soft memory limit softMemoryLimit decides and
// says once which limit the operator runs with. A wrong MEMORY_LIMIT is
// logged, not fatal: without the limit the operator works as it always
// did, only with more headroom than its container may allow.
func applyMemoryLimit(log logr.Logger) {
	gomemlimit, containerLimit := os.Getenv("GOMEMLIMIT"), os.Getenv(memoryLimitEnv)
	limit, err := softMemoryLimit(gomemlimit, containerLimit)
	switch {
	case err != nil:
		log.Error(err, "No soft memory limit: the garbage collector follows GOGC alone")
	case limit > 0:
		debug.SetMemoryLimit(limit)
		log.Info("Soft memory limit set to 90% of the container's memory limit", "limit", mebibytes(limit), "containerLimit", containerLimit)
	case gomemlimit != "":
		// A negative argument reads the limit without changing it.
		log.Info("Soft memory limit from GOMEMLIMIT", "limit", mebibytes(debug.SetMemoryLimit(-1)), "GOMEMLIMIT", gomemlimit)
	}
}

func mebibytes(b int64) string { return fmt.Sprintf("%.1fMi", float64(b)/(1<<20)) }
