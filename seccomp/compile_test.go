//go:build linux

package seccomp

import (
	"flag"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite testdata/default.golden and default_program_data.go from the compiled default policy")

const goldenPath = "testdata/default.golden"

// coveragePolicy exercises what the default policy does not: every action,
// errno defaults, 64-bit values whose halves both matter, masks on one half,
// sets spread over several high halves, an unconditional rule listed before
// conditional ones, and the largest errno.
func coveragePolicy() Policy {
	return Policy{
		Name: "coverage", Default: Errno, DefaultErrno: unix.EPERM, ForeignABI: Kill,
		Rules: []Rule{
			{Syscall: "read", Action: Allow, Reason: "stdin"},
			{Syscall: "write", Action: Allow, Reason: "stdout"},
			{Syscall: "ioctl", Action: Allow, Reason: "listed first, decides last"},
			{Syscall: "ioctl", Action: Kill, When: &Cond{Arg: 1, Op: Equal, Value: 0x1234_5678_9abc_def0}, Reason: "64-bit equal"},
			{Syscall: "ioctl", Action: Errno, Errno: unix.ENOTTY, When: &Cond{Arg: 1, Op: Equal, Value: 0x5401, Low32: true}, Reason: "32-bit equal"},
			{Syscall: "ioctl", Action: Notify, When: &Cond{Arg: 2, Op: MaskedNonZero, Value: 0x8000_0000_0000_0001}, Reason: "mask over both halves"},
			{Syscall: "mmap", Action: Notify, When: &Cond{Arg: 2, Op: MaskedNonZero, Value: 0xf0_0000_0000}, Reason: "mask on the high half only"},
			{Syscall: "mmap", Action: Allow, Reason: "the rest"},
			{Syscall: "prctl", Action: Errno, Errno: unix.EINVAL, When: &Cond{Arg: 0, Op: NotIn, Values: []uint64{2, 1, 1<<32 | 7, 1<<32 | 1, ^uint64(0)}}, Reason: "64-bit set over three high halves"},
			{Syscall: "prctl", Action: Allow, When: &Cond{Arg: 5, Op: Equal, Value: 0}, Reason: "the last argument"},
			{Syscall: "socket", Action: Notify, When: &Cond{Arg: 0, Op: NotIn, Low32: true, Values: []uint64{1, 2, 10}}, Reason: "32-bit set"},
			{Syscall: "socket", Action: Allow, Reason: "the rest"},
			{Syscall: "ptrace", Action: Kill, Reason: "kill"},
			{Syscall: "clone", Action: Notify, When: &Cond{Arg: 0, Op: MaskedNonZero, Value: cloneNamespaceFlags, Low32: true}, Reason: "namespaces"},
			{Syscall: "clone", Action: Allow, Reason: "fork and threads"},
			{Syscall: "getpid", Action: Errno, Errno: maxErrno, Reason: "the largest errno"},
			{Syscall: "rseq_slice_yield", Action: Allow, Reason: "the highest number"},
		},
	}
}

// newVM loads a compiled program into golang.org/x/net/bpf's VM, which also
// assembles it again as a check.
func newVM(t testing.TB, prog []unix.SockFilter) *bpf.VM {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the program has instructions x/net/bpf cannot decode")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("bpf.NewVM: %v", err)
	}
	return vm
}

// kernelView is what the VM must be given for d. The kernel's filter loads
// each 32-bit word of struct seccomp_data in host order (little-endian on
// x86_64); the VM, written for packets, loads network order. Reversing each
// aligned word of Marshal's bytes makes the VM load what the kernel would.
func kernelView(d Data) []byte {
	b := d.Marshal()
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return b
}

func runVM(t testing.TB, vm *bpf.VM, d Data) uint32 {
	t.Helper()
	n, err := vm.Run(kernelView(d))
	if err != nil {
		t.Fatalf("VM run on %+v: %v", d, err)
	}
	return uint32(n)
}

