//go:build linux

package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Action is what the filter answers for a system call.
type Action uint8

const (
	// Allow lets the call through.
	Allow Action = iota
	// Notify suspends the call and reports it on the listener fd
	// (SECCOMP_RET_USER_NOTIF). The sandbox's init kills the sandbox and reports
	// the verdict syscall_blocked with the call's name. With no listener
	// attached the kernel fails the call with ENOSYS instead.
	Notify
	// Errno fails the call with the rule's errno (SECCOMP_RET_ERRNO) without
	// running it: for calls that programs probe and can live without.
	Errno
	// Kill ends the whole calling process with SIGSYS
	// (SECCOMP_RET_KILL_PROCESS). The default policy prefers Notify, which
	// names the call in the verdict.
	Kill
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Notify:
		return "notify"
	case Errno:
		return "errno"
	case Kill:
		return "kill"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

func (a Action) valid() bool { return a <= Kill }

// CondOp is how a Cond compares an argument. The zero value is no operator,
// so a Cond that forgets its Op fails Validate.
type CondOp uint8

const (
	// MaskedNonZero matches when arg & Value != 0.
	MaskedNonZero CondOp = iota + 1
	// Equal matches when arg == Value.
	Equal
	// NotIn matches when arg is none of Values.
	NotIn
)

func (o CondOp) String() string {
	switch o {
	case MaskedNonZero:
		return "masked-non-zero"
	case Equal:
		return "equal"
	case NotIn:
		return "not-in"
	}
	return fmt.Sprintf("CondOp(%d)", uint8(o))
}

// Cond restricts a rule to calls whose argument matches. The filter sees only
// the six argument registers: it cannot follow pointers, so a Cond can test
// flags and numbers, never a path or a struct.
type Cond struct {
	// Arg is the argument index, 0 to 5.
	Arg int
	// Op is the comparison; it must be set.
	Op CondOp
	// Value is the mask for MaskedNonZero and the operand for Equal. Unused
	// (zero) for NotIn.
	Value uint64
	// Values is the set for NotIn; at least one value. Unused (nil) otherwise.
	Values []uint64
	// Low32 compares only the low 32 bits of the argument. Set it for
	// arguments the kernel declares int or unsigned int (ioctl's cmd,
	// personality's persona, socket's family): the kernel ignores the upper
	// half of such a register, so a 64-bit comparison would let a caller slip
	// past an Equal rule by setting junk in the upper half (the flaw behind
	// CVE-2019-10063). Leave it false for 64-bit arguments: there a 32-bit
	// comparison would let NotIn miss values that differ only in the upper
	// half. With Low32, Value and Values must fit in 32 bits.
	Low32 bool
}

// matches reports whether arg satisfies the condition.
func (c *Cond) matches(arg uint64) bool {
	if c.Low32 {
		arg = uint64(uint32(arg))
	}
	switch c.Op {
	case MaskedNonZero:
		return arg&c.Value != 0
	case Equal:
		return arg == c.Value
	case NotIn:
		return !slices.Contains(c.Values, arg)
	}
	return false
}

func (c *Cond) String() string {
	arg := fmt.Sprintf("arg%d", c.Arg)
	if c.Low32 {
		arg = "low32(" + arg + ")"
	}
	switch c.Op {
	case MaskedNonZero:
		return fmt.Sprintf("%s & %#x != 0", arg, c.Value)
	case Equal:
		return fmt.Sprintf("%s == %#x", arg, c.Value)
	case NotIn:
		vals := make([]string, len(c.Values))
		for i, v := range c.Values {
			vals[i] = fmt.Sprintf("%#x", v)
		}
		return fmt.Sprintf("%s not in {%s}", arg, strings.Join(vals, ", "))
	}
	return fmt.Sprintf("%s %v %#x", arg, c.Op, c.Value)
}

// Rule says what to do with one system call, or with the calls of it whose
// argument matches When.
type Rule struct {
	// Syscall is the x86_64 kernel name, e.g. "ptrace" or "newfstatat".
	Syscall string
	// Action is the answer when the rule applies.
	Action Action
	// Errno is the error for Action Errno (1 to 4095); zero for any other
	// action.
	Errno unix.Errno
	// When restricts the rule to matching calls; nil applies it to every call.
	When *Cond
	// Reason says why the rule exists, for the reviewer. Required.
	Reason string
}

func (r Rule) String() string {
	if r.When == nil {
		return r.Syscall
	}
	return r.Syscall + " when " + r.When.String()
}

// Policy is a reviewed table of rules.
//
// Decision order, which Decide states in Go and Compile in BPF:
//  1. a call from another ABI (audit arch not x86_64, or the x32 bit set in
//     the number) gets ForeignABI;
//  2. otherwise the conditional rules for the call, in table order: the first
//     whose When matches decides;
//  3. otherwise the call's unconditional rule, wherever it sits in the table;
//  4. otherwise Default.
type Policy struct {
	// Name identifies the policy in logs and errors.
	Name string
	// Rules is the table. At most one unconditional rule per system call.
	Rules []Rule
	// Default is the action for calls no rule decides.
	Default Action
	// DefaultErrno is the error when Default is Errno; zero otherwise.
	DefaultErrno unix.Errno
	// ForeignABI is the action for i386 calls (audit arch AUDIT_ARCH_I386,
	// e.g. int 0x80 from a 64-bit process), x32 calls and any other arch.
	// The rules name x86_64 numbers only, so Validate refuses Allow here: it
	// would void every rule.
	ForeignABI Action
	// ForeignABIErrno is the error when ForeignABI is Errno; zero otherwise.
	ForeignABIErrno unix.Errno
}

// maxErrno is the largest errno the kernel passes on from SECCOMP_RET_ERRNO
// (MAX_ERRNO); it clamps larger ones.
const maxErrno = 4095

// Validate checks the policy and returns every problem it finds, each naming
// the rule (by index and description) or the field.
func (p Policy) Validate() error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	checkAction := func(field string, a Action, e unix.Errno) {
		switch {
		case !a.valid():
			fail("%s: unknown action %v", field, a)
		case a == Errno && (e < 1 || e > maxErrno):
			fail("%s: action errno needs an errno from 1 to %d, got %d", field, maxErrno, int(e))
		case a != Errno && e != 0:
			fail("%s: errno %d given but the action is %v", field, int(e), a)
		}
	}
	checkAction("Default", p.Default, p.DefaultErrno)
	checkAction("ForeignABI", p.ForeignABI, p.ForeignABIErrno)
	if p.ForeignABI == Allow {
		fail("ForeignABI: allow would let i386 and x32 calls past every rule (the rules name x86_64 numbers)")
	}

	unconditional := make(map[string]int) // syscall -> rule index
	conditional := make(map[string]int)   // syscall and canonical cond -> rule index
	for i, r := range p.Rules {
		name := fmt.Sprintf("rule %d (%s)", i, r)
		if r.Syscall == "" {
			fail("rule %d: no syscall name", i)
		} else if _, ok := SyscallNumber(r.Syscall); !ok {
			fail("%s: unknown x86_64 system call %q", name, r.Syscall)
		}
		if strings.TrimSpace(r.Reason) == "" {
			fail("%s: no reason given: every rule says why it exists", name)
		}
		checkAction(name, r.Action, r.Errno)
		if r.When == nil {
			if first, dup := unconditional[r.Syscall]; dup {
				fail("%s: duplicate: rule %d already decides every %s call", name, first, r.Syscall)
			} else {
				unconditional[r.Syscall] = i
			}
			continue
		}
		for _, msg := range r.When.problems() {
			fail("%s: %s", name, msg)
		}
		key := r.Syscall + "|" + r.When.canonical()
		if first, dup := conditional[key]; dup {
			fail("%s: duplicate of rule %d", name, first)
		} else {
			conditional[key] = i
		}
	}
	return errors.Join(errs...)
}

