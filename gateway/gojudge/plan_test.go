package gojudge

import (
	"fmt"
	"testing"
)

// cpuRateLimit is thousandths of a CPU: the step's cpus.
func TestConvertLimitsCPURate(t *testing.T) {
	field := func(f string) string { return fmt.Sprintf("cmd[0].%s", f) }
	for rate, want := range map[uint64]float64{0: 0, 500: 0.5, 1000: 1, 2500: 2.5} {
		l, err := convertLimits(&Cmd{CPURateLimit: rate}, field)
		if err != nil || l.CPUs != want {
			t.Errorf("cpuRateLimit %d: cpus %g, %v; want %g", rate, l.CPUs, err, want)
		}
	}
}
