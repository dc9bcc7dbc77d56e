//go:build linux

package seccomp

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// validPolicy is a small valid policy for tests to break.
func validPolicy(rules ...Rule) Policy {
	return Policy{Name: "test", Default: Allow, ForeignABI: Notify, Rules: rules}
}

func TestValidateRejects(t *testing.T) {
	ptrace := Rule{Syscall: "ptrace", Action: Notify, Reason: "debuggers"}
	withCond := func(c Cond) Rule {
		return Rule{Syscall: "ioctl", Action: Notify, When: &c, Reason: "terminal"}
	}
	tests := []struct {
		name   string
		policy Policy
		want   []string // substrings of the error
	}{
		{"empty reason", validPolicy(Rule{Syscall: "ptrace", Action: Notify, Reason: "  "}),
			[]string{"rule 0 (ptrace): no reason given"}},
		{"unknown syscall", validPolicy(Rule{Syscall: "ptrac", Action: Notify, Reason: "typo"}),
			[]string{`rule 0 (ptrac): unknown x86_64 system call "ptrac"`}},
		{"i386-only name", validPolicy(Rule{Syscall: "socketcall", Action: Notify, Reason: "i386 only"}),
			[]string{`rule 0 (socketcall): unknown x86_64 system call`}},
		{"no syscall name", validPolicy(Rule{Action: Notify, Reason: "nameless"}),
			[]string{"rule 0: no syscall name"}},
		{"duplicate unconditional", validPolicy(ptrace, Rule{Syscall: "getpid", Action: Allow, Reason: "x"}, ptrace),
			[]string{"rule 2 (ptrace): duplicate: rule 0 already decides every ptrace call"}},
		{"duplicate conditional, values in another order", validPolicy(
			withCond(Cond{Arg: 1, Op: NotIn, Values: []uint64{1, 2}}),
			withCond(Cond{Arg: 1, Op: NotIn, Values: []uint64{2, 1}})),
			[]string{"rule 1 (ioctl when arg1 not in {0x2, 0x1}): duplicate of rule 0"}},
		{"arg index too big", validPolicy(withCond(Cond{Arg: 6, Op: Equal, Value: 1})),
			[]string{"rule 0 (ioctl when arg6 == 0x1): argument index 6"}},
		{"negative arg index", validPolicy(withCond(Cond{Arg: -1, Op: Equal, Value: 1})),
			[]string{"rule 0 (ioctl when arg-1 == 0x1): argument index -1"}},
		{"no operator", validPolicy(withCond(Cond{Arg: 1, Value: 1})),
			[]string{"rule 0 (ioctl when arg1 CondOp(0) 0x1): unknown operator CondOp(0)"}},
		{"zero mask", validPolicy(withCond(Cond{Arg: 1, Op: MaskedNonZero})),
			[]string{"rule 0 (ioctl when arg1 & 0x0 != 0): masked-non-zero with a zero mask never matches"}},
		{"not-in without values", validPolicy(withCond(Cond{Arg: 1, Op: NotIn})),
			[]string{"rule 0 (ioctl when arg1 not in {}): not-in needs at least one value"}},
		{"not-in with Value", validPolicy(withCond(Cond{Arg: 1, Op: NotIn, Value: 3, Values: []uint64{1}})),
			[]string{"not-in takes Values; Value must be zero"}},
		{"not-in repeats a value", validPolicy(withCond(Cond{Arg: 1, Op: NotIn, Values: []uint64{1, 1}})),
			[]string{"not-in lists 0x1 twice"}},
		{"equal with Values", validPolicy(withCond(Cond{Arg: 1, Op: Equal, Value: 1, Values: []uint64{2}})),
			[]string{"rule 0 (ioctl when arg1 == 0x1): equal takes Value; Values must be empty"}},
		{"low32 with a 64-bit value", validPolicy(withCond(Cond{Arg: 1, Op: Equal, Value: 1 << 32, Low32: true})),
			[]string{"rule 0 (ioctl when low32(arg1) == 0x100000000): low32 comparison with 0x100000000"}},
		{"errno action without errno", validPolicy(Rule{Syscall: "clone3", Action: Errno, Reason: "x"}),
			[]string{"rule 0 (clone3): action errno needs an errno from 1 to 4095, got 0"}},
		{"errno too big", validPolicy(Rule{Syscall: "clone3", Action: Errno, Errno: 5000, Reason: "x"}),
			[]string{"rule 0 (clone3): action errno needs an errno from 1 to 4095, got 5000"}},
		{"errno with another action", validPolicy(Rule{Syscall: "clone3", Action: Notify, Errno: unix.ENOSYS, Reason: "x"}),
			[]string{"rule 0 (clone3): errno 38 given but the action is notify"}},
		{"unknown rule action", validPolicy(Rule{Syscall: "clone3", Action: 9, Reason: "x"}),
			[]string{"rule 0 (clone3): unknown action Action(9)"}},
		{"unknown default", Policy{Default: 7, ForeignABI: Notify},
			[]string{"Default: unknown action Action(7)"}},
		{"errno default without errno", Policy{Default: Errno, ForeignABI: Notify},
			[]string{"Default: action errno needs an errno"}},
		{"errno foreign without errno", Policy{Default: Allow, ForeignABI: Errno},
			[]string{"ForeignABI: action errno needs an errno"}},
		{"foreign ABI allowed", Policy{Default: Allow, ForeignABI: Allow},
			[]string{"ForeignABI: allow would let i386 and x32 calls past every rule"}},
		{"every problem reported", validPolicy(
			Rule{Syscall: "nosuch", Action: Notify, Reason: "x"},
			Rule{Syscall: "ptrace", Action: Notify}),
			[]string{"rule 0 (nosuch): unknown", "rule 1 (ptrace): no reason given"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q\nwant it to contain %q", err, w)
				}
			}
			if _, cerr := Compile(tt.policy); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Compile() error = %v, want the Validate error", cerr)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, p := range []Policy{
		DefaultPolicy(),
		coveragePolicy(),
		{Name: "empty", Default: Allow, ForeignABI: Kill},
		{Name: "deny by default", Default: Errno, DefaultErrno: unix.EPERM, ForeignABI: Errno, ForeignABIErrno: unix.ENOSYS,
			Rules: []Rule{{Syscall: "read", Action: Allow, Reason: "stdin"}}},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("policy %q: %v", p.Name, err)
		}
	}
}

