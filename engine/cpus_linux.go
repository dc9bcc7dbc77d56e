package engine

import (
	"math"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/nsjail"
)

// cpuPlacer gives each running step with a cpus limit below the host's
// CPU count the CPUs it runs on: ceil(cpus) of them, the least taken by
// the steps running now. The quota (cgroup.Limits.CPUQuota) caps a step's
// rate; placement keeps two steps off each other's CPUs while there are
// CPUs enough, so that a program that uses its whole quota, on as many
// threads as it likes, does not take a share of the CPU its neighbour
// runs on. The CPUs are the program's affinity, which it may widen
// itself: its rate stays capped by the quota all the same.
type cpuPlacer struct {
	mu sync.Mutex
	// cpus are the CPUs this process may run on, as it started.
	cpus []int
	// taken is, for each of cpus, the sum over the steps placed on it of
	// their cpus divided by how many CPUs each got.
	taken []float64
}

func newCPUPlacer() *cpuPlacer {
	p := &cpuPlacer{}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return p // no placement
	}
	for c := 0; c < nsjail.MaxCPU; c++ {
		if set.IsSet(c) {
			p.cpus = append(p.cpus, c)
		}
	}
	p.taken = make([]float64, len(p.cpus))
	return p
}

// place picks the CPUs of a step with a rate of cpus, and release gives
// them back. A step that may use as many CPUs as there are, or more, gets
// none in particular (nil): it runs wherever the init may.
func (p *cpuPlacer) place(cpus float64) (picked []int, release func()) {
	n := int(math.Ceil(cpus))
	if cpus <= 0 || n >= len(p.cpus) {
		return nil, func() {}
	}
	share := cpus / float64(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	idx := make([]int, 0, n)
	for len(idx) < n {
		best := -1
		for i := range p.cpus {
			if containsInt(idx, i) {
				continue
			}
			if best < 0 || p.taken[i] < p.taken[best] {
				best = i
			}
		}
		idx = append(idx, best)
		p.taken[best] += share
		picked = append(picked, p.cpus[best])
	}
	var once sync.Once
	return picked, func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, i := range idx {
				p.taken[i] -= share
			}
		})
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
