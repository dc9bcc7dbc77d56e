package cgroup

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeSandbox is what NewSandbox must make and hand over on a fake host,
// as paths below the fake's root.
type fakeSandbox struct {
	mode    Mode
	dirs    []string // the sandbox's groups
	init    string   // Handover.Init; "" for nil
	program string   // Handover.Program; "" for nil
	join    []string // Handover.Join
	chowned []string // "path uid:gid"
	pidsMax string   // where the pids limit goes
}

func fakeSandboxes() []fakeSandbox {
	inits := "/_inits-" + strconv.Itoa(os.Getpid())
	const (
		v2  = "/system.slice/sandboxd.service/sandboxd"
		uni = "/unified/sandboxd"
		mem = "/memory/process_api/abc/sandboxd"
		pid = "/pids/sandboxd"
		hcp = "/cpu/sandboxd" // hybrid's v1 cpu hierarchy
		cpu = "/cpu,cpuacct/x/sandboxd"
		frz = "/freezer/sandboxd"
	)
	return []fakeSandbox{{
		mode: ModeV2, dirs: []string{v2 + "/r1"},
		init: v2 + inits, program: v2 + "/r1",
		chowned: []string{v2 + "/cgroup.procs 4242:4343", v2 + "/r1/cgroup.procs 4242:4343"},
		pidsMax: v2 + "/r1/pids.max",
	}, {
		mode: ModeHybrid, dirs: []string{uni + "/r1", hcp + "/r1", mem + "/r1", pid + "/r1"},
		init: uni + inits, program: uni + "/r1",
		join:    []string{hcp + "/r1/tasks", mem + "/r1/tasks", pid + "/r1/tasks"},
		chowned: []string{uni + "/cgroup.procs 4242:4343", uni + "/r1/cgroup.procs 4242:4343"},
		pidsMax: pid + "/r1/pids.max",
	}, {
		mode: ModeV1, dirs: []string{cpu + "/r1", frz + "/r1", mem + "/r1", pid + "/r1"},
		join:    []string{cpu + "/r1/tasks", frz + "/r1/tasks", mem + "/r1/tasks", pid + "/r1/tasks"},
		pidsMax: pid + "/r1/pids.max",
	}}
}

// name is f's name relative to the fake's root, "" for nil.
func (k *fakeKernel) name(f *os.File) string {
	if f == nil {
		return ""
	}
	return k.rel(f.Name())
}