// describeReturn names a filter return value, for messages and the golden file.
func describeReturn(v uint32) string {
	switch {
	case v == unix.SECCOMP_RET_ALLOW:
		return "allow"
	case v == unix.SECCOMP_RET_USER_NOTIF:
		return "notify"
	case v == unix.SECCOMP_RET_KILL_PROCESS:
		return "kill"
	case v&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ERRNO:
		e := unix.Errno(v & unix.SECCOMP_RET_DATA)
		if name := unix.ErrnoName(e); name != "" {
			return "errno " + name
		}
		return fmt.Sprintf("errno %d", int(e))
	}
	return fmt.Sprintf("%#x", v)
}

// checkAgainstDecide runs the program over every d and holds it to Decide.
func checkAgainstDecide(t *testing.T, p Policy, vm *bpf.VM, data []Data) {
	t.Helper()
	failures := 0
	for _, d := range data {
		got := runVM(t, vm, d)
		want := returnValue(p.Decide(d))
		if got != want {
			t.Errorf("policy %q, %s args %#x: program says %s, Decide says %s",
				p.Name, SyscallName(d.Arch, d.Nr), d.Args, describeReturn(got), describeReturn(want))
			if failures++; failures > 20 {
				t.Fatal("too many differences")
			}
		}
	}
}

// interestingValues returns argument values around every constant the
// policy's conditions use, plus some fixed edges.
func interestingValues(p Policy) []uint64 {
	vals := []uint64{0, 1, 2, 0xffffffff, 1 << 32, ^uint64(0), 0x8000_0000, 0x8000_0000_0000_0000}
	add := func(v uint64) {
		vals = append(vals, v, v+1, v-1, v&0xffffffff, v&^0xffffffff, v|1<<32, v^0xdead_0000_0000, v>>32|v<<32)
	}
	for _, r := range p.Rules {
		if r.When == nil {
			continue
		}
		add(r.When.Value)
		for _, v := range r.When.Values {
			add(v)
		}
		for m := r.When.Value; r.When.Op == MaskedNonZero && m != 0; m &= m - 1 {
			add(1 << bits.TrailingZeros64(m))
		}
	}
	slices.Sort(vals)
	return slices.Compact(vals)
}

// foreignData is the calls every policy must send to ForeignABI, or not.
func foreignData() []Data {
	var out []Data
	for nr := int32(0); nr < 600; nr++ {
		out = append(out,
			Data{Nr: nr, Arch: unix.AUDIT_ARCH_I386},
			Data{Nr: nr | x32SyscallBit, Arch: unix.AUDIT_ARCH_X86_64},
			Data{Nr: nr, Arch: unix.AUDIT_ARCH_AARCH64},
			Data{Nr: nr, Arch: 0},
		)
	}
	for _, nr := range []int32{-1, -38, -0x80000000, 0x3fffffff, 0x7fffffff, 0x40000000, 0x80000000 - 1, 1 << 29} {
		out = append(out, Data{Nr: nr, Arch: unix.AUDIT_ARCH_X86_64}, Data{Nr: nr, Arch: unix.AUDIT_ARCH_I386})
	}
	return out
}

// defaultPolicyValues are the argument values the default policy cares
// about, spelled out, on top of interestingValues.
func defaultPolicyValues() []uint64 {
	const sigchld = uint64(unix.SIGCHLD)
	vals := []uint64{
		sigchld, unix.CLONE_VM | unix.CLONE_VFORK | sigchld,
		unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID,
		unix.TCGETS, unix.TCSETS, unix.TIOCGWINSZ, unix.TIOCSTI, unix.TIOCLINUX,
		unix.TIOCSTI | 1<<32, unix.TIOCLINUX | 0xffffffff_00000000,
		0, 8, 0x0040000, 0x0040008, 0xffffffff, 0x0400000, 0x0100000, 0x0020000, 0x0008000, 0x1_00000000,
	}
	for _, f := range []uint64{unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
		unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWTIME} {
		vals = append(vals, f, f|sigchld, f|1<<32)
	}
	for af := uint64(0); af <= unix.AF_MAX; af++ {
		vals = append(vals, af, af|1<<32)
	}
	for i := range 64 {
		vals = append(vals, 1<<i)
	}
	return vals
}