// problems lists what is wrong with the condition, if anything.
func (c *Cond) problems() []string {
	var out []string
	if c.Arg < 0 || c.Arg > 5 {
		out = append(out, fmt.Sprintf("argument index %d: system calls have arguments 0 to 5", c.Arg))
	}
	switch c.Op {
	case MaskedNonZero:
		if c.Value == 0 {
			out = append(out, "masked-non-zero with a zero mask never matches")
		}
	case Equal:
	case NotIn:
		if len(c.Values) == 0 {
			out = append(out, "not-in needs at least one value")
		}
		if c.Value != 0 {
			out = append(out, "not-in takes Values; Value must be zero")
		}
		seen := make(map[uint64]bool, len(c.Values))
		for _, v := range c.Values {
			if seen[v] {
				out = append(out, fmt.Sprintf("not-in lists %#x twice", v))
			}
			seen[v] = true
		}
	default:
		out = append(out, fmt.Sprintf("unknown operator %v", c.Op))
	}
	if c.Op != NotIn && len(c.Values) != 0 {
		out = append(out, fmt.Sprintf("%v takes Value; Values must be empty", c.Op))
	}
	if c.Low32 {
		for _, v := range append([]uint64{c.Value}, c.Values...) {
			if v > 0xffffffff {
				out = append(out, fmt.Sprintf("low32 comparison with %#x, which does not fit in 32 bits", v))
			}
		}
	}
	return out
}

