// Package kubernetes_test checks the manifests in this directory without a
// cluster: each decodes strictly into the Kubernetes API's Go types (a
// field misspelt or in the wrong place fails), and what the manifests and
// docs/kubernetes.md say of each other holds: the probes ping the socket
// that sandboxd.toml names, the client Job mounts that socket and has
// the socket's group, and its completions are the N of --shard I/N.
//
// k8s.io/api and sigs.k8s.io/yaml are imported here only: the sandboxd and
// sandboxctl binaries must not link them (TestBinariesLinkNoKubernetes).
package kubernetes_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/daemon"
)

// kinds are the objects the manifests may hold, by apiVersion and kind.
var kinds = map[string]func() any{
	"v1/Namespace":             func() any { return new(corev1.Namespace) },
	"v1/ConfigMap":             func() any { return new(corev1.ConfigMap) },
	"v1/PersistentVolumeClaim": func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1/DaemonSet":        func() any { return new(appsv1.DaemonSet) },
	"batch/v1/Job":             func() any { return new(batchv1.Job) },
}

// decodeStrict turns one YAML document into its API type: duplicate keys,
// unknown fields and a kind not in kinds are errors.
func decodeStrict(doc []byte) (any, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return nil, err
	}
	newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("apiVersion %q kind %q: not a kind this test knows", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: more after the object", tm.Kind)
	}
	return obj, nil
}

// splitDocs cuts a YAML stream at its "---" lines; documents with nothing
// but comments are dropped.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		for l := range strings.Lines(d) {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				docs = append(docs, []byte(d))
				break
			}
		}
	}
	return docs
}

// manifests are every object under this directory, by "kind/name".
type manifests map[string]any

func load(t *testing.T) manifests {
	t.Helper()
	m := manifests{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (path.Ext(p) != ".yaml" && path.Ext(p) != ".yml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, doc := range splitDocs(b) {
			obj, err := decodeStrict(doc)
			if err != nil {
				return fmt.Errorf("%s, document %d: %w", p, i+1, err)
			}
			meta := obj.(metav1.ObjectMetaAccessor).GetObjectMeta()
			key := fmt.Sprintf("%T/%s", obj, meta.GetName())
			if _, dup := m[key]; dup {
				return fmt.Errorf("%s: %s defined twice", p, key)
			}
			m[key] = obj
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func get[T any](t *testing.T, m manifests, name string) *T {
	t.Helper()
	key := fmt.Sprintf("%T/%s", new(T), name)
	obj, ok := m[key].(*T)
	if !ok {
		t.Fatalf("no %s among the manifests", key)
	}
	return obj
}

// TestManifestsDecodeStrictly decodes every manifest and checks that each
// namespaced object is in the namespace the manifests make.
func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	if len(m) < 6 {
		t.Errorf("only %d objects: %v", len(m), slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		}))
	}
	ns := get[corev1.Namespace](t, m, "sandboxd")
	for key, obj := range m {
		if obj == any(ns) {
			continue
		}
		if got := obj.(metav1.ObjectMetaAccessor).GetObjectMeta().GetNamespace(); got != ns.Name {
			t.Errorf("%s: namespace %q, want %q", key, got, ns.Name)
		}
	}
}

// TestStrictDecoding shows that the decoder refuses what it should: a
// misspelt field, a field in the wrong place, a duplicate key, an unknown
// kind.
func TestStrictDecoding(t *testing.T) {
	b, err := os.ReadFile("sandboxd-daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if _, err := decodeStrict(b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ old, new, err string }{
		{"readinessProbe:", "readynessProbe:", `unknown field "readynessProbe"`},
		{"privileged: true", "priviledged: true", `unknown field "priviledged"`},
		// A field of the container put on the pod.
		{"      terminationGracePeriodSeconds: 60", "      terminationGracePeriodSeconds: 60\n      imagePullPolicy: Always", `unknown field "imagePullPolicy"`},
		{"  updateStrategy:", "  minReadySeconds: 1\n  minReadySeconds: 2\n  updateStrategy:", `"minReadySeconds" already set`},
		{"kind: DaemonSet", "kind: DeamonSet", "not a kind this test knows"},
	} {
		bad := strings.Replace(doc, tc.old, tc.new, 1)
		if bad == doc {
			t.Fatalf("%q is not in the manifest", tc.old)
		}
		if _, err := decodeStrict([]byte(bad)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q for %q: error %v, want %q", tc.new, tc.old, err, tc.err)
		}
	}
}

