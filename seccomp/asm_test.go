//go:build linux

package seccomp

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// op is one operation of a test program as intended, before the assembler
// lays it out (and drops loads it finds redundant).
type op struct {
	kind    stepKind
	off     uint32 // load
	ret     uint32 // ret
	test    bpf.JumpTest
	k       uint32
	yes, no label
	label   label
	isRet   bool
}

// feed gives the operations to an assembler.
func feed(ops []op) *assembler {
	var a assembler
	for range ops {
		a.newLabel() // enough labels for any test program
	}
	for _, o := range ops {
		switch {
		case o.kind == stepPlace:
			a.place(o.label)
		case o.kind == stepJumpIf:
			a.jumpIf(o.test, o.k, o.yes, o.no)
		case o.isRet:
			a.ret(o.ret)
		default:
			a.load(o.off)
		}
	}
	return &a
}

// interpret runs the operations as written: every load happens.
func interpret(ops []op, d Data) uint32 {
	mem := d.Marshal()
	var acc uint32
	at := make(map[label]int)
	for i, o := range ops {
		if o.kind == stepPlace {
			at[o.label] = i
		}
	}
	for i := 0; i < len(ops); i++ {
		o := ops[i]
		switch {
		case o.kind == stepPlace:
		case o.kind == stepJumpIf:
			var hold bool
			switch o.test {
			case bpf.JumpEqual:
				hold = acc == o.k
			case bpf.JumpGreaterOrEqual:
				hold = acc >= o.k
			case bpf.JumpBitsSet:
				hold = acc&o.k != 0
			}
			if hold {
				i = at[o.yes]
			} else {
				i = at[o.no]
			}
		case o.isRet:
			return o.ret
		default:
			acc = binary.LittleEndian.Uint32(mem[o.off:])
		}
	}
	panic("fell off the end")
}

func assembleOps(t *testing.T, ops []op) []unix.SockFilter {
	t.Helper()
	insns, err := feed(ops).assemble()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := bpf.Assemble(insns)
	if err != nil {
		t.Fatal(err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return prog
}

// padding is unreachable returns that put distance between a jump and its
// targets.
func padding(n int) []op {
	var ops []op
	for range n {
		ops = append(ops, op{isRet: true, ret: 0xdead})
	}
	return ops
}

func TestAssemblerFarBranches(t *testing.T) {
	const yes, no = label(0), label(1)
	jump := []op{{off: offsetNr}, {kind: stepJumpIf, test: bpf.JumpEqual, k: 1, yes: yes, no: no}}
	target := func(l label, v uint32) []op {
		return []op{{kind: stepPlace, label: l}, {isRet: true, ret: v}}
	}
	cat := func(parts ...[]op) []op {
		var out []op
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name        string
		ops         []op
		trampolines int
	}{
		{"both near", cat(jump, target(no, 2), target(yes, 1)), 0},
		{"yes far", cat(jump, target(no, 2), padding(300), target(yes, 1)), 1},
		{"no far", cat(jump, target(yes, 1), padding(300), target(no, 2)), 1},
		{"both far", cat(jump, padding(300), target(yes, 1), padding(300), target(no, 2)), 2},
		{"both far, no first", cat(jump, padding(300), target(no, 2), padding(300), target(yes, 1)), 2},
		// The jump is instruction 1, so offsets count from 2.
		{"just in reach", cat(jump, target(no, 2), padding(254), target(yes, 1)), 0},
		{"just out of reach", cat(jump, target(no, 2), padding(255), target(yes, 1)), 1},
		{"a trampoline pushes the other branch out", cat(jump, padding(255), target(no, 2), target(yes, 1)), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog := assembleOps(t, tt.ops)
			ja := 0
			for _, f := range prog {
				if f.Code == unix.BPF_JMP|unix.BPF_JA {
					ja++
				}
			}
			if ja != tt.trampolines {
				t.Errorf("%d trampolines, want %d", ja, tt.trampolines)
			}
			vm := newVM(t, prog)
			for nr, want := range map[int32]uint32{1: 1, 0: 2, 7: 2} {
				if got := runVM(t, vm, Data{Nr: nr}); got != want {
					t.Errorf("nr %d: returned %d, want %d", nr, got, want)
				}
			}
		})
	}
}

// TestAssemblerRandomPrograms builds random forward-jumping programs with
// long and short distances and holds the laid-out program, run in the VM,
// to the operations as written (which load every time).
func TestAssemblerRandomPrograms(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	offsets := []uint32{offsetNr, offsetArch, offsetArgs, offsetArgs + 4, offsetArgs + 8}
	tests := []bpf.JumpTest{bpf.JumpEqual, bpf.JumpGreaterOrEqual, bpf.JumpBitsSet}
	for round := range 200 {
		blocks := 2 + rng.IntN(40)
		var ops []op
		for b := range blocks {
			if b > 0 {
				ops = append(ops, op{kind: stepPlace, label: label(b)})
			}
			if b == blocks-1 || rng.IntN(3) == 0 {
				ops = append(ops, op{isRet: true, ret: uint32(b)})
				ops = append(ops, padding(rng.IntN(3)*rng.IntN(200))...)
				continue
			}
			for range 1 + rng.IntN(2) {
				ops = append(ops, op{off: offsets[rng.IntN(len(offsets))]})
			}
			ops = append(ops, op{
				kind: stepJumpIf, test: tests[rng.IntN(len(tests))], k: uint32(rng.IntN(4)),
				yes: label(b + 1 + rng.IntN(blocks-b-1)), no: label(b + 1 + rng.IntN(blocks-b-1)),
			})
		}
		prog := assembleOps(t, ops)
		vm := newVM(t, prog)
		for range 50 {
			d := Data{Nr: int32(rng.IntN(5)), Arch: uint32(rng.IntN(5))}
			for i := range 2 {
				d.Args[i] = uint64(rng.IntN(5)) | uint64(rng.IntN(5))<<32
			}
			if got, want := runVM(t, vm, d), interpret(ops, d); got != want {
				t.Fatalf("round %d (%d instructions), data %+v: program returns %d, operations %d", round, len(prog), d, got, want)
			}
		}
	}
}
