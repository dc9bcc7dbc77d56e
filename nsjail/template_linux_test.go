package nsjail

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// templateMark is in the root's mountinfo line when the root is a copy of
// a template.
const templateMark = " tmpfs " + templateSource + " "

// templatesExpected: the kernel copies detached mount trees and attaches
// mounts to them (Linux 6.15). Before, every root is built in full, and the
// tests below check that instead.
func templatesExpected(t *testing.T) bool {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &major, &minor)
	return major > 6 || major == 6 && minor >= 15
}

// rootLine is the mountinfo line of / in a program's output.
func rootLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == "/" {
			return l
		}
	}
	return ""
}

// A root from a template is what a root built in full is: read-only, the
// files written and owned by root inside, /dev, /proc, a private /tmp.
func TestTemplateRoot(t *testing.T) {
	spec := testSpec(t, "sh", "-c", `cat /proc/self/mountinfo; echo ==; cat /etc/passwd; stat -c '%u %g %a' / /etc/passwd /dev /tmp;
		touch /etc/x 2>/dev/null && echo etc-writable; touch /x 2>/dev/null && echo root-writable;
		echo tmp > /tmp/f && cat /tmp/f; echo shm > /dev/shm/f && cat /dev/shm/f; head -c 4 /dev/zero | wc -c; echo > /dev/null && echo null-ok;
		ls /proc/1/ >/dev/null && echo proc-ok; readlink /dev/stdout /lib`)
	o := run(t, spec)
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
		t.Fatalf("last event %+v, stderr %q", ev, o.stderr)
	}
	mounts, rest, _ := strings.Cut(o.stdout, "==\n")
	root := rootLine(mounts)
	if !strings.Contains(root, " ro,") {
		t.Errorf("the root is not read-only: %q", root)
	}
	if got, want := strings.Contains(root, templateMark), templatesExpected(t); got != want {
		t.Errorf("root %q: from a template %v, want %v on this kernel", root, got, want)
	}
	want := "sandbox:x:1000:1000::/workspace:/bin/sh\n" +
		"0 0 755\n0 0 644\n0 0 755\n1000 1000 1777\n" +
		"tmp\nshm\n4\nnull-ok\nproc-ok\n/proc/self/fd/1\n"
	if lib, err := os.Readlink("/lib"); err == nil {
		want += lib + "\n"
	}
	if rest != want {
		t.Errorf("inside:\n%s\nwant:\n%s", rest, want)
	}
}

// A sandbox's writes to its /tmp are not in the next one's, nor in the
// template they share.
func TestTemplateSharesNothingWritable(t *testing.T) {
	spec := testSpec(t, "sh", "-c", "find /tmp /dev/shm -mindepth 1; echo a > /tmp/a; echo b > /dev/shm/b")
	for i := range 2 {
		o := run(t, spec)
		if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
			t.Fatalf("run %d: last event %+v, stderr %q", i, ev, o.stderr)
		}
		if o.stdout != "" {
			t.Fatalf("run %d found earlier files: %q", i, o.stdout)
		}
	}
}

// A Spec with a writable tmpfs of its own is built in full, as before.
func TestTemplateNotForWritableTmpfs(t *testing.T) {
	spec := testSpec(t, "sh", "-c", "cat /proc/self/mountinfo; echo x > /opt/w/x && cat /opt/w/x")
	spec.Mounts = append(spec.Mounts, Mount{Kind: MountTmpfs, Target: "/opt/w", Mode: 0o777, SizeBytes: 1 << 20, Writable: true})
	o := run(t, spec)
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
		t.Fatalf("last event %+v, stderr %q", ev, o.stderr)
	}
	if root := rootLine(o.stdout); root == "" || strings.Contains(root, templateMark) {
		t.Errorf("root %q: want one the init built", root)
	}
	if !strings.HasSuffix(o.stdout, "x\n") {
		t.Errorf("the writable tmpfs: %q", o.stdout)
	}
}

// The helper builds templates as root on the host: a file of the Spec
// beneath a bind or a symlink must never reach the host's file system.
func TestTemplateWritesNothingOnTheHost(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.Mkdir(target, 0o777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, "/bin/true")
	spec.Mounts = append(spec.Mounts,
		Mount{Kind: MountBind, Source: link, Target: "/opt/link"},
		Mount{Kind: MountBind, Source: dir, Target: "/opt/dir", Writable: true})
	spec.Files["/opt/link/through-symlink"] = "x"
	spec.Files["/opt/dir/through-bind"] = "x"
	for _, f := range []string{"/opt/link/through-symlink", "/opt/dir/through-bind"} {
		one := spec.Spec
		one.Files = map[string]string{f: "x"}
		if fd, err := buildTemplate(&one); err == nil {
			unix.Close(fd)
			t.Errorf("a template with %s built", f)
		} else {
			t.Logf("%s: %v", f, err)
		}
	}
	o := run(t, spec)
	t.Logf("last event %+v", last(o))
	for _, p := range []string{filepath.Join(target, "through-symlink"), filepath.Join(dir, "through-bind")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written on the host", p)
		}
	}
}