// daemonConfig is the DaemonSet's sandboxd.toml, loaded as the daemon
// loads it (unknown keys are errors).
func daemonConfig(t *testing.T, m manifests) daemon.Config {
	t.Helper()
	cm := get[corev1.ConfigMap](t, m, "sandboxd-config")
	text, ok := cm.Data["sandboxd.toml"]
	if !ok {
		t.Fatal("ConfigMap sandboxd-config has no sandboxd.toml")
	}
	file := filepath.Join(t.TempDir(), "sandboxd.toml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := daemon.LoadConfig(file)
	if err != nil {
		t.Fatalf("sandboxd.toml in ConfigMap sandboxd-config: %v", err)
	}
	return cfg
}

// mountAt is the container's mount at dir, and the pod's volume behind it.
func mountAt(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, dir string) (corev1.VolumeMount, corev1.Volume) {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != dir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == vm.Name {
				return vm, v
			}
		}
		t.Fatalf("container %s: mount at %s names volume %q, which the pod lacks", c.Name, dir, vm.Name)
	}
	t.Fatalf("container %s: nothing mounted at %s", c.Name, dir)
	return corev1.VolumeMount{}, corev1.Volume{}
}

// source says what a volume is, briefly, for messages.
func source(v corev1.Volume) string {
	switch {
	case v.HostPath != nil:
		return "hostPath " + v.HostPath.Path
	case v.EmptyDir != nil:
		return "emptyDir"
	case v.ConfigMap != nil:
		return "configMap " + v.ConfigMap.Name
	case v.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim " + v.PersistentVolumeClaim.ClaimName
	}
	return "another kind of volume"
}

// deref is *p, or -1 for nil, for messages.
func deref[T ~int32 | ~int64](p *T) int64 {
	if p == nil {
		return -1
	}
	return int64(*p)
}