// nativeData builds x86_64 calls for the numbers with each value in every
// argument at once, and in each argument alone.
func nativeData(numbers []int32, vals []uint64) []Data {
	var out []Data
	for _, nr := range numbers {
		for _, v := range vals {
			out = append(out, Data{Nr: nr, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{v, v, v, v, v, v}})
			for i := range 6 {
				d := Data{Nr: nr, Arch: unix.AUDIT_ARCH_X86_64}
				d.Args[i] = v
				out = append(out, d)
			}
		}
	}
	return out
}

func TestCompiledDefaultPolicyMatchesDecide(t *testing.T) {
	p := DefaultPolicy()
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) >= maxInstructions {
		t.Fatalf("%d instructions, the kernel takes fewer than %d", len(prog), maxInstructions)
	}
	vm := newVM(t, prog)

	var all []int32
	for nr := int32(0); nr <= 500; nr++ {
		all = append(all, nr)
	}
	// Every number with fixed edges; the numbers with rules, and clone, ioctl,
	// personality and socket, with every interesting value.
	checkAgainstDecide(t, p, vm, nativeData(all, []uint64{0, 1, ^uint64(0), 0xffffffff, 1 << 32}))
	var ruled []int32
	for _, r := range p.Rules {
		nr, _ := SyscallNumber(r.Syscall)
		ruled = append(ruled, nr, nr+1, nr-1)
	}
	vals := append(interestingValues(p), defaultPolicyValues()...)
	checkAgainstDecide(t, p, vm, nativeData(ruled, vals))
	checkAgainstDecide(t, p, vm, foreignData())
}

func TestCompiledPoliciesMatchDecide(t *testing.T) {
	for _, p := range []Policy{
		coveragePolicy(),
		{Name: "empty", Default: Allow, ForeignABI: Kill},
		{Name: "deny by default", Default: Errno, DefaultErrno: unix.EPERM, ForeignABI: Errno, ForeignABIErrno: unix.ENOSYS,
			Rules: []Rule{{Syscall: "read", Action: Allow, Reason: "stdin"}, {Syscall: "exit_group", Action: Allow, Reason: "exit"}}},
	} {
		t.Run(p.Name, func(t *testing.T) {
			prog, err := Compile(p)
			if err != nil {
				t.Fatal(err)
			}
			vm := newVM(t, prog)
			numbers := []int32{0, 1, 100, 471, 500}
			for _, r := range p.Rules {
				nr, _ := SyscallNumber(r.Syscall)
				numbers = append(numbers, nr, nr+1, nr-1)
			}
			checkAgainstDecide(t, p, vm, nativeData(numbers, interestingValues(p)))
			checkAgainstDecide(t, p, vm, foreignData())
		})
	}
}

// widePolicy gives many calls a long condition each, so that the program is
// far longer than a conditional jump reaches.
func widePolicy(calls, values int) Policy {
	p := Policy{Name: "wide", Default: Allow, ForeignABI: Errno, ForeignABIErrno: unix.ENOSYS}
	for nr := 0; len(p.Rules) < calls; nr++ {
		if namesX86_64[nr] == "" {
			continue
		}
		c := &Cond{Arg: nr % 6, Op: NotIn}
		for v := range values {
			c.Values = append(c.Values, uint64(v%3)<<32|uint64(nr+v))
		}
		p.Rules = append(p.Rules, Rule{Syscall: namesX86_64[nr], Action: Notify, When: c, Reason: "wide"})
	}
	return p
}

func TestFarJumps(t *testing.T) {
	p := widePolicy(60, 30)
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) < 1000 {
		t.Fatalf("only %d instructions: the test no longer forces far jumps", len(prog))
	}
	trampolines := 0
	for _, f := range prog {
		if f.Code == unix.BPF_JMP|unix.BPF_JA {
			trampolines++
		}
	}
	if trampolines == 0 {
		t.Fatalf("%d instructions and no unconditional jump", len(prog))
	}
	t.Logf("%d instructions, %d trampolines", len(prog), trampolines)
	vm := newVM(t, prog)
	var numbers []int32
	for _, r := range p.Rules {
		nr, _ := SyscallNumber(r.Syscall)
		numbers = append(numbers, nr)
	}
	numbers = append(numbers, 59, 60, 300)
	checkAgainstDecide(t, p, vm, nativeData(numbers, interestingValues(p)[:200]))
	checkAgainstDecide(t, p, vm, foreignData())
}