// NewSandbox makes the groups with their limits, gives the init's uid what
// it needs, and hands over the init's and the program's directories and
// the v1 join files; a step's reads then open nothing, and Close and
// Destroy leave no file open and no group.
func TestFakeNewSandbox(t *testing.T) {
	for _, want := range fakeSandboxes() {
		t.Run(string(want.mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, want.mode, fakeOpts{})
			m := openFake(t, k, cfg)
			k.resetLog()
			g, h, err := m.NewSandbox("r1", Limits{MemoryBytes: 32 << 20, PIDs: 8}, 4242, 4343)
			if err != nil {
				t.Fatal(err)
			}
			wantStrings(t, "groups made", k.relPaths(k.mkdirs), want.dirs)
			if got := k.name(h.Init); got != want.init {
				t.Errorf("Handover.Init = %q, want %q", got, want.init)
			}
			if got := k.name(h.Program); got != want.program {
				t.Errorf("Handover.Program = %q, want %q", got, want.program)
			}
			var join []string
			for _, f := range h.Join {
				join = append(join, k.name(f))
			}
			wantStrings(t, "Handover.Join", join, want.join)
			wantStrings(t, "chowns", k.relPaths(k.chowned), want.chowned)
			if got := k.value(want.pidsMax); got != "8" {
				t.Errorf("%s = %q, want 8", want.pidsMax, got)
			}

			// The step's reads open nothing more.
			k.resetLog()
			if err := g.MarkStart(); err != nil {
				t.Fatal(err)
			}
			if _, err := g.CPUUsage(); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Stats(); err != nil {
				t.Fatal(err)
			}
			wantStrings(t, "files opened by a step's reads", k.relPaths(k.opened), nil)

			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			if err := h.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := g.Destroy(); err != nil {
				t.Fatal(err)
			}
			wantStrings(t, "files left open", k.relPaths(k.openNow()), nil)
			if left, err := m.Leftovers(); err != nil || len(left) != 0 {
				t.Errorf("Leftovers = %v, %v", left, err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A file NewSandbox cannot open, at any point of its way, fails it with an
// error that names the file, and leaves no group and no open file behind;
// the inits' group, the Manager's, stays. The next NewSandbox of the same
// name succeeds.
func TestFakeNewSandboxFailureLeavesNothing(t *testing.T) {
	for _, want := range fakeSandboxes() {
		t.Run(string(want.mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, want.mode, fakeOpts{})
			m := openFake(t, k, cfg)

			// Every file NewSandbox opens is a point it can fail at.
			k.resetLog()
			g, h, err := m.NewSandbox("r1", Limits{MemoryBytes: 32 << 20, PIDs: 8}, 4242, 4343)
			if err != nil {
				t.Fatal(err)
			}
			opened := slices.Clone(k.opened)
			h.Close()
			if err := g.Destroy(); err != nil {
				t.Fatal(err)
			}
			if len(opened) < 3 {
				t.Fatalf("NewSandbox opened only %q", k.relPaths(opened))
			}
			for _, p := range opened {
				k.failOpen[p] = syscall.EACCES
				g, h, err := m.NewSandbox("r1", Limits{MemoryBytes: 32 << 20, PIDs: 8}, 4242, 4343)
				delete(k.failOpen, p)
				if g != nil || h != nil || err == nil {
					t.Fatalf("NewSandbox with %s unopenable = %v, %v, %v; want an error", k.rel(p), g, h, err)
				}
				if !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not name %s", err, p)
				}
				if left, err := m.Leftovers(); err != nil || len(left) != 0 {
					t.Errorf("%s unopenable: Leftovers = %v, %v", k.rel(p), left, err)
				}
				for _, d := range want.dirs {
					if k.fileExists(d) {
						t.Errorf("%s unopenable: %s left behind", k.rel(p), d)
					}
				}
				wantStrings(t, k.rel(p)+" unopenable: files left open", k.relPaths(k.openNow()), nil)
				if m.inits != "" && !k.exists(m.inits) {
					t.Errorf("%s unopenable: the inits' group %s was removed", k.rel(p), m.inits)
				}
			}

			g, h, err = m.NewSandbox("r1", Limits{}, 4242, 4343)
			if err != nil {
				t.Fatalf("NewSandbox after the failures: %v", err)
			}
			h.Close()
			if err := g.Destroy(); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The init's directory is made again when another sandboxd on the same
// subtree removed it.
func TestFakeNewSandboxRemakesTheInitsGroup(t *testing.T) {
	k, cfg := newFakeHost(t, ModeHybrid, fakeOpts{})
	m := openFake(t, k, cfg)
	if err := k.rmdir(m.inits); err != nil {
		t.Fatal(err)
	}
	g, h, err := m.NewSandbox("r1", Limits{}, 4242, 4343)
	if err != nil {
		t.Fatal(err)
	}
	if h.Init == nil || h.Init.Name() != m.inits || !k.exists(m.inits) {
		t.Errorf("Handover.Init = %v, want %s made again", h.Init, m.inits)
	}
	h.Close()
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// Handover.Close takes a nil Handover and one with nil files.
func TestHandoverCloseNil(t *testing.T) {
	var h *Handover
	if err := h.Close(); err != nil {
		t.Error(err)
	}
	if err := (&Handover{}).Close(); err != nil {
		t.Error(err)
	}
}
