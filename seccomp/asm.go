//go:build linux

package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// label names a position in the program that jumps refer to before it is
// known. Classic BPF jumps only forward, so every label is placed after the
// jumps to it.
type label int

type stepKind uint8

const (
	stepInstruction stepKind = iota // a load or a return
	stepJumpIf                      // a conditional jump to two labels
	stepPlace                       // where a label points; emits nothing
)

type step struct {
	kind  stepKind
	ins   bpf.Instruction // stepInstruction
	test  bpf.JumpTest    // stepJumpIf
	k     uint32          // stepJumpIf: the constant compared with A
	yes   label           // stepJumpIf: target when the test holds
	no    label           // stepJumpIf: target when it does not
	label label           // stepPlace
}

// assembler collects instructions with symbolic jump targets and lays them
// out. A conditional jump reaches at most 255 instructions ahead; a target
// further away goes through a trampoline, an unconditional jump (32-bit
// offset) placed right after the conditional one.
//
// It also tracks what the accumulator holds, to drop a load of the word A
// already holds on every path that reaches it.
type assembler struct {
	steps  []step
	labels int

	acc      accumulator           // what A holds where the next step goes
	labelAcc map[label]accumulator // what A holds on the jumps to a label seen so far
}

// accumulator says what A holds: accUnknown (the zero value), accUnreachable,
// or loadedFrom(off).
type accumulator int

const (
	accUnknown     accumulator = 0  // paths disagree, or nothing loaded yet
	accUnreachable accumulator = -1 // no path reaches this point (yet)
)

// loadedFrom is A after loading the word at off of struct seccomp_data.
func loadedFrom(off uint32) accumulator { return accumulator(off) + 1 }

// merge is what A holds where paths holding x and y meet.
func merge(x, y accumulator) accumulator {
	switch {
	case x == accUnreachable:
		return y
	case y == accUnreachable, x == y:
		return x
	}
	return accUnknown
}

func (a *assembler) newLabel() label {
	a.labels++
	return label(a.labels - 1)
}

func (a *assembler) place(l label) {
	a.steps = append(a.steps, step{kind: stepPlace, label: l})
	a.acc = merge(a.acc, a.jumpsTo(l))
}

// jumpsTo is what A holds on the jumps to l seen so far.
func (a *assembler) jumpsTo(l label) accumulator {
	if acc, ok := a.labelAcc[l]; ok {
		return acc
	}
	return accUnreachable
}

// load puts the 32-bit word of struct seccomp_data at off into A, unless A
// already holds it.
func (a *assembler) load(off uint32) {
	if a.acc == loadedFrom(off) {
		return
	}
	a.steps = append(a.steps, step{kind: stepInstruction, ins: bpf.LoadAbsolute{Off: off, Size: 4}})
	a.acc = loadedFrom(off)
}

func (a *assembler) ret(v uint32) {
	a.steps = append(a.steps, step{kind: stepInstruction, ins: bpf.RetConstant{Val: v}})
	a.acc = accUnreachable
}

// jumpIf jumps to yes if A passes the test against k, else to no. Nothing
// falls through: the next step runs only if a label placed there is a target.
func (a *assembler) jumpIf(test bpf.JumpTest, k uint32, yes, no label) {
	a.steps = append(a.steps, step{kind: stepJumpIf, test: test, k: k, yes: yes, no: no})
	if a.labelAcc == nil {
		a.labelAcc = make(map[label]accumulator)
	}
	a.labelAcc[yes] = merge(a.jumpsTo(yes), a.acc)
	a.labelAcc[no] = merge(a.jumpsTo(no), a.acc)
	a.acc = accUnreachable
}

// Which branches of a conditional jump need a trampoline.
const (
	farYes = 1 << iota
	farNo
)

func trampolines(far uint8) int {
	n := 0
	if far&farYes != 0 {
		n++
	}
	if far&farNo != 0 {
		n++
	}
	return n
}

// maxShortJump is the furthest a conditional jump reaches (jt and jf are 8-bit).
const maxShortJump = 255

// assemble resolves the labels and returns the instructions. It adds
// trampolines until every conditional jump reaches its targets; distances only
// grow as trampolines are added, so this ends.
func (a *assembler) assemble() ([]bpf.Instruction, error) {
	far := make([]uint8, len(a.steps))
	var pos, at []int
	for {
		pos, at = a.layout(far)
		changed := false
		for i, s := range a.steps {
			if s.kind != stepJumpIf {
				continue
			}
			next := pos[i] + 1
			if far[i]&farYes == 0 && at[s.yes]-next > maxShortJump {
				far[i] |= farYes
				changed = true
			}
			if far[i]&farNo == 0 && at[s.no]-next > maxShortJump {
				far[i] |= farNo
				changed = true
			}
		}
		if !changed {
			break
		}
	}

	var out []bpf.Instruction
	offset := func(from int, l label) (int, error) {
		if at[l] < 0 {
			return 0, fmt.Errorf("label %d is never placed", l)
		}
		d := at[l] - (from + 1)
		if d < 0 {
			return 0, fmt.Errorf("jump from %d back to %d", from, at[l])
		}
		return d, nil
	}
	for i, s := range a.steps {
		switch s.kind {
		case stepInstruction:
			out = append(out, s.ins)
		case stepJumpIf:
			// Trampolines follow the jump: first the yes one, then the no one.
			var targets []label
			var yes, no int
			if far[i]&farYes != 0 {
				yes = len(targets)
				targets = append(targets, s.yes)
			} else {
				d, err := offset(pos[i], s.yes)
				if err != nil {
					return nil, err
				}
				yes = d
			}
			if far[i]&farNo != 0 {
				no = len(targets)
				targets = append(targets, s.no)
			} else {
				d, err := offset(pos[i], s.no)
				if err != nil {
					return nil, err
				}
				no = d
			}
			if yes > maxShortJump || no > maxShortJump {
				return nil, fmt.Errorf("jump at %d reaches %d/%d ahead", pos[i], yes, no)
			}
			out = append(out, bpf.JumpIf{Cond: s.test, Val: s.k, SkipTrue: uint8(yes), SkipFalse: uint8(no)})
			for t, l := range targets {
				d, err := offset(pos[i]+1+t, l)
				if err != nil {
					return nil, err
				}
				out = append(out, bpf.Jump{Skip: uint32(d)})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty program")
	}
	if _, ok := out[len(out)-1].(bpf.RetConstant); !ok {
		return nil, fmt.Errorf("the program does not end with a return")
	}
	return out, nil
}

// layout returns each step's instruction index and each label's, given
// which jumps carry trampolines. Unplaced labels are -1.
func (a *assembler) layout(far []uint8) (pos, at []int) {
	pos = make([]int, len(a.steps))
	at = make([]int, a.labels)
	for i := range at {
		at[i] = -1
	}
	n := 0
	for i, s := range a.steps {
		pos[i] = n
		switch s.kind {
		case stepInstruction:
			n++
		case stepJumpIf:
			n += 1 + trampolines(far[i])
		case stepPlace:
			at[s.label] = n
		}
	}
	return pos, at
}