// canonical describes the condition with its set sorted, so two rules that
// test the same thing compare equal.
func (c *Cond) canonical() string {
	sorted := *c
	sorted.Values = slices.Sorted(slices.Values(c.Values))
	return sorted.String()
}

// Data mirrors struct seccomp_data, what the kernel hands a filter.
type Data struct {
	Nr   int32     // system call number
	Arch uint32    // AUDIT_ARCH_* of the calling convention
	IP   uint64    // instruction pointer at the call
	Args [6]uint64 // argument registers, untruncated
}

// dataSize is sizeof(struct seccomp_data).
const dataSize = 64

// Offsets of the fields of struct seccomp_data.
const (
	offsetNr   = 0
	offsetArch = 4
	offsetIP   = 8
	offsetArgs = 16
)

// Marshal returns the 64-byte little-endian layout the kernel gives a filter
// on x86_64.
func (d Data) Marshal() []byte {
	b := make([]byte, dataSize)
	binary.LittleEndian.PutUint32(b[offsetNr:], uint32(d.Nr))
	binary.LittleEndian.PutUint32(b[offsetArch:], d.Arch)
	binary.LittleEndian.PutUint64(b[offsetIP:], d.IP)
	for i, a := range d.Args {
		binary.LittleEndian.PutUint64(b[offsetArgs+8*i:], a)
	}
	return b
}

// x32SyscallBit marks an x32 call: the x32 ABI shares AUDIT_ARCH_X86_64 and
// sets this bit in the number (__X32_SYSCALL_BIT).
const x32SyscallBit = 0x40000000

// isForeign reports whether the call uses another ABI than native x86_64.
// A negative number has the x32 bit set, so it counts as foreign too, as it
// does in the compiled filter.
func isForeign(d Data) bool {
	return d.Arch != unix.AUDIT_ARCH_X86_64 || uint32(d.Nr)&x32SyscallBit != 0
}

// Decide is the policy's meaning in plain Go: the action (and errno, for
// Errno) that the compiled program returns for d. Tests hold the compiled
// program to it; the policy should be valid.
func (p Policy) Decide(d Data) (Action, unix.Errno) {
	a, e, _ := p.decide(d)
	return a, e
}

// Which part of the policy decided a call, besides a rule index.
const (
	decidedByDefault = -1
	decidedByForeign = -2
)

// decide is Decide that also says which rule decided, by index, or
// decidedByDefault or decidedByForeign.
func (p Policy) decide(d Data) (Action, unix.Errno, int) {
	if isForeign(d) {
		return p.ForeignABI, p.ForeignABIErrno, decidedByForeign
	}
	fallback := -1
	for i := range p.Rules {
		r := &p.Rules[i]
		if nr, ok := SyscallNumber(r.Syscall); !ok || nr != d.Nr {
			continue
		}
		if r.When == nil {
			if fallback < 0 {
				fallback = i
			}
			continue
		}
		if r.When.Arg >= 0 && r.When.Arg < len(d.Args) && r.When.matches(d.Args[r.When.Arg]) {
			return r.Action, r.Errno, i
		}
	}
	if fallback >= 0 {
		return p.Rules[fallback].Action, p.Rules[fallback].Errno, fallback
	}
	return p.Default, p.DefaultErrno, decidedByDefault
}
