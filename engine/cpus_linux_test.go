package engine

import (
	"slices"
	"testing"
)

// Steps go to the CPUs least taken; a step that may use every CPU, and a
// host of one CPU, place nothing; released CPUs are taken again.
func TestCPUPlacer(t *testing.T) {
	p := &cpuPlacer{cpus: []int{0, 2, 3, 5}, taken: make([]float64, 4)}
	want := func(what string, got, want []int) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	a, relA := p.place(1)
	want("first step", a, []int{0})
	b, relB := p.place(2)
	want("two CPUs beside it", b, []int{2, 3})
	c, relC := p.place(0.5)
	want("half a CPU", c, []int{5})
	d, relD := p.place(0.25)
	want("a quarter beside the half", d, []int{5})
	relA()
	relA() // once only
	e, relE := p.place(1)
	want("after the first ended", e, []int{0})
	all, relAll := p.place(4)
	want("every CPU", all, nil)
	for _, rel := range []func(){relB, relC, relD, relE, relAll} {
		rel()
	}
	for i, v := range p.taken {
		if v > 1e-9 || v < -1e-9 {
			t.Errorf("CPU %d still taken %v after every release", p.cpus[i], v)
		}
	}
	one := &cpuPlacer{cpus: []int{0}, taken: make([]float64, 1)}
	if got, _ := one.place(0.5); got != nil {
		t.Errorf("one CPU: placed on %v", got)
	}
}