func TestCompileRefusesLongPrograms(t *testing.T) {
	_, err := Compile(widePolicy(300, 40))
	if err == nil || !strings.Contains(err.Error(), "the kernel takes at most 4096") {
		t.Fatalf("Compile of a huge policy: %v, want a length error", err)
	}
}

// disassemble writes the program one instruction per line in x/net/bpf's
// notation, with a comment: what a load reads, what a comparison tests
// (a system call name where A holds the number) and where it goes, what a
// return means.
func disassemble(prog []unix.SockFilter) string {
	const (
		unknown = "?"
		nrA     = "nr"
		archA   = "arch"
	)
	fields := map[uint32]string{offsetNr: nrA, offsetArch: archA, offsetIP: "ip low", offsetIP + 4: "ip high"}
	for i := range 6 {
		low, high := argOffsets(i)
		fields[low] = fmt.Sprintf("arg%d low", i)
		fields[high] = fmt.Sprintf("arg%d high", i)
	}
	// What A holds at each instruction; jumps only go forward, so one pass
	// in order sees every predecessor first.
	holds := make([]string, len(prog)+1)
	flow := func(to int, what string) {
		if to >= len(holds) {
			return
		}
		if holds[to] == "" {
			holds[to] = what
		} else if holds[to] != what {
			holds[to] = unknown
		}
	}
	holds[0] = unknown
	var b strings.Builder
	for i, f := range prog {
		ins := bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}.Disassemble()
		var note string
		switch ins := ins.(type) {
		case bpf.LoadAbsolute:
			note = "A = " + fields[ins.Off]
			flow(i+1, fields[ins.Off])
		case bpf.JumpIf:
			what := fmt.Sprintf("%#x", ins.Val)
			switch holds[i] {
			case nrA:
				what = SyscallName(unix.AUDIT_ARCH_X86_64, int32(ins.Val))
				if (ins.Cond == bpf.JumpBitsSet || ins.Cond == bpf.JumpBitsNotSet) && ins.Val == x32SyscallBit {
					what = "x32 bit"
				}
			case archA:
				if ins.Val == unix.AUDIT_ARCH_X86_64 {
					what = "AUDIT_ARCH_X86_64"
				}
			}
			yes, no := i+1+int(ins.SkipTrue), i+1+int(ins.SkipFalse)
			note = fmt.Sprintf("%s: true %d, false %d", what, yes, no)
			flow(yes, holds[i])
			flow(no, holds[i])
		case bpf.Jump:
			to := i + 1 + int(ins.Skip)
			note = fmt.Sprintf("goto %d", to)
			flow(to, holds[i])
		case bpf.RetConstant:
			note = describeReturn(ins.Val)
		default:
			note = "unexpected instruction"
			flow(i+1, unknown)
		}
		fmt.Fprintf(&b, "%4d  %-28s ; %s\n", i, ins, note)
	}
	return b.String()
}

func TestGoldenDefaultPolicy(t *testing.T) {
	prog, err := Compile(DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("# The default policy compiled: %d instructions.\n"+
		"# Regenerate with: go test ./seccomp -run Golden -update\n", len(prog)) + disassemble(prog)
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(defaultProgramPath, programSource(prog), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s and %s (%d instructions)", goldenPath, defaultProgramPath, len(prog))
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		gotLines, wantLines := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gotLines) || i < len(wantLines); i++ {
			var g, w string
			if i < len(gotLines) {
				g = gotLines[i]
			}
			if i < len(wantLines) {
				w = wantLines[i]
			}
			if g != w {
				t.Fatalf("the compiled default policy differs from %s at line %d:\n got: %s\nwant: %s\n"+
					"Review the change, then run go test ./seccomp -run Golden -update", goldenPath, i+1, g, w)
			}
		}
	}
}

// defaultProgramPath holds DefaultProgram's instructions, written with
// the golden file.
const defaultProgramPath = "default_program_data.go"