func TestDefaultPolicyEveryRuleHasAReason(t *testing.T) {
	p := DefaultPolicy()
	if p.Default != Allow || p.ForeignABI != Notify {
		t.Errorf("default action %v, foreign ABI %v; want allow and notify", p.Default, p.ForeignABI)
	}
	for i, r := range p.Rules {
		if len(strings.TrimSpace(r.Reason)) < 10 {
			t.Errorf("rule %d (%s): reason %q says too little", i, r, r.Reason)
		}
	}
}

func x86(nr string, args ...uint64) Data {
	n, ok := SyscallNumber(nr)
	if !ok {
		panic("no syscall " + nr)
	}
	d := Data{Nr: n, Arch: unix.AUDIT_ARCH_X86_64}
	copy(d.Args[:], args)
	return d
}

func TestDecideDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		name      string
		d         Data
		want      Action
		wantErrno unix.Errno
	}{
		{"read", x86("read", 0, 0, 10), Allow, 0},
		{"ptrace", x86("ptrace"), Notify, 0},
		{"mount", x86("mount"), Notify, 0},
		{"fork-like clone", x86("clone", uint64(unix.SIGCHLD)), Allow, 0},
		{"thread clone", x86("clone", unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_THREAD|unix.CLONE_SYSVSEM|unix.CLONE_SETTLS|unix.CLONE_PARENT_SETTID|unix.CLONE_CHILD_CLEARTID), Allow, 0},
		{"clone new user", x86("clone", unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), Notify, 0},
		{"clone new net", x86("clone", unix.CLONE_NEWNET), Notify, 0},
		{"clone new time bit", x86("clone", unix.CLONE_NEWTIME), Notify, 0},
		{"clone3", x86("clone3", 0, 88), Errno, unix.ENOSYS},
		{"io_uring_setup", x86("io_uring_setup", 8, 0), Errno, unix.ENOSYS},
		{"io_uring_enter", x86("io_uring_enter"), Notify, 0},
		{"ioctl TCGETS", x86("ioctl", 0, unix.TCGETS), Allow, 0},
		{"ioctl TIOCSTI", x86("ioctl", 0, unix.TIOCSTI), Notify, 0},
		{"ioctl TIOCSTI upper junk", x86("ioctl", 0, 0xdead_0000_0000_0000|unix.TIOCSTI), Notify, 0},
		{"ioctl TIOCLINUX", x86("ioctl", 0, unix.TIOCLINUX), Notify, 0},
		{"personality query", x86("personality", 0xffffffff), Allow, 0},
		{"personality query sign-extended", x86("personality", ^uint64(0)), Allow, 0},
		{"personality PER_LINUX", x86("personality", 0), Allow, 0},
		{"personality PER_LINUX32", x86("personality", 8), Allow, 0},
		{"personality ADDR_NO_RANDOMIZE", x86("personality", 0x0040000), Allow, 0},
		{"personality READ_IMPLIES_EXEC", x86("personality", 0x0400000), Notify, 0},
		{"personality MMAP_PAGE_ZERO", x86("personality", 0x0100000), Notify, 0},
		{"socket unix", x86("socket", unix.AF_UNIX, unix.SOCK_STREAM), Allow, 0},
		{"socket inet6", x86("socket", unix.AF_INET6, unix.SOCK_DGRAM), Allow, 0},
		{"socket netlink", x86("socket", unix.AF_NETLINK, unix.SOCK_RAW), Errno, unix.EAFNOSUPPORT},
		{"socketpair netlink", x86("socketpair", unix.AF_NETLINK, unix.SOCK_RAW), Errno, unix.EAFNOSUPPORT},
		{"io_setup", x86("io_setup", 1), Errno, unix.ENOSYS},
		{"inotify_init1", x86("inotify_init1", 0), Errno, unix.ENOSYS},
		{"mq_open", x86("mq_open"), Errno, unix.ENOSYS},
		{"socket alg", x86("socket", unix.AF_ALG, unix.SOCK_SEQPACKET), Errno, unix.EAFNOSUPPORT},
		{"socket packet", x86("socket", unix.AF_PACKET, unix.SOCK_RAW), Errno, unix.EAFNOSUPPORT},
		{"socket unix upper junk", x86("socket", 1<<40|unix.AF_UNIX), Allow, 0},
		{"i386 getpid", Data{Nr: 20, Arch: unix.AUDIT_ARCH_I386}, Notify, 0},
		{"x32 getpid", Data{Nr: 39 | x32SyscallBit, Arch: unix.AUDIT_ARCH_X86_64}, Notify, 0},
		{"number -1", Data{Nr: -1, Arch: unix.AUDIT_ARCH_X86_64}, Notify, 0},
		{"unknown number", Data{Nr: 999, Arch: unix.AUDIT_ARCH_X86_64}, Allow, 0},
		{"aarch64", Data{Nr: 39, Arch: unix.AUDIT_ARCH_AARCH64}, Notify, 0},
	}
	for _, tt := range tests {
		a, e := p.Decide(tt.d)
		if a != tt.want || e != tt.wantErrno {
			t.Errorf("%s: Decide = %v, %d; want %v, %d", tt.name, a, e, tt.want, tt.wantErrno)
		}
	}
}