// One template per kind of root, built again once too old; too many kinds
// and all are dropped.
func TestTemplateCache(t *testing.T) {
	spec := &testSpec(t, "/bin/true").Spec
	var ts templates
	defer func() {
		for k := range ts.byKey {
			ts.drop(k)
		}
	}()
	clone := func(s *Spec) {
		t.Helper()
		ns, fd := ts.root(s, templateKey(s))
		if ns >= 0 {
			t.Fatal("a template namespace from templates that were not given one")
		}
		if fd < 0 {
			t.Fatalf("no copy of a template: %v", ts.byKey[templateKey(s)].err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, "etc", &st, 0); err != nil {
			t.Errorf("the copy has no etc: %v", err)
		}
		unix.Close(fd)
	}
	if !templatesExpected(t) {
		// This kernel cannot: no copy, the failure kept so that it is not
		// tried again for every sandbox.
		if _, fd := ts.root(spec, templateKey(spec)); fd >= 0 {
			unix.Close(fd)
			t.Fatal("a copy of a template on a kernel before 6.15")
		}
		if tp := ts.byKey[templateKey(spec)]; tp == nil || tp.err == nil {
			t.Fatalf("the failed template is not kept: %+v", tp)
		}
		return
	}
	clone(spec)
	first := ts.byKey[templateKey(spec)]
	clone(spec)
	if len(ts.byKey) != 1 || ts.byKey[templateKey(spec)] != first {
		t.Fatalf("a second template for the same root: %d", len(ts.byKey))
	}
	first.made = first.made.Add(-templateMaxAge - time.Second)
	clone(spec)
	if ts.byKey[templateKey(spec)] == first {
		t.Fatal("a template older than templateMaxAge still serves")
	}
	for i := range maxTemplates {
		s := *spec
		s.Files = map[string]string{"/etc/n": fmt.Sprint(i)}
		clone(&s)
	}
	if len(ts.byKey) > maxTemplates {
		t.Fatalf("%d templates kept, at most %d", len(ts.byKey), maxTemplates)
	}
	if templateKey(&Spec{Mounts: []Mount{{Kind: MountTmpfs, Target: "/w", Writable: true}}}) != "" {
		t.Error("a writable tmpfs would be shared through a template")
	}
}

// A template namespace is made on the calling thread, which comes back to
// its own mount namespace, and leaves no mount in it; a sandbox cloned
// from one sees its own pid namespace in /proc, not the host's under it.
func TestTemplateNamespace(t *testing.T) {
	if !templatesExpected(t) {
		t.Skip("template namespaces are made from detached trees, which need Linux 6.15")
	}
	// This thread's file system context becomes its own: it must never
	// serve another goroutine, so it ends with this one (no unlock).
	runtime.LockOSThread()
	var ts templates
	ts.enableNamespaces()
	if !ts.nsOn {
		t.Fatalf("no template namespaces: %v", ts.nsErr)
	}
	defer func() {
		for k := range ts.byKey {
			ts.drop(k)
		}
		unix.Close(ts.hostNS)
	}()
	before, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	spec := &testSpec(t, "/bin/true").Spec
	ns, tree := ts.root(spec, templateKey(spec))
	if ns < 0 || tree >= 0 {
		t.Fatalf("root: namespace %d, tree %d (%v, %v)", ns, tree, ts.byKey[templateKey(spec)].err, ts.nsErr)
	}
	if again, _ := ts.root(spec, templateKey(spec)); again != ns {
		t.Errorf("a second template namespace for the same root: %d, then %d", ns, again)
	}
	var host, self, tmpl unix.Stat_t
	if err := unix.Fstat(ts.hostNS, &host); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/proc/thread-self/ns/mnt", &self); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(ns, &tmpl); err != nil {
		t.Fatal(err)
	}
	if self.Ino != host.Ino {
		t.Errorf("the thread is in mount namespace %d, not back in its own, %d", self.Ino, host.Ino)
	}
	if tmpl.Ino == host.Ino {
		t.Error("the template namespace is the thread's own")
	}
	after, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("the host's mounts changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// The helper's sandboxes come from a template namespace too: the
	// template's proc is in their mountinfo, beneath their own.
	inside := testSpec(t, "sh", "-c", "ls /proc | grep -c '^[0-9]'; cat /proc/1/comm; grep -c ' /proc .* proc proc rw,hidepid=invisible$' /proc/self/mountinfo")
	o := run(t, inside)
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
		t.Fatalf("last event %+v, stderr %q", ev, o.stderr)
	}
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("inside: %q", o.stdout)
	}
	n, comm := lines[0], lines[1]
	if lines[2] != "1" {
		t.Errorf("%s mounts of the template's proc in the sandbox's mountinfo, want 1 (a sandbox not cloned in a template namespace?)", lines[2])
	}
	if k, err := strconv.Atoi(n); err != nil || k > 4 {
		t.Errorf("the sandbox's /proc lists %s processes: the host's?", n)
	}
	if comm == "systemd" || comm == "init" {
		t.Errorf("pid 1 in the sandbox's /proc is %q", comm)
	}
}
