//go:build linux

package seccomp

import (
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// maxInstructions is the kernel's limit on a filter's length (BPF_MAXINSNS).
const maxInstructions = 4096

// linearGroup is the most system calls the dispatch compares one by one;
// larger sets are split in two with a jge on the middle number.
const linearGroup = 4

// Compile validates the policy and translates it to a classic BPF program for
// SECCOMP_SET_MODE_FILTER on x86_64. The program is plain data: install it
// with seccomp(2) (after PR_SET_NO_NEW_PRIVS) as a sock_fprog over the slice.
// See the package documentation for its layout.
func Compile(p Policy) ([]unix.SockFilter, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}

	// Rules by number, each number's rules in table order.
	byNumber := make(map[int32][]Rule)
	for _, r := range p.Rules {
		nr, _ := SyscallNumber(r.Syscall)
		byNumber[nr] = append(byNumber[nr], r)
	}
	numbers := make([]int32, 0, len(byNumber))
	for nr := range byNumber {
		numbers = append(numbers, nr)
	}
	slices.Sort(numbers)

	var a assembler
	foreign := a.newLabel()
	native := a.newLabel()
	nativeNumber := a.newLabel()
	a.load(offsetArch)
	a.jumpIf(bpf.JumpEqual, unix.AUDIT_ARCH_X86_64, native, foreign)
	a.place(native)
	a.load(offsetNr)
	a.jumpIf(bpf.JumpBitsSet, x32SyscallBit, foreign, nativeNumber)
	a.place(foreign)
	a.ret(returnValue(p.ForeignABI, p.ForeignABIErrno))
	a.place(nativeNumber)
	c := compiler{a: &a, policy: p, byNumber: byNumber}
	c.dispatch(numbers)

	insns, err := a.assemble()
	if err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	raw, err := bpf.Assemble(insns)
	if err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	if len(raw) > maxInstructions {
		return nil, fmt.Errorf("the program has %d instructions; the kernel takes at most %d", len(raw), maxInstructions)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return prog, nil
}

// returnValue is the filter's return value for an action.
func returnValue(a Action, e unix.Errno) uint32 {
	switch a {
	case Allow:
		return unix.SECCOMP_RET_ALLOW
	case Notify:
		return unix.SECCOMP_RET_USER_NOTIF
	case Errno:
		return unix.SECCOMP_RET_ERRNO | uint32(e)&unix.SECCOMP_RET_DATA
	case Kill:
		return unix.SECCOMP_RET_KILL_PROCESS
	}
	panic(fmt.Sprintf("seccomp: unknown action %v past Validate", a))
}

// compiler emits the part of the program after the ABI checks, where the
// accumulator holds the system call number.
type compiler struct {
	a        *assembler
	policy   Policy
	byNumber map[int32][]Rule
}

// dispatch finds the call's number among numbers (sorted) and runs its rules;
// a number not among them gets the default action. Every path ends in a ret.
func (c *compiler) dispatch(numbers []int32) {
	if len(numbers) > linearGroup {
		mid := len(numbers) / 2
		upper := c.a.newLabel()
		lower := c.a.newLabel()
		c.a.jumpIf(bpf.JumpGreaterOrEqual, uint32(numbers[mid]), upper, lower)
		c.a.place(lower)
		c.dispatch(numbers[:mid])
		c.a.place(upper)
		c.dispatch(numbers[mid:])
		return
	}
	for _, nr := range numbers {
		here := c.a.newLabel()
		next := c.a.newLabel()
		c.a.jumpIf(bpf.JumpEqual, uint32(nr), here, next)
		c.a.place(here)
		c.syscall(c.byNumber[nr])
		c.a.place(next)
	}
	c.a.ret(returnValue(c.policy.Default, c.policy.DefaultErrno))
}

// syscall decides one system call from its rules: the conditional ones in
// order, then the unconditional one or the default.
func (c *compiler) syscall(rules []Rule) {
	fallback := returnValue(c.policy.Default, c.policy.DefaultErrno)
	for _, r := range rules {
		if r.When == nil {
			fallback = returnValue(r.Action, r.Errno)
			continue
		}
		match := c.a.newLabel()
		next := c.a.newLabel()
		c.cond(r.When, match, next)
		c.a.place(match)
		c.a.ret(returnValue(r.Action, r.Errno))
		c.a.place(next)
	}
	c.a.ret(fallback)
}

// argOffsets returns where the low and high 32-bit halves of an argument sit
// in struct seccomp_data (little-endian u64s).
func argOffsets(arg int) (low, high uint32) {
	low = uint32(offsetArgs + 8*arg)
	return low, low + 4
}

// cond jumps to match when the argument satisfies the condition, else to
// noMatch. A 64-bit argument is tested as two 32-bit halves.
func (c *compiler) cond(cd *Cond, match, noMatch label) {
	low, high := argOffsets(cd.Arg)
	switch cd.Op {
	case MaskedNonZero:
		maskLow, maskHigh := uint32(cd.Value), uint32(cd.Value>>32)
		if cd.Low32 {
			maskHigh = 0
		}
		if maskHigh != 0 {
			otherHalf := noMatch
			if maskLow != 0 {
				otherHalf = c.a.newLabel()
			}
			c.a.load(high)
			c.a.jumpIf(bpf.JumpBitsSet, maskHigh, match, otherHalf)
			if maskLow == 0 {
				return
			}
			c.a.place(otherHalf)
		}
		c.a.load(low)
		c.a.jumpIf(bpf.JumpBitsSet, maskLow, match, noMatch)

	case Equal:
		if !cd.Low32 {
			highEqual := c.a.newLabel()
			c.a.load(high)
			c.a.jumpIf(bpf.JumpEqual, uint32(cd.Value>>32), highEqual, noMatch)
			c.a.place(highEqual)
		}
		c.a.load(low)
		c.a.jumpIf(bpf.JumpEqual, uint32(cd.Value), match, noMatch)

	case NotIn:
		// Values grouped by their high half: load the high half once per
		// group, then compare the low half with each of the group's values.
		// Equal to any value: no match. Past every group: match.
		groups := groupByHigh(cd.Values, cd.Low32)
		for g, grp := range groups {
			nextGroup := match
			if g < len(groups)-1 {
				nextGroup = c.a.newLabel()
			}
			if !cd.Low32 {
				highEqual := c.a.newLabel()
				c.a.load(high)
				c.a.jumpIf(bpf.JumpEqual, grp.high, highEqual, nextGroup)
				c.a.place(highEqual)
			}
			c.a.load(low)
			for i, v := range grp.lows {
				notThis := nextGroup
				if i < len(grp.lows)-1 {
					notThis = c.a.newLabel()
				}
				c.a.jumpIf(bpf.JumpEqual, v, noMatch, notThis)
				if notThis != nextGroup {
					c.a.place(notThis)
				}
			}
			if nextGroup != match {
				c.a.place(nextGroup)
			}
		}

	default:
		panic(fmt.Sprintf("seccomp: unknown operator %v past Validate", cd.Op))
	}
}

// valueGroup is the low halves of the values that share one high half.
type valueGroup struct {
	high uint32
	lows []uint32
}

// groupByHigh sorts values into groups by high half, each sorted, without
// duplicates. With low32 every value is in one group.
func groupByHigh(values []uint64, low32 bool) []valueGroup {
	sorted := slices.Sorted(slices.Values(values))
	sorted = slices.Compact(sorted)
	var groups []valueGroup
	for _, v := range sorted {
		high, low := uint32(v>>32), uint32(v)
		if low32 {
			high = 0
		}
		if n := len(groups); n == 0 || groups[n-1].high != high {
			groups = append(groups, valueGroup{high: high})
		}
		g := &groups[len(groups)-1]
		if !slices.Contains(g.lows, low) {
			g.lows = append(g.lows, low)
		}
	}
	return groups
}