// programSource is the Go source of defaultProgram holding prog.
func programSource(prog []unix.SockFilter) []byte {
	var b strings.Builder
	b.WriteString("// Code generated by go test ./seccomp -run Golden -update; DO NOT EDIT.\n\n")
	b.WriteString("//go:build linux\n\npackage seccomp\n\nimport \"golang.org/x/sys/unix\"\n\n")
	fmt.Fprintf(&b, "// defaultProgram is the default policy compiled (see DefaultProgram and\n// testdata/default.golden): %d instructions.\n", len(prog))
	b.WriteString("var defaultProgram = []unix.SockFilter{\n")
	for _, ins := range prog {
		fmt.Fprintf(&b, "\t{Code: %#04x, Jt: %d, Jf: %d, K: %#x},\n", ins.Code, ins.Jt, ins.Jf, ins.K)
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// TestDefaultProgramIsCompiled checks that the precompiled default program
// is the default policy as Compile makes it now, and its source as the
// golden test writes it.
func TestDefaultProgramIsCompiled(t *testing.T) {
	prog, err := Compile(DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if got := DefaultProgram(); !slices.Equal(got, prog) {
		t.Fatalf("DefaultProgram (%s) has %d instructions and differs from Compile(DefaultPolicy()) (%d instructions):\n"+
			"run go test ./seccomp -run Golden -update and review the change", defaultProgramPath, len(got), len(prog))
	}
	src, err := os.ReadFile(defaultProgramPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(src) != string(programSource(prog)) {
		t.Fatalf("%s is not as the golden test writes it: run go test ./seccomp -run Golden -update", defaultProgramPath)
	}
	// A copy each time: a caller that changes its copy changes no other's.
	DefaultProgram()[0].K++
	if !slices.Equal(DefaultProgram(), prog) {
		t.Fatal("DefaultProgram returned the shared program, not a copy")
	}
}

var fuzzPrograms = sync.OnceValues(func() ([]*bpf.VM, error) {
	var vms []*bpf.VM
	for _, p := range []Policy{DefaultPolicy(), coveragePolicy()} {
		prog, err := Compile(p)
		if err != nil {
			return nil, err
		}
		raw := make([]bpf.RawInstruction, len(prog))
		for i, f := range prog {
			raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
		}
		insns, _ := bpf.Disassemble(raw)
		vm, err := bpf.NewVM(insns)
		if err != nil {
			return nil, err
		}
		vms = append(vms, vm)
	}
	return vms, nil
})

func FuzzCompiledMatchesDecide(f *testing.F) {
	x86_64 := uint32(unix.AUDIT_ARCH_X86_64)
	f.Add(int32(101), x86_64, uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(int32(56), x86_64, uint64(unix.CLONE_NEWUSER)|uint64(unix.SIGCHLD), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(int32(56), x86_64, uint64(unix.SIGCHLD), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(int32(16), x86_64, uint64(0), uint64(1<<32|unix.TIOCSTI), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(int32(16), x86_64, uint64(1), uint64(0x1234_5678_9abc_def0), uint64(1<<63), uint64(0), uint64(0), uint64(0))
	f.Add(int32(135), x86_64, ^uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(int32(157), x86_64, uint64(1<<32|7), uint64(0), uint64(0), uint64(0), uint64(0), uint64(1))
	f.Add(int32(41), x86_64, uint64(unix.AF_ALG), uint64(unix.SOCK_SEQPACKET), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(int32(20), uint32(unix.AUDIT_ARCH_I386), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(int32(39|x32SyscallBit), x86_64, uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(int32(-1), x86_64, uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, nr int32, arch uint32, a0, a1, a2, a3, a4, a5 uint64) {
		vms, err := fuzzPrograms()
		if err != nil {
			t.Fatal(err)
		}
		d := Data{Nr: nr, Arch: arch, Args: [6]uint64{a0, a1, a2, a3, a4, a5}}
		for i, p := range []Policy{DefaultPolicy(), coveragePolicy()} {
			got := runVM(t, vms[i], d)
			if want := returnValue(p.Decide(d)); got != want {
				t.Errorf("policy %q, %s args %#x: program says %s, Decide says %s",
					p.Name, SyscallName(arch, nr), d.Args, describeReturn(got), describeReturn(want))
			}
		}
	})
}