func TestDecideOrder(t *testing.T) {
	p := validPolicy(
		Rule{Syscall: "ioctl", Action: Errno, Errno: unix.EPERM, Reason: "everything else"},
		Rule{Syscall: "ioctl", Action: Kill, When: &Cond{Arg: 1, Op: Equal, Value: 1}, Reason: "first match"},
		Rule{Syscall: "ioctl", Action: Notify, When: &Cond{Arg: 1, Op: MaskedNonZero, Value: 1}, Reason: "second"},
	)
	for _, tt := range []struct {
		arg  uint64
		want Action
	}{{1, Kill}, {3, Notify}, {2, Errno}} {
		if a, _ := p.Decide(x86("ioctl", 0, tt.arg)); a != tt.want {
			t.Errorf("ioctl(0, %d): %v, want %v", tt.arg, a, tt.want)
		}
	}
}

func TestSyscallNames(t *testing.T) {
	for _, tt := range []struct {
		arch uint32
		nr   int32
		want string
	}{
		{unix.AUDIT_ARCH_X86_64, 101, "ptrace"},
		{unix.AUDIT_ARCH_X86_64, 0, "read"},
		{unix.AUDIT_ARCH_X86_64, 262, "newfstatat"},
		{unix.AUDIT_ARCH_X86_64, 435, "clone3"},
		{unix.AUDIT_ARCH_X86_64, 999, "syscall 999"},
		{unix.AUDIT_ARCH_X86_64, 400, "syscall 400"},
		{unix.AUDIT_ARCH_X86_64, -1, "syscall -1"},
		{unix.AUDIT_ARCH_X86_64, 101 | x32SyscallBit, "x32 syscall 101"},
		{unix.AUDIT_ARCH_I386, 26, "i386 syscall 26 (ptrace)"},
		{unix.AUDIT_ARCH_I386, 102, "i386 syscall 102 (socketcall)"},
		{unix.AUDIT_ARCH_I386, 9999, "i386 syscall 9999"},
		{unix.AUDIT_ARCH_AARCH64, 117, "arch 0xc00000b7 syscall 117"},
	} {
		if got := SyscallName(tt.arch, tt.nr); got != tt.want {
			t.Errorf("SyscallName(%#x, %d) = %q, want %q", tt.arch, tt.nr, got, tt.want)
		}
	}
	for name, want := range map[string]int32{
		"read": 0, "ptrace": 101, "newfstatat": 262, "clone3": 435, "io_uring_setup": 425,
		"_sysctl": 156, "umount2": 166, "pidfd_getfd": 438, "mseal": 462,
	} {
		if got, ok := SyscallNumber(name); !ok || got != want {
			t.Errorf("SyscallNumber(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
	for _, name := range []string{"", "PTRACE", "socketcall", "umount", "syscall 101"} {
		if nr, ok := SyscallNumber(name); ok {
			t.Errorf("SyscallNumber(%q) = %d, want unknown", name, nr)
		}
	}
}

// TestNameTableCovers checks the x86_64 table has no holes where the kernel
// has calls: 0 to 336, then 424 on (337 to 423 are unassigned: new calls
// start at 424 on every architecture).
func TestNameTableCovers(t *testing.T) {
	if len(namesX86_64) < 463 {
		t.Fatalf("x86_64 table ends at %d, want at least 463 entries", len(namesX86_64))
	}
	for nr, name := range namesX86_64 {
		hole := nr > 336 && nr < 424
		if hole != (name == "") {
			t.Errorf("x86_64 number %d: name %q", nr, name)
		}
		if name != strings.ToLower(name) {
			t.Errorf("x86_64 number %d: name %q is not lower case", nr, name)
		}
	}
	if n, ok := SyscallNumber("ptrace"); !ok || namesI386[26] != "ptrace" || n != 101 {
		t.Errorf("ptrace: x86_64 %d, i386 name %q", n, namesI386[26])
	}
}

func TestDataMarshal(t *testing.T) {
	d := Data{Nr: 101, Arch: unix.AUDIT_ARCH_X86_64, IP: 0x1122334455667788, Args: [6]uint64{1, 0x0102030405060708}}
	b := d.Marshal()
	if len(b) != 64 {
		t.Fatalf("len = %d, want 64", len(b))
	}
	want := []byte{
		101, 0, 0, 0, 0x3e, 0, 0, 0xc0, // nr, arch
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // ip
		1, 0, 0, 0, 0, 0, 0, 0, // arg0
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // arg1
	}
	want = append(want, make([]byte, 32)...)
	if !bytes.Equal(b, want) {
		t.Errorf("Marshal =\n% x\nwant\n% x", b, want)
	}
}