func container(t *testing.T, pod *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

// uidLockFile is the engine's host-wide lock file of sandbox uids
// (engine/idpool_linux.go).
const uidLockFile = "/run/sandboxd-uids.lock"

// TestDaemonSet checks what the DaemonSet's comments and docs/kubernetes.md
// claim of it.
func TestDaemonSet(t *testing.T) {
	m := load(t)
	cfg := daemonConfig(t, m)
	ds := get[appsv1.DaemonSet](t, m, "sandboxd")
	pod := &ds.Spec.Template.Spec
	c := container(t, pod, "sandboxd")

	// The config file is the ConfigMap's, where the daemon is told to read it.
	cfgMount, cfgVol := mountAt(t, pod, c, "/etc/sandboxd")
	if cfgVol.ConfigMap == nil || cfgVol.ConfigMap.Name != "sandboxd-config" || !cfgMount.ReadOnly {
		t.Errorf("/etc/sandboxd: %s, want ConfigMap sandboxd-config read-only", source(cfgVol))
	}
	if want := []string{"serve", "--config", "/etc/sandboxd/sandboxd.toml"}; !slices.Equal(c.Args, want) || c.Command != nil {
		t.Errorf("command %q args %q, want the image's entrypoint with %q", c.Command, c.Args, want)
	}

	// Startup, readiness and liveness: sandboxctl ping (GET /_ping) on the
	// socket that sandboxd.toml names, with the binary the image installs.
	ping := []string{"/usr/local/bin/sandboxctl", "--socket", cfg.Socket, "ping"}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.Exec == nil || !slices.Equal(p.Exec.Command, ping) {
			t.Errorf("%s probe: want exec %q", name, ping)
		}
	}
	if c.StartupProbe != nil && c.StartupProbe.InitialDelaySeconds < 1 {
		t.Errorf("startup probe at once: its process could sit in the container's cgroup before sandboxd moved into its leaf")
	}
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^COPY --from=build .*/bin/sandboxctl .*/usr/local/bin/$`).Match(dockerfile) {
		t.Errorf("the Dockerfile does not install sandboxctl in /usr/local/bin")
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["/usr/local/bin/sandboxd"\]$`).Match(dockerfile) {
		t.Errorf("the Dockerfile's entrypoint is not sandboxd itself (it must be the container's pid 1)")
	}

	// The socket's directory is the node's, shared; the state and the uid
	// lock are where sandboxd.toml and the engine put them.
	sockMount, sockVol := mountAt(t, pod, c, path.Dir(cfg.Socket))
	if sockVol.HostPath == nil || sockVol.HostPath.Path != "/run/sandboxd" || sockMount.ReadOnly {
		t.Errorf("socket directory %s: %s, want hostPath /run/sandboxd, writable", path.Dir(cfg.Socket), source(sockVol))
	}
	_, stateVol := mountAt(t, pod, c, cfg.StateDir)
	if stateVol.EmptyDir == nil {
		t.Errorf("state_dir %s: %s, want an emptyDir", cfg.StateDir, source(stateVol))
	}
	if !strings.HasPrefix(cfg.CacheDir, cfg.StateDir+"/") {
		t.Errorf("cache_dir %s is not under state_dir %s: the root file system is read-only", cfg.CacheDir, cfg.StateDir)
	}
	_, lockVol := mountAt(t, pod, c, uidLockFile)
	if lockVol.HostPath == nil || lockVol.HostPath.Path != uidLockFile || lockVol.HostPath.Type == nil || *lockVol.HostPath.Type != corev1.HostPathFileOrCreate {
		t.Errorf("%s: %s, want the node's, FileOrCreate", uidLockFile, source(lockVol))
	}

	// Exactly the privileges docs/kubernetes.md names, and no others.
	var hostPaths []string
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths = append(hostPaths, v.HostPath.Path)
		}
	}
	if want := []string{"/run/sandboxd", uidLockFile}; !slices.Equal(hostPaths, want) {
		t.Errorf("hostPath volumes %q, want %q", hostPaths, want)
	}
	for _, vm := range c.VolumeMounts {
		if vm.MountPropagation != nil && *vm.MountPropagation != corev1.MountPropagationNone {
			t.Errorf("mount %s: propagation %s: the daemon's mounts must not reach the node", vm.MountPath, *vm.MountPropagation)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || !*sc.Privileged || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("securityContext: want privileged, as root")
	} else if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("the root file system is writable")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC || pod.ShareProcessNamespace != nil && *pod.ShareProcessNamespace {
		t.Errorf("the pod shares the node's network, pids or IPC, or its containers' pids")
	}
	if pod.HostUsers != nil && !*pod.HostUsers {
		t.Errorf("hostUsers: false: the sandbox uids are the node's")
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Errorf("%d containers and %d init containers, want sandboxd alone", len(pod.Containers), len(pod.InitContainers))
	}

	// Resources: a CPU request of concurrency, and no CPU limit.
	if got := c.Resources.Requests.Cpu().Value(); got != int64(cfg.Concurrency) {
		t.Errorf("CPU request %d, concurrency %d: keep them equal", got, cfg.Concurrency)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Errorf("a CPU limit: its quota would throttle sandboxes within their own CPU budget")
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Errorf("no memory limit")
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru == nil || ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 0 {
		t.Errorf("rolling update %+v: want maxSurge 0 (one daemon per node)", ru)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < int64(cfg.ShutdownGrace.Seconds())+30 {
		t.Errorf("terminationGracePeriodSeconds %d: want shutdown_grace (%s) and half a minute", deref(g), cfg.ShutdownGrace)
	}
}

// shardFlag is --shard "$JOB_COMPLETION_INDEX/N" in the Job's command.
var shardFlag = regexp.MustCompile(`sandboxctl batch --shard "\$JOB_COMPLETION_INDEX/(\d+)" (\S+)`)

// TestBatchJob checks the example Indexed Job against the DaemonSet and
// its config.
func TestBatchJob(t *testing.T) {
	m := load(t)
	cfg := daemonConfig(t, m)
	ds := get[appsv1.DaemonSet](t, m, "sandboxd")
	job := get[batchv1.Job](t, m, "sandboxd-batch")
	pod := &job.Spec.Template.Spec
	c := container(t, pod, "shard")

	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode %v, want Indexed", job.Spec.CompletionMode)
	}
	script := strings.Join(append(slices.Clone(c.Command), c.Args...), " ")
	match := shardFlag.FindStringSubmatch(script)
	if match == nil {
		t.Fatalf("the command has no %s:\n%s", shardFlag, script)
	}
	n, _ := strconv.Atoi(match[1])
	if job.Spec.Completions == nil || int(*job.Spec.Completions) != n {
		t.Errorf("completions %d, but --shard I/%d", deref(job.Spec.Completions), n)
	}
	if p := job.Spec.Parallelism; p == nil || *p < 1 || int(*p) > n {
		t.Errorf("parallelism %d, want 1..%d", deref(p), n)
	}
	if !strings.Contains(script, fmt.Sprintf(`out="/results/shard-$JOB_COMPLETION_INDEX-of-%d.jsonl"`, n)) {
		t.Errorf("the results file does not name the shard and N = %d:\n%s", n, script)
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %s: a failed shard is retried by the Job, as a new pod", pod.RestartPolicy)
	}

	// The dataset the command reads is the ConfigMap's, and each of its
	// lines is a job the daemon takes.
	dataset := match[2]
	_, dataVol := mountAt(t, pod, c, path.Dir(dataset))
	if dataVol.ConfigMap == nil {
		t.Fatalf("%s: %s, want a ConfigMap", path.Dir(dataset), source(dataVol))
	}
	cm := get[corev1.ConfigMap](t, m, dataVol.ConfigMap.Name)
	jobs, ok := cm.Data[path.Base(dataset)]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cm.Name, path.Base(dataset))
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(jobs))
	for sc.Scan() {
		lines++
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var j api.Job
		if err := dec.Decode(&j); err != nil || len(j.Steps) == 0 {
			t.Errorf("%s line %d: %v (steps %d)", dataset, lines, err, len(j.Steps))
		}
	}
	if lines < n {
		t.Errorf("%d jobs in %s for %d shards: some would get none", lines, dataset, n)
	}
	_, resVol := mountAt(t, pod, c, "/results")
	if resVol.PersistentVolumeClaim == nil {
		t.Fatalf("/results: %s, want a PersistentVolumeClaim", source(resVol))
	}
	pvc := get[corev1.PersistentVolumeClaim](t, m, resVol.PersistentVolumeClaim.ClaimName)
	if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("PVC %s: access modes %v: the shards' pods run on several nodes", pvc.Name, pvc.Spec.AccessModes)
	}

	// Each container reaches the node's daemon: its socket directory, read
	// only, at the path sandboxd.toml names, as the socket's group; the
	// image is the daemon's (the same sandboxctl).
	dsSock := ds.Spec.Template.Spec.Volumes
	var dsSockPath string
	for _, v := range dsSock {
		if v.Name == "socket-dir" && v.HostPath != nil {
			dsSockPath = v.HostPath.Path
		}
	}
	gid, err := strconv.ParseInt(cfg.SocketGroup, 10, 64)
	if err != nil {
		t.Fatalf("socket_group %q: want a number (client pods take it as runAsGroup): %v", cfg.SocketGroup, err)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsGroup == nil || *psc.RunAsGroup != gid || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext: want runAsGroup %d (socket_group), runAsNonRoot", gid)
	}
	for _, cc := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		sockMount, sockVol := mountAt(t, pod, &cc, path.Dir(cfg.Socket))
		if sockVol.HostPath == nil || sockVol.HostPath.Path != dsSockPath || !sockMount.ReadOnly {
			t.Errorf("container %s: socket directory %s, want the DaemonSet's hostPath %s read-only", cc.Name, source(sockVol), dsSockPath)
		}
		var env string
		for _, e := range cc.Env {
			if e.Name == "SANDBOXD_SOCKET" {
				env = e.Value
			}
		}
		if env != cfg.Socket {
			t.Errorf("container %s: SANDBOXD_SOCKET %q, want %q", cc.Name, env, cfg.Socket)
		}
		if cc.Image != ds.Spec.Template.Spec.Containers[0].Image {
			t.Errorf("container %s: image %s, want the daemon's", cc.Name, cc.Image)
		}
		if s := cc.SecurityContext; s == nil || s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation || s.Privileged != nil && *s.Privileged {
			t.Errorf("container %s: want allowPrivilegeEscalation false, not privileged", cc.Name)
		}
	}
}

// TestBinariesLinkNoKubernetes: the Kubernetes modules are this test's
// alone. (Without the embedhelper tag, which adds only the embedded
// helper's bytes and needs them built.)
func TestBinariesLinkNoKubernetes(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/sandboxd/sandboxd/cmd/sandboxd", "github.com/sandboxd/sandboxd/cmd/sandboxctl").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("go list: %v: %s", err, ee.Stderr)
	} else if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "k8s.io/") || strings.HasPrefix(l, "sigs.k8s.io/") {
			t.Errorf("the binaries link %s", strings.TrimSpace(l))
		}
	}
}
