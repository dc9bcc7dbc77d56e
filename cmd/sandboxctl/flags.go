package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// limitFlag is one limit: a count of at least 1. Left out, the profile's
// default applies; a 0 is refused, as the daemon refuses it.
type limitFlag struct{ v *int64 }

func (f limitFlag) String() string {
	if f.v == nil || *f.v == 0 {
		return ""
	}
	return strconv.FormatInt(*f.v, 10)
}

func (f limitFlag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < 1 {
		return errors.New("must be at least 1 (leave it out for the profile's default)")
	}
	*f.v = n
	return nil
}

// cpusFlag is the cpus limit: a decimal number of CPUs above 0. Left out,
// the profile's default applies; a 0 is refused, as the daemon refuses it.
type cpusFlag struct{ v *float64 }

func (f cpusFlag) String() string {
	if f.v == nil || *f.v == 0 {
		return ""
	}
	return strconv.FormatFloat(*f.v, 'g', -1, 64)
}

func (f cpusFlag) Set(s string) error {
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return errors.New("not a number of CPUs (0.5, 1, 2.5)")
	}
	if n <= 0 {
		return errors.New("must be above 0 (leave it out for the profile's default)")
	}
	*f.v = n
	return nil
}

// limitFlagName is the flag of a limit: cpu_time_ms is --cpu-time-ms.
func limitFlagName(field string) string { return strings.ReplaceAll(field, "_", "-") }

// addLimitFlags adds --cpu-time-ms ... --stack-bytes and --cpus, filling l.
func addLimitFlags(fs *flag.FlagSet, l *api.Limits) {
	for _, f := range api.LimitFields {
		fs.Var(limitFlag{f.Get(l)}, limitFlagName(f.JSON), "the step's "+f.JSON+" limit (default: the profile's)")
	}
	fs.Var(cpusFlag{&l.CPUs}, api.CPUsField, "the step's CPU rate limit, in CPUs, e.g. 0.5 or 2 (default: the profile's)")
}

// fileFlags collects --file NAME=@PATH (a host file, sent as base64 with
// its mode) and --file NAME=TEXT (inline text).
type fileFlags map[string]api.File

func (f fileFlags) String() string { return "" }

func (f fileFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q is not NAME=@PATH or NAME=TEXT", s)
	}
	if _, dup := f[name]; dup {
		return fmt.Errorf("%s given twice", name)
	}
	path, fromHost := strings.CutPrefix(value, "@")
	if !fromHost {
		f[name] = api.File{Content: value}
		return nil
	}
	file, err := hostFile(path)
	if err != nil {
		return err
	}
	f[name] = file
	return nil
}

// cachedFileFlags collects --file-cached NAME=ID into the same files as
// --file.
type cachedFileFlags map[string]api.File

func (f cachedFileFlags) String() string { return "" }

func (f cachedFileFlags) Set(s string) error {
	name, id, ok := strings.Cut(s, "=")
	if !ok || name == "" || id == "" {
		return fmt.Errorf("%q is not NAME=ID", s)
	}
	if _, dup := f[name]; dup {
		return fmt.Errorf("%s given twice", name)
	}
	f[name] = api.File{Cached: id}
	return nil
}

// hostFile reads a host file for the workspace, byte for byte. Its mode
// is 0755 when any execute bit is set, else 0644: the sandbox's user is
// not the file's owner, so other bits would mean nothing there.
func hostFile(path string) (api.File, error) {
	if path == "" {
		return api.File{}, errors.New("@ needs a path")
	}
	st, err := os.Stat(path)
	if err != nil {
		return api.File{}, err
	}
	if !st.Mode().IsRegular() {
		return api.File{}, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return api.File{}, err
	}
	mode := "0644"
	if st.Mode().Perm()&0o111 != 0 {
		mode = "0755"
	}
	return api.File{Base64: base64.StdEncoding.EncodeToString(b), Mode: mode}, nil
}

// listFlags collects a repeated flag's values in order.
type listFlags []string

func (l *listFlags) String() string { return strings.Join(*l, ",") }

func (l *listFlags) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// envFlags collects --env K=V.
type envFlags map[string]string

func (e envFlags) String() string { return "" }

func (e envFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not K=V", s)
	}
	e[k] = v
	return nil
}
